package awsfixture

import (
	"context"
	"testing"

	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/app"
)

// ForTest resets the shared moto (moto.ForTest), points the SDK's
// default chain at it for the rest of t, as the Lambda and the CLI read it,
// names param as the configuration parameter and stores doc there (nothing
// when doc is ""). It returns a fixture on that moto.
func ForTest(t testing.TB, param, doc string) *Fixture {
	t.Helper()
	srv := moto.ForTest(t)
	srv.SetEnv(t)
	t.Setenv(app.ConfigParameterEnv, param)
	ctx := context.Background()
	cfg, err := srv.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := New(cfg)
	if doc != "" {
		if err := f.PutConfig(ctx, param, doc); err != nil {
			t.Fatal(err)
		}
	}
	return f
}
