package stack

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestParseOverrides(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"plain", `KmsMode=policy DryRun=true`, map[string]string{"KmsMode": "policy", "DryRun": "true"}, ""},
		{"list value", `AllowedAccounts=111122223333,444455556666`, map[string]string{"AllowedAccounts": "111122223333,444455556666"}, ""},
		{"quoted JSON with escaped quotes", `AccountGroups="{\"prod\":[\"777788889999\"]}" KmsMode="grant"`,
			map[string]string{"AccountGroups": `{"prod":["777788889999"]}`, "KmsMode": "grant"}, ""},
		{"unquoted JSON with escaped quotes", `AccountGroups={\"prod\":[\"777788889999\"]}`,
			map[string]string{"AccountGroups": `{"prod":["777788889999"]}`}, ""},
		{"quoted value with a space", `Name="a b"`, map[string]string{"Name": "a b"}, ""},
		// The README's old example: SAM CLI keeps "{" and drops the rest.
		{"unescaped JSON stops at the first quote", `AccountGroups={"prod":["777788889999"]}`, map[string]string{"AccountGroups": "{"}, "value ends at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOverrides(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("error = %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDocumentedOverrides parses the override strings the README and
// samconfig.toml show, and checks each value fits the template's parameter:
// AccountGroups must arrive as the JSON object it was meant to be.
func TestDocumentedOverrides(t *testing.T) {
	readme := readFile(t, "../../../README.md")
	samconfig := readFile(t, "../../../samconfig.toml")
	sources := map[string]*regexp.Regexp{
		"README.md":      regexp.MustCompile(`--parameter-overrides \\\n\s*'([^']*)'`),
		"samconfig.toml": regexp.MustCompile(`(?m)^# parameter_overrides = '([^']*)'$`),
	}
	texts := map[string]string{"README.md": readme, "samconfig.toml": samconfig}
	for name, re := range sources {
		t.Run(name, func(t *testing.T) {
			m := re.FindStringSubmatch(texts[name])
			if m == nil {
				t.Fatalf("no parameter overrides example found in %s (pattern %s)", name, re)
			}
			params, err := ParseOverrides(m[1])
			if err != nil {
				t.Fatal(err)
			}
			var groups map[string][]string
			if err := json.Unmarshal([]byte(params["AccountGroups"]), &groups); err != nil || len(groups) == 0 {
				t.Errorf("AccountGroups arrives as %q: %v; want a JSON object of groups", params["AccountGroups"], err)
			}
			if !regexp.MustCompile(`^([0-9]{12})(,[0-9]{12})*$`).MatchString(params["AllowedAccounts"]) {
				t.Errorf("AllowedAccounts arrives as %q, want comma-separated 12-digit ids", params["AllowedAccounts"])
			}
			for _, k := range []string{"KmsMode", "DryRun"} {
				if params[k] == "" {
					t.Errorf("%s missing from the example", k)
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
