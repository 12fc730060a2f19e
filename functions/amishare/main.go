// Command amishare is the Lambda function: it builds the SDK clients and the
// handler once per container, then serves EventBridge events.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/amishare/amishare/pkg/handler"
)

func main() {
	log := lambdacontext.NewLogger()
	slog.SetDefault(log)
	h, err := handler.New(context.Background(), handler.Options{Log: log})
	if err != nil {
		log.Error("start-up failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h) // h.Invoke takes the raw payload
}
