package config

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	smithy "github.com/aws/smithy-go"
)

const (
	orgARN = "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"
	ouARN  = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	ou2ARN = "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-22222222"
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
		{name: "organizations and OUs", doc: `{"allowedOrganizations":["` + orgARN + `","arn:aws-us-gov:organizations::210987654321:organization/o-zyxwvutsrq0987654321"],
			"allowedOrganizationalUnits":["` + ouARN + `"],
			"groups":{"workloads":["111122223333","` + ou2ARN + `"]}}`, check: func(t *testing.T, c *Config) {
			for _, a := range []string{orgARN, ouARN, ou2ARN, "111122223333"} {
				if !c.Allowed(a) {
					t.Errorf("Allowed(%q) = false, want true", a)
				}
			}
			if c.Allowed("arn:aws:organizations::123456789012:organization/o-b1b2c3d4e5") {
				t.Errorf("unlisted organization allowed")
			}
			want := []string{orgARN, "arn:aws-us-gov:organizations::210987654321:organization/o-zyxwvutsrq0987654321", ouARN, ou2ARN}
			slices.Sort(want)
			if got := c.OrganizationTargets(); !slices.Equal(got, want) {
				t.Errorf("OrganizationTargets() = %q, want %q", got, want)
			}
		}},
		{name: "organization id instead of ARN", doc: `{"allowedOrganizations":["o-a1b2c3d4e5"]}`, wantErr: "allowedOrganizations"},
		{name: "OU ARN as organization", doc: `{"allowedOrganizations":["` + ouARN + `"]}`, wantErr: "allowedOrganizations"},
		{name: "organization ARN as OU", doc: `{"allowedOrganizationalUnits":["` + orgARN + `"]}`, wantErr: "allowedOrganizationalUnits"},
		{name: "organization id too short", doc: `{"allowedOrganizations":["arn:aws:organizations::123456789012:organization/o-a1b2c3d4"]}`, wantErr: "allowedOrganizations"},
		{name: "organization id upper case", doc: `{"allowedOrganizations":["arn:aws:organizations::123456789012:organization/o-A1B2C3D4E5"]}`, wantErr: "allowedOrganizations"},
		{name: "management account not 12 digits", doc: `{"allowedOrganizations":["arn:aws:organizations::12345678901:organization/o-a1b2c3d4e5"]}`, wantErr: "allowedOrganizations"},
		{name: "not an aws partition", doc: `{"allowedOrganizations":["arn:azure:organizations::123456789012:organization/o-a1b2c3d4e5"]}`, wantErr: "allowedOrganizations"},
		{name: "OU id too short", doc: `{"allowedOrganizationalUnits":["arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab1-11111111"]}`, wantErr: "allowedOrganizationalUnits"},
		{name: "OU ARN with a suffix", doc: `{"allowedOrganizationalUnits":["` + ouARN + `/x"]}`, wantErr: "allowedOrganizationalUnits"},
		{name: "OU ARN without organization", doc: `{"allowedOrganizationalUnits":["arn:aws:organizations::123456789012:ou/ou-ab12-11111111"]}`, wantErr: "allowedOrganizationalUnits"},
		{name: "OU id in a group", doc: `{"groups":{"g":["ou-ab12-11111111"]}}`, wantErr: "member"},
		{name: "group named like an OU id", doc: `{"groups":{"ou-ab12-11111111":["111122223333"]}}`, wantErr: "organization or OU id"},
		{name: "dryRun not a bool", doc: `{"dryRun":"true"}`, wantErr: "not valid"},
		{name: "sweepRate defaults to 10", doc: `{}`, check: func(t *testing.T, c *Config) {
			if c.SweepRate != DefaultSweepRate || DefaultSweepRate != 10 {
				t.Errorf("SweepRate = %d, want the default 10", c.SweepRate)
			}
		}},
		{name: "sweepRate set", doc: `{"sweepRate":3}`, check: func(t *testing.T, c *Config) {
			if c.SweepRate != 3 {
				t.Errorf("SweepRate = %d, want 3", c.SweepRate)
			}
		}},
		{name: "sweepRate negative", doc: `{"sweepRate":-1}`, wantErr: "sweepRate"},
		{name: "sweepRate too high", doc: `{"sweepRate":1001}`, wantErr: "between 1 and 1000"},
		{name: "sweepRate not an integer", doc: `{"sweepRate":2.5}`, wantErr: "sweepRate: 2.5 is not a whole number"},
		{name: "sweepRate zero refused, not replaced", doc: `{"sweepRate":0}`, wantErr: "sweepRate: 0 is not between 1 and 1000"},
		{name: "sweepRate null is the default", doc: `{"sweepRate":null}`, check: func(t *testing.T, c *Config) {
			if c.SweepRate != DefaultSweepRate {
				t.Errorf("SweepRate = %d, want the default %d", c.SweepRate, DefaultSweepRate)
			}
		}},
		{name: "dryRun a string", doc: `{"dryRun":"true"}`, wantErr: `dryRun: "true" is not true or false`},
		{name: "accounts a number", doc: `{"allowedAccounts":[111122223333]}`, wantErr: "allowedAccounts: [111122223333] is not a list of strings"},
		{name: "syntax error with its line", doc: "{\n  \"kms\": \"grant\",\n  \"dryRun\": tru\n}", wantErr: "line 3, column"},
		{name: "a string, not an object", doc: `"x"`, wantErr: "the document is a JSON string, not an object"},
		{name: "delegatedKeysOnly", doc: `{"delegatedKeysOnly":true}`, check: func(t *testing.T, c *Config) {
			if !c.DelegatedKeysOnly {
				t.Error("DelegatedKeysOnly = false, want true")
			}
		}},
		{name: "delegatedKeysOnly absent is false", doc: `{}`, check: func(t *testing.T, c *Config) {
			if c.DelegatedKeysOnly {
				t.Error("DelegatedKeysOnly = true, want false")
			}
		}},
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

// TestParseListsEveryProblem: one run names every problem of the document
// (unknown fields and types in the document's order, then values), and no
// Go type names.
func TestParseListsEveryProblem(t *testing.T) {
	doc := `{"allowedAccounts":["1111-2222-3333"],"sweepRate":1.5,"kms":"yes","colour":"blue","dryRun":1}`
	_, err := Parse([]byte(doc))
	want := []string{
		"sweepRate: 1.5 is not a whole number",
		`unknown field "colour"`,
		"dryRun: 1 is not true or false",
		`allowedAccounts: "1111-2222-3333" is not a 12-digit account id`,
		`kms: "yes" is not one of policy, grant, off`,
	}
	got := Problems(err)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\ngot  %q\nwant %q", got, want)
	}
	if err == nil || strings.Contains(err.Error(), "Go struct") || strings.Contains(err.Error(), "unmarshal") {
		t.Errorf("error %v, want one in the configuration's own words", err)
	}
	if Problems(errors.New("other")) != nil {
		t.Error("Problems of an unrelated error: want nil")
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

func TestParseRefusesDuplicateKeys(t *testing.T) {
	for _, doc := range []string{
		// A groups value pasted unescaped that closes the object and goes on.
		`{"allowedAccounts":["111122223333"],"groups":{"g":["111122223333"]}, "allowedAccounts": ["999999999999"], "allowPublic": true}`,
		`{"groups":{"g":["111122223333"],"g":["999999999999"]}}`,
		`{"copyKeys":{"eu-west-1":"alias/a","eu-west-1":"alias/b"}}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "appears twice") {
			t.Errorf("Parse(%s): got %v, want a duplicate key refused", doc, err)
		}
	}
	if _, err := Parse([]byte(`{"allowedAccounts":["111122223333"],"groups":{"a":["111122223333"],"b":["111122223333"]}}`)); err != nil {
		t.Errorf("the same member in two groups is no duplicate key: %v", err)
	}
}

func TestCheckAccountRefusesForeignCopyKeys(t *testing.T) {
	c, err := Parse([]byte(`{"allowedRegions":["eu-west-1"],"copyKeys":{"eu-west-1":"arn:aws:kms:eu-west-1:999999999999:key/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","us-east-1":"alias/amis"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckAccount("123456789012"); err == nil || !strings.Contains(err.Error(), "account 999999999999") {
		t.Errorf("got %v, want the key of another account refused", err)
	}
	if err := c.CheckAccount("999999999999"); err != nil {
		t.Errorf("the account's own key: %v", err)
	}
}

// TestParseKnowsEveryField: every field of Config that has a JSON name is
// one Parse decodes (a field added to the struct alone would be refused as
// unknown in every document that sets it), and no name Parse knows is
// missing from the struct.
func TestParseKnowsEveryField(t *testing.T) {
	var c Config
	var rate *int
	known := c.fields(&rate)
	typ := reflect.TypeOf(c)
	names := map[string]bool{}
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		names[name] = true
		if _, ok := known[name]; !ok {
			t.Errorf("Config.%s (json %q) is not decoded by Parse", typ.Field(i).Name, name)
		}
	}
	for name := range known {
		if !names[name] {
			t.Errorf("Parse decodes %q, which no field of Config is named", name)
		}
	}
}
