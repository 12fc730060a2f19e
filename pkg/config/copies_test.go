package config

import (
	"strings"
	"testing"
)

func TestParseCopies(t *testing.T) {
	const uuid = "1234abcd-12ab-34cd-56ef-1234567890ab"
	tests := []struct {
		name, doc, wantErr string
	}{
		{"none: never copy", `{}`, ""},
		{"regions and keys", `{"allowedRegions":["eu-west-1","ap-southeast-2"],"copyKeys":{"eu-west-1":"` + uuid + `","ap-southeast-2":"alias/amis","us-east-1":"arn:aws:kms:us-east-1:111122223333:key/` + uuid + `"}}`, ""},
		{"alias ARN", `{"copyKeys":{"eu-west-1":"arn:aws:kms:eu-west-1:111122223333:alias/amis"}}`, ""},
		{"multi-region key", `{"copyKeys":{"eu-west-1":"mrk-1234abcd12ab34cd56ef1234567890ab"}}`, ""},
		{"bad region", `{"allowedRegions":["eu-west"]}`, `allowedRegions: "eu-west" is not a region name`},
		{"bad key region", `{"copyKeys":{"EU":"alias/x"}}`, `copyKeys: "EU" is not a region name`},
		{"ARN of another region", `{"copyKeys":{"eu-west-1":"arn:aws:kms:us-east-1:111122223333:key/` + uuid + `"}}`, "is a key of region us-east-1, not eu-west-1"},
		{"AWS managed alias", `{"copyKeys":{"eu-west-1":"alias/aws/ebs"}}`, "AWS managed key"},
		{"AWS managed alias ARN", `{"copyKeys":{"eu-west-1":"arn:aws:kms:eu-west-1:111122223333:alias/aws/ebs"}}`, "AWS managed key"},
		{"not a key", `{"copyKeys":{"eu-west-1":"my key"}}`, "is not a key id, key ARN or alias/NAME"},
		{"empty key", `{"copyKeys":{"eu-west-1":""}}`, "is not a key id"},
		{"bad key id in ARN", `{"copyKeys":{"eu-west-1":"arn:aws:kms:eu-west-1:111122223333:key/nope"}}`, "is not a key id"},
		{"wrong type", `{"allowedRegions":"eu-west-1"}`, `allowedRegions: "eu-west-1" is not a list of strings`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse: got %v (config %+v), want an error containing %q", err, c, tc.wantErr)
			}
		})
	}
	c, err := Parse([]byte(`{"allowedRegions":["eu-west-1"],"copyKeys":{"eu-west-1":"alias/amis"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.RegionAllowed("eu-west-1") || c.RegionAllowed("eu-west-2") {
		t.Errorf("RegionAllowed: want only eu-west-1")
	}
	if k := c.CopyKeys["eu-west-1"]; k != "alias/amis" {
		t.Errorf("CopyKeys[eu-west-1]: got %q, want alias/amis", k)
	}
}
