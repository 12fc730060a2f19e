package moto

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// AccountHeader is the request header moto reads the caller's account from
// when it is set, before the credentials: the way tests act as an
// administrator of another account (a receiver) without assuming a role.
const AccountHeader = "x-moto-account-id"

// AsAccount is an API option (append it to a client's APIOptions) that
// makes every call of the client come from account.
func AsAccount(account string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("amishareAsAccount",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Set(AccountHeader, account)
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	}
}

// SetCreationDate sets an image's CreationDate (any account, any region),
// as DescribeImages reports it (2024-05-14T09:20:01.000Z): tests that order
// images by age (launcher patch 17).
func (s *Server) SetCreationDate(imageID, date string) error {
	return s.control("setting the creation date of "+imageID, "/amishare-test/creation-date", "text/plain",
		strings.NewReader(fmt.Sprintf("%s %s", imageID, date)))
}
