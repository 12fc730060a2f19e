package config

import (
	"context"
	"strings"
	"testing"
)

func TestParseConsumers(t *testing.T) {
	const allowed = `"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999"]}`
	tests := []struct {
		name, doc, wantErr string
	}{
		{"none", `{}`, ""},
		{"everything", `{` + allowed + `,"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*","/amishare/images/web":"web-?"},
			"receivers":["111122223333","777788889999"],"receiverRole":"team.receiver@x","mirrorTags":["team","Name"],"autoScalingGrants":true}`, ""},
		{"own prefix", `{"parameterPrefix":"/org/amis/","parameters":{"/org/amis/base":"base-*"}}`, ""},
		{"catch-all pattern", `{"parameters":{"/amishare/images/any":"*"}}`, ""},
		{"outside the prefix", `{"parameters":{"/amishare/config2":"x-*"}}`, `"/amishare/config2" is outside parameterPrefix "/amishare/images/"`},
		{"the prefix itself", `{"parameters":{"/amishare/images/":"x-*"}}`, "must start with /, not end with /"},
		{"whitespace", `{"parameters":{"/amishare/images/golden ":"x-*"}}`, "holds whitespace"},
		{"leading whitespace", `{"parameters":{" /amishare/images/golden":"x-*"}}`, "holds whitespace"},
		{"empty level", `{"parameters":{"/amishare/images//golden":"x-*"}}`, "no empty level"},
		{"bad character", `{"parameters":{"/amishare/images/gol$den":"x-*"}}`, `level "gol$den"`},
		{"too deep", `{"parameters":{"/amishare/images/1/2/3/4/5/6/7/8/9/10/11/12/13/14":"x"}}`, "at most 15"},
		{"empty pattern", `{"parameters":{"/amishare/images/a":""}}`, "is not an AMI name pattern"},
		{"stars only", `{"parameters":{"/amishare/images/a":"**"}}`, "is not an AMI name pattern"},
		{"prefix without a level", `{"parameterPrefix":"/"}`, "must start and end with /"},
		{"prefix not ending with a slash", `{"parameterPrefix":"/amis"}`, "must start and end with /"},
		{"prefix reserved by SSM", `{"parameterPrefix":"/aws/amis/"}`, "SSM reserves"},
		{"receiver not allowed", `{` + allowed + `,"receivers":["999999999999"]}`, "999999999999 is not an allowed account"},
		{"receiver not an id", `{` + allowed + `,"receivers":["1111-2222-3333"]}`, "not a 12-digit account id"},
		{"receiver twice", `{` + allowed + `,"receivers":["111122223333","111122223333"]}`, "listed twice"},
		{"role with a path", `{"receiverRole":"path/amishare-receiver"}`, "is not an IAM role name"},
		{"mirror amishare's tags", `{"mirrorTags":["amishare:accounts"]}`, "amishare's own tags are never mirrored"},
		{"mirror amishare's tags, any case", `{"mirrorTags":["AmiShare:status"]}`, "amishare's own tags are never mirrored"},
		{"mirror aws tags", `{"mirrorTags":["aws:cloudformation:stack-name"]}`, "reserved by AWS"},
		{"mirror an empty key", `{"mirrorTags":[""]}`, "is not a tag key"},
		{"mirror twice", `{"mirrorTags":["team","team"]}`, "listed twice"},
		{"grants in grant mode", `{"kms":"grant","autoScalingGrants":true}`, `needs "kms": "policy"`},
		{"grants with kms off", `{"kms":"off","autoScalingGrants":true}`, `needs "kms": "policy"`},
		{"grants in policy mode", `{"autoScalingGrants":true}`, ""},
		{"duplicate parameter", `{"parameters":{"/amishare/images/a":"a-*","/amishare/images/a":"b-*"}}`, "appears twice"},
		{"unknown field", `{"parameter":{"/amishare/images/a":"a-*"}}`, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: got %v, want nil", err)
				}
				if c.ParameterPrefix == "" || c.ReceiverRole == "" {
					t.Errorf("defaults not filled in: prefix %q role %q", c.ParameterPrefix, c.ReceiverRole)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse: got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseConsumersListsEveryError(t *testing.T) {
	_, err := Parse([]byte(`{"parameters":{"/x/a":"a-*"},"receivers":["999999999999"],"mirrorTags":["aws:x"],"receiverRole":"a/b"}`))
	if err == nil {
		t.Fatal("Parse: got nil, want errors")
	}
	for _, want := range []string{"outside parameterPrefix", "not an allowed account", "reserved by AWS", "not an IAM role name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestConsumerDefaults(t *testing.T) {
	c, err := Parse([]byte(`{"parameters":{"/amishare/images/golden":"golden-*"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ParameterPrefix != "/amishare/images/" || c.ReceiverRole != "amishare-receiver" || c.AutoScalingGrants {
		t.Errorf("defaults: prefix %q role %q grants %v; want /amishare/images/, amishare-receiver, false", c.ParameterPrefix, c.ReceiverRole, c.AutoScalingGrants)
	}
	if p, ok := c.NamePattern("/amishare/images/golden"); !ok || p != "golden-*" {
		t.Errorf("NamePattern = %q, %v", p, ok)
	}
	if _, ok := c.NamePattern("/amishare/images/golden/"); ok {
		t.Error("NamePattern matched a name that is not declared exactly")
	}
	if !c.UnderPrefix("/amishare/images/x") || c.UnderPrefix("/amishare/images/") || c.UnderPrefix("/amishare/imagesx") {
		t.Error("UnderPrefix: want only names below the prefix")
	}
}

func TestCheckParameterRefusesTheConfiguration(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"parameterPrefix":"/amishare/"}`, "covers amishare's own configuration parameter"},
		{`{"parameterPrefix":"/amishare/","parameters":{"/amishare/config":"x-*"}}`, "is amishare's own configuration parameter"},
	} {
		c, err := Parse([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckParameter("/amishare/config"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.doc, err, tc.want)
		}
	}
	c, err := Parse([]byte(`{"parameters":{"/amishare/images/a":"a-*"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckParameter("/amishare/config"); err != nil {
		t.Errorf("the default prefix beside the configuration: %v", err)
	}
}

func TestLoaderRefusesAPrefixOverItsOwnParameter(t *testing.T) {
	api := &fakeSSM{value: `{"parameterPrefix":"/amishare/"}`}
	l := &Loader{API: api, Parameter: "/amishare/config"}
	if _, err := l.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "covers amishare's own configuration parameter") {
		t.Fatalf("Load: got %v, want the prefix refused", err)
	}
	api.value = `{}`
	c, err := l.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfigParameter != "/amishare/config" {
		t.Errorf("ConfigParameter = %q, want the parameter read", c.ConfigParameter)
	}
}
