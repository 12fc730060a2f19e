package handler_test

import (
	"slices"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/kmspolicy"
)

const (
	orgARN = "arn:aws:organizations::210987654321:organization/o-a1b2c3d4e5"
	ouARN  = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	// orgConfig allows A, the organization and the OU.
	orgConfig = `{"allowedAccounts":["111122223333"],"allowedOrganizations":["` + orgARN + `"],"allowedOrganizationalUnits":["` + ouARN + `"]}`
)

// TestHandleOrganizationTargets shares an encrypted image with an OU and an
// account through the handler the Lambda runs: the audit lines name the OU
// by organizationalUnitArn, the metrics count it with the accounts.
func TestHandleOrganizationTargets(t *testing.T) {
	w := world.New(t, orgConfig)
	key := w.Key(t)
	id, snaps := w.Image(t, []fixture.Disk{{KeyID: key}}, map[string]string{amitag.Accounts: "ou-ab12-11111111 " + acctA + " ou-ab12-99999999"})
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
		t.Fatal(err)
	}
	if p := w.ImagePerms(t, id); !slices.Equal(p.OrganizationalUnits, []string{ouARN}) || !slices.Equal(p.Accounts, []string{acctA}) {
		t.Errorf("image shared with %+v, want %s and the OU", p, acctA)
	}
	if p := w.SnapshotPerms(t, snaps[0]); !slices.Equal(p.Accounts, []string{acctA}) {
		t.Errorf("snapshot shared with %v, want only %s", p.Accounts, acctA)
	}
	w.WantStatus(t, id, "partial", `"ou-ab12-99999999" (organizational unit is not in the allowlist)`)
	policy := w.KeyPolicy(t, key)
	if g, _ := kmspolicy.Grantees(policy); !slices.Equal(g, []string{acctA, "o-a1b2c3d4e5/ou-ab12-11111111"}) {
		t.Errorf("key grants %v, want %s and the OU", g, acctA)
	}

	var ouLines int
	for _, l := range w.LinesWithMsg(t, "permission changed") {
		if l.Str("organizationalUnitArn") == ouARN {
			ouLines++
			if _, ok := l["account"]; ok {
				t.Errorf("audit line for the OU also has an account: %v", l)
			}
		}
	}
	if ouLines != 2 { // the key, then the image
		t.Errorf("audit lines naming the OU: got %d, want 2 (key and image)", ouLines)
	}
	if refused := w.LinesWithMsg(t, "target refused"); len(refused) != 1 || refused[0].Str("token") != "ou-ab12-99999999" {
		t.Errorf("refusal log lines: %v, want one for ou-ab12-99999999", refused)
	}
	world.WantMetrics(t, metricsLine(t, w), map[string]int{
		"ImagesShared": 1, "AccountsAdded": 2, "AccountsRemoved": 0, "TargetsRefused": 1, "Errors": 0,
	})

	// The OU leaves: counted as removed.
	w.Tag(t, id, map[string]string{amitag.Accounts: acctA})
	w.Logs.Reset()
	if _, err := w.Handle(t, w.Handler(t, app.Options{}), world.SampleEvent(t, "tag-change.json", id)); err != nil {
		t.Fatal(err)
	}
	if p := w.ImagePerms(t, id); len(p.OrganizationalUnits) != 0 {
		t.Errorf("OU still shared: %v", p.OrganizationalUnits)
	}
	world.WantMetrics(t, metricsLine(t, w), map[string]int{"ImagesShared": 0, "AccountsAdded": 0, "AccountsRemoved": 1})
}
