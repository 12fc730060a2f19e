package config

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	smithy "github.com/aws/smithy-go"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string // substring; "" means valid
		check   func(t *testing.T, c *Config)
	}{
		{name: "minimal", doc: `{"allowedAccounts":["111122223333"]}`, check: func(t *testing.T, c *Config) {
			if c.KMS != ModePolicy {
				t.Errorf("KMS = %q, want default %q", c.KMS, ModePolicy)
			}
			if c.DryRun || c.AllowPublic {
				t.Errorf("DryRun=%v AllowPublic=%v, want both false by default", c.DryRun, c.AllowPublic)
			}
		}},
		{name: "full", doc: `{"allowedAccounts":["111122223333"],"groups":{"prod":["444455556666","777788889999"]},"kms":"grant","dryRun":true,"allowPublic":false}`, check: func(t *testing.T, c *Config) {
			if !c.Allowed("777788889999") || !c.Allowed("111122223333") {
				t.Errorf("group member or listed account not allowed")
			}
			if c.Allowed("999999999999") {
				t.Errorf("unlisted account allowed")
			}
			if m, ok := c.Group("prod"); !ok || len(m) != 2 {
				t.Errorf("Group(prod) = %v, %v; want 2 members", m, ok)
			}
			if c.KMS != ModeGrant || !c.DryRun {
				t.Errorf("KMS=%q DryRun=%v, want grant true", c.KMS, c.DryRun)
			}
		}},
		{name: "empty object allows nobody", doc: `{}`, check: func(t *testing.T, c *Config) {
			if c.Allowed("111122223333") {
				t.Errorf("empty config allows an account")
			}
		}},
		{name: "malformed json", doc: `{"allowedAccounts":[`, wantErr: "not valid"},
		{name: "not an object", doc: `["111122223333"]`, wantErr: "not valid"},
		{name: "trailing data", doc: `{} {}`, wantErr: "data after"},
		{name: "unknown field", doc: `{"allowedAcounts":["111122223333"]}`, wantErr: "unknown field"},
		{name: "11 digits", doc: `{"allowedAccounts":["11112222333"]}`, wantErr: "12-digit"},
		{name: "dashes", doc: `{"allowedAccounts":["1111-2222-3333"]}`, wantErr: "12-digit"},
		{name: "empty group", doc: `{"groups":{"prod":[]}}`, wantErr: `"prod" is empty`},
		{name: "bad group member", doc: `{"groups":{"prod":["x"]}}`, wantErr: "member"},
		{name: "group named all", doc: `{"groups":{"all":["111122223333"]}}`, wantErr: "reserved"},
		{name: "group named like an account", doc: `{"groups":{"111122223333":["111122223333"]}}`, wantErr: "must start with a letter"},
		{name: "bad kms mode", doc: `{"kms":"yes"}`, wantErr: "kms"},
		{name: "dryRun not a bool", doc: `{"dryRun":"true"}`, wantErr: "not valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

type fakeSSM struct {
	calls int
	value string
	err   error
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(f.value)}}, nil
}

func TestLoaderCachesForTTL(t *testing.T) {
	api := &fakeSSM{value: `{"allowedAccounts":["111122223333"]}`}
	now := time.Unix(1000, 0)
	l := &Loader{API: api, Parameter: "/p", TTL: time.Minute, Now: func() time.Time { return now }}
	for range 3 {
		if _, err := l.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if api.calls != 1 {
		t.Errorf("GetParameter calls within TTL = %d, want 1", api.calls)
	}
	now = now.Add(61 * time.Second)
	api.value = `{"allowedAccounts":["444455556666"]}`
	c, err := l.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if api.calls != 2 || !c.Allowed("444455556666") {
		t.Errorf("after TTL: calls = %d, allowed new = %v; want 2, true", api.calls, c.Allowed("444455556666"))
	}
}

func TestLoaderErrors(t *testing.T) {
	t.Run("missing parameter", func(t *testing.T) {
		l := &Loader{API: &fakeSSM{err: &smithy.GenericAPIError{Code: "ParameterNotFound"}}, Parameter: "/p"}
		_, err := l.Load(context.Background())
		if !errors.Is(err, ErrMissing) {
			t.Fatalf("err = %v, want ErrMissing", err)
		}
	})
	t.Run("invalid document is not cached", func(t *testing.T) {
		api := &fakeSSM{value: `{"nope":1}`}
		l := &Loader{API: api, Parameter: "/p"}
		if _, err := l.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "/p") {
			t.Fatalf("err = %v, want a validation error naming the parameter", err)
		}
		api.value = `{}`
		if _, err := l.Load(context.Background()); err != nil {
			t.Fatalf("second load after fix: %v", err)
		}
		if api.calls != 2 {
			t.Errorf("calls = %d, want 2", api.calls)
		}
	})
}
