// Command amishare is the Lambda function: it builds the SDK clients and the
// handler once per container, then serves EventBridge events.
package main

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/amishare/amishare/pkg/app"
)

func main() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	// After SetDefault, which routes the log package to slog: the runtime
	// library's own copy of each returned error is dropped.
	log.SetOutput(RuntimeLog{Log: logger})
	a, err := app.New(context.Background(), app.Options{Log: logger, ReportBlockPublicAccess: true})
	if err != nil {
		logger.Error("start-up failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(a.Handler) // Handler.Invoke takes the raw payload
}
