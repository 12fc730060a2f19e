package receiver

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/smithy-go/middleware"
)

func TestSessionName(t *testing.T) {
	for _, tc := range []struct{ what, want string }{
		{"ami-0123456789abcdef0", "amishare-ami-0123456789abcdef0"},
		{"sweep", "amishare-sweep"},
		{"a b/c:d", "amishare-abcd"},
		{strings.Repeat("x", 100), "amishare-" + strings.Repeat("x", 55)},
	} {
		if got := SessionName(tc.what); got != tc.want || len(got) > 64 {
			t.Errorf("SessionName(%q) = %q, want %q (at most 64)", tc.what, got, tc.want)
		}
	}
}

func TestPrincipalMarksTheReceiversCalls(t *testing.T) {
	stack := middleware.NewStack("test", func() any { return nil })
	if err := marker("111122223333")(stack); err != nil {
		t.Fatal(err)
	}
	var seen string
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("probe",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			seen = Principal(ctx)
			return middleware.InitializeOutput{}, middleware.Metadata{}, nil
		}), middleware.After); err != nil {
		t.Fatal(err)
	}
	h := middleware.DecorateHandler(middleware.HandlerFunc(func(ctx context.Context, in any) (any, middleware.Metadata, error) {
		return nil, middleware.Metadata{}, nil
	}), stack)
	if _, _, err := h.Handle(context.Background(), struct{}{}); err != nil {
		t.Fatal(err)
	}
	if seen != "111122223333" {
		t.Errorf("Principal = %q, want the receiver", seen)
	}
	if Principal(context.Background()) != "" {
		t.Error("Principal outside a receiver's call: want none")
	}
}
