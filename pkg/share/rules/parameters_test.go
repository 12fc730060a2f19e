package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/config"
)

const (
	golden  = "/amishare/images/golden/al2023"
	web     = "/amishare/images/web"
	imgOld  = "ami-0000000000000000a"
	imgMid  = "ami-0000000000000000b"
	imgNew  = "ami-0000000000000000c"
	jan     = "2024-01-10T10:00:00.000Z"
	feb     = "2024-02-10T10:00:00.000Z"
	mar     = "2024-03-10T10:00:00.000Z"
	confDoc = `{"allowedAccounts":["111122223333","444455556666"],"parameters":{"/amishare/images/golden/al2023":"golden-al2023-*","/amishare/images/web":"web-*"}}`
)

func consumerConfig(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(confDoc))
	if err != nil {
		t.Fatal(err)
	}
	c.ConfigParameter = "/amishare/config"
	return c
}

func feeding(id, created string, accounts ...string) ParameterImage {
	return ParameterImage{ImageID: id, Name: "golden-al2023-" + id, State: "available", Managed: true, Parameter: golden, Created: created, Accounts: accounts}
}

func TestParameterRefusal(t *testing.T) {
	cfg := consumerConfig(t)
	tests := []struct{ name, parameter, image, want string }{
		{"declared and matching", golden, "golden-al2023-2024.05", ""},
		{"no tag", "", "anything", ""},
		{"the configuration parameter", "/amishare/config", "golden-al2023-x", "is amishare's own configuration parameter"},
		{"outside the prefix", "/other/golden", "golden-al2023-x", "is outside the parameter prefix /amishare/images/"},
		{"undeclared", "/amishare/images/golden/other", "golden-al2023-x", "is not declared in the configuration"},
		{"trailing space", golden + " ", "golden-al2023-x", "holds whitespace"},
		{"case differs", "/amishare/images/Golden/al2023", "golden-al2023-x", "is not declared"},
		{"name does not match", golden, "evil-al2023-x", `is only for images named "golden-al2023-*", not "evil-al2023-x"`},
		{"name only contains the pattern", golden, "x-golden-al2023-1", "is only for images named"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParameterRefusal(cfg, tc.parameter, tc.image)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecideParameter(t *testing.T) {
	cfg := consumerConfig(t)
	old, mid, neu := feeding(imgOld, jan, acctA, acctB), feeding(imgMid, feb, acctA), feeding(imgNew, mar, acctB)
	tests := []struct {
		name             string
		images           []ParameterImage
		account, current string
		want             ParameterChange
		changes          bool
	}{
		{name: "created", images: []ParameterImage{old, mid}, want: ParameterChange{Action: ParameterPut, To: imgMid}, changes: true},
		{name: "a newer image takes over", images: []ParameterImage{old, mid, neu}, current: imgMid,
			want: ParameterChange{Action: ParameterPut, From: imgMid, To: imgNew}, changes: true},
		{name: "an older one never takes it back", images: []ParameterImage{old, mid, neu}, current: imgNew},
		{name: "the newest is gone: rollback", images: []ParameterImage{old, mid}, current: imgNew,
			want: ParameterChange{Action: ParameterPut, From: imgNew, To: imgMid, Rollback: true}, changes: true},
		{name: "the newest is untagged: rollback", images: []ParameterImage{old, mid, withTag(neu, "")}, current: imgNew,
			want: ParameterChange{Action: ParameterPut, From: imgNew, To: imgMid, Rollback: true}, changes: true},
		{name: "the newest is deregistered: rollback", images: []ParameterImage{old, mid, withState(neu, "deregistered")}, current: imgNew,
			want: ParameterChange{Action: ParameterPut, From: imgNew, To: imgMid, Rollback: true}, changes: true},
		{name: "none left: deleted", images: []ParameterImage{withManaged(old, false)}, current: imgOld,
			want: ParameterChange{Action: ParameterDelete, From: imgOld}, changes: true},
		{name: "none and none: nothing", images: nil},
		{name: "a renamed impostor never feeds it", images: []ParameterImage{old, withName(neu, "evil-1")}, current: imgOld},
		{name: "receiver A: only images shared with A", account: acctA, images: []ParameterImage{old, mid, neu},
			want: ParameterChange{Account: acctA, Action: ParameterPut, To: imgMid}, changes: true},
		{name: "receiver B: only images shared with B", account: acctB, images: []ParameterImage{old, mid, neu}, current: imgOld,
			want: ParameterChange{Account: acctB, Action: ParameterPut, From: imgOld, To: imgNew}, changes: true},
		{name: "receiver that lost the newest falls back", account: acctB, images: []ParameterImage{old, mid, withAccounts(neu)}, current: imgNew,
			want: ParameterChange{Account: acctB, Action: ParameterPut, From: imgNew, To: imgOld, Rollback: true}, changes: true},
		{name: "ties: the larger id, every time", images: []ParameterImage{feeding(imgMid, feb), feeding(imgOld, feb)},
			want: ParameterChange{Action: ParameterPut, To: imgMid}, changes: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changes := DecideParameter(cfg, tc.images, golden, tc.account, tc.current)
			tc.want.Name = golden
			if tc.want.From == "" {
				tc.want.From = tc.current
			}
			if !changes {
				tc.want = ParameterChange{Name: golden, Account: tc.account, From: tc.current}
			}
			if changes != tc.changes || got != tc.want {
				t.Errorf("got %+v (changes %v), want %+v (changes %v)", got, changes, tc.want, tc.changes)
			}
		})
	}
}

func withTag(p ParameterImage, tag string) ParameterImage       { p.Parameter = tag; return p }
func withState(p ParameterImage, state string) ParameterImage   { p.State = state; return p }
func withManaged(p ParameterImage, managed bool) ParameterImage { p.Managed = managed; return p }
func withName(p ParameterImage, name string) ParameterImage     { p.Name = name; return p }
func withAccounts(p ParameterImage, a ...string) ParameterImage { p.Accounts = a; return p }

func TestAffected(t *testing.T) {
	cfg := consumerConfig(t)
	current := map[string]string{golden: imgOld, web: imgOld, "/amishare/images/undeclared": imgOld}
	got := Affected(cfg, golden, "golden-al2023-1", imgOld, current)
	if want := []string{golden, web}; !slices.Equal(got, want) {
		t.Errorf("Affected = %v, want %v (the tag's, and the declared ones naming the image)", got, want)
	}
	if got := Affected(cfg, golden, "evil", imgMid, current); len(got) != 0 {
		t.Errorf("Affected of a refused tag naming nothing = %v, want none", got)
	}
}

func TestMatchName(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"golden-al2023-*", "golden-al2023-2024.05.01", true},
		{"golden-al2023-*", "golden-al2023-", true},
		{"golden-al2023-*", "golden-al2022-1", false},
		{"golden-*", "golden-x [copy of us-east-1/ami-0123456789abcdef0]", true},
		{"web-?", "web-1", true},
		{"web-?", "web-12", false},
		{"*", "anything at all", true},
		{"a[b]*", "a[b]c", true},
		{"a*b*c", "a*xb*c", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := MatchName(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchName(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestDecideRefusedParameterBlocksAdditionsOnly(t *testing.T) {
	refusal := ParameterRefusal(consumerConfig(t), "/amishare/images/undeclared", "golden-al2023-1")
	in := Input{Targets: targets(acctA), Refusals: []string{refusal}, State: State{ImageID: "ami-1", Owner: owner,
		Image: Perms{Accounts: []string{acctB}}, Snapshots: twoSnapshots(Perms{Accounts: []string{acctB}})}}
	d := Decide(in)
	if d.Status != StatusError || !strings.Contains(d.Message, "is not declared in the configuration") {
		t.Errorf("status %q message %q, want error naming the refused parameter", d.Status, d.Message)
	}
	if len(d.Plan.Image.Add) != 0 || !slices.Equal(d.Plan.Image.Remove, []string{acctB}) {
		t.Errorf("image diff %+v, want only %s removed", d.Plan.Image, acctB)
	}
	for _, s := range d.Plan.Snapshots {
		if len(s.Add) != 0 {
			t.Errorf("snapshot %s gains %v while the image is blocked", s.SnapshotID, s.Add)
		}
	}
	// Unshared, the refusal still says error.
	d = Decide(Input{Refusals: []string{refusal}, State: State{ImageID: "ami-1", Owner: owner}})
	if d.Status != StatusError {
		t.Errorf("an image with no target and a refused parameter: status %q, want error", d.Status)
	}
}
