package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
)

const e2eOU = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"

// TestLambdaOrganizationalUnit: the real bootstrap under the emulator shares
// an image encrypted with a customer-managed key with an OU named by its id
// in the tag and with an account; the OU gets a launch permission and key
// statements, the snapshots only the account, and the audit log names the
// OU by organizationalUnitArn.
func TestLambdaOrganizationalUnit(t *testing.T) {
	le := newLambdaEnv(t, `{"allowedAccounts":["`+acctA+`"],"allowedOrganizationalUnits":["`+e2eOU+`"]}`)
	em := le.start(t)
	key := le.Key(t)
	id, snaps := le.Image(t, []fixture.Disk{{KeyID: key}, {KeyID: key}}, map[string]string{amitag.Accounts: "ou-ab12-11111111 " + acctA})
	status, raw := em.invoke(t, "e2e-ou-01", readEvent(t, "ami-available.json", id, true))
	var got struct {
		Images []struct {
			Status  string   `json:"status"`
			Targets []string `json:"targets"`
			Changes []struct {
				KeyARN                string `json:"keyArn"`
				SnapshotID            string `json:"snapshotId"`
				Account               string `json:"account"`
				OrganizationalUnitArn string `json:"organizationalUnitArn"`
				Action                string `json:"action"`
			} `json:"changes"`
		} `json:"images"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || status != http.StatusOK || len(got.Images) != 1 {
		t.Fatalf("invocation: HTTP %d, %v: %s", status, err, raw)
	}
	img := got.Images[0]
	if img.Status != "shared" || !slices.Equal(img.Targets, []string{acctA, e2eOU}) {
		t.Errorf("status %q targets %v, want shared with %s and the OU", img.Status, img.Targets, acctA)
	}
	var ouChanges []string
	for _, c := range img.Changes {
		if c.OrganizationalUnitArn != "" {
			if c.Account != "" || c.SnapshotID != "" || c.OrganizationalUnitArn != e2eOU {
				t.Errorf("change %+v: an OU change names only the OU, never a snapshot", c)
			}
			where := "image"
			if c.KeyARN != "" {
				where = "key"
			}
			ouChanges = append(ouChanges, where+" "+c.Action)
		}
	}
	if want := []string{"key add", "image add"}; !slices.Equal(ouChanges, want) {
		t.Errorf("OU changes %v, want %v", ouChanges, want)
	}
	le.WantShared(t, id, snaps, acctA)
	le.WantOrgs(t, id, nil, []string{e2eOU})
	audit := 0
	for _, r := range em.records(t, "e2e-ou-01") {
		if r["message"] == "permission changed" && r["organizationalUnitArn"] == e2eOU {
			audit++
			if _, ok := r["account"]; ok {
				t.Errorf("audit record for the OU also names an account: %v", r)
			}
		}
	}
	if audit != 2 {
		t.Errorf("audit records naming the OU: %d, want 2 (key and image)", audit)
	}
}
