package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/world"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	ouARN = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	// orgsConfig allows A and the OU ou-ab12-11111111.
	orgsConfig = `{"allowedAccounts":["111122223333"],"allowedOrganizationalUnits":["` + ouARN + `"]}`
)

// TestRunHandleOrganizationalUnit: `amishare handle` shares an encrypted
// image with an OU named by its id; a dry run before names the OU and
// changes nothing.
func TestRunHandleOrganizationalUnit(t *testing.T) {
	w := world.New(t, orgsConfig)
	hookHandler(t, w, nil)
	key := w.Key(t)
	id, snaps := w.EncryptedImage(t, "ou-ab12-11111111 "+acctA, key)
	path := world.EventFile(t, "tag-change.json", id)

	r := runCLI(t, "", "handle", "--dry-run", path)
	if r.code != 0 || r.err != nil {
		t.Fatalf("dry run: got %s; want exit 0", r)
	}
	sum := decode[handler.Summary](t, r)
	if len(sum.Images) != 1 || sum.Images[0].Plan == nil || !slices.Contains(sum.Images[0].Plan.Image.Add, ouARN) {
		t.Fatalf("dry-run summary: got %+v, want a plan adding the OU", sum.Images)
	}
	if !strings.Contains(r.stdout, `"organizationalUnitArn": "`+ouARN+`"`) && !strings.Contains(r.stdout, `"organizationalUnitArn":"`+ouARN+`"`) {
		t.Errorf("dry-run summary does not name the OU in its changes:\n%s", r.stdout)
	}
	if got := w.Calls.Mutating(); len(got) != 0 {
		t.Errorf("dry run made modifying calls %v", got)
	}

	r = runCLI(t, "", "handle", path)
	if r.code != 0 || r.err != nil {
		t.Fatalf("got %s; want exit 0", r)
	}
	sum = decode[handler.Summary](t, r)
	if len(sum.Images) != 1 || sum.Images[0].Status != rules.StatusShared {
		t.Fatalf("summary: got %+v, want shared", sum.Images)
	}
	w.WantOrgs(t, id, nil, []string{ouARN})
	w.WantShared(t, id, snaps, acctA)
	if g := w.KeyGrantees(t, key); !slices.Equal(g, []string{acctA, "o-a1b2c3d4e5/ou-ab12-11111111"}) {
		t.Errorf("key grants %v, want %s and the OU", g, acctA)
	}
	wantHumanLog(t, r.stderr, "INFO permission changed imageId="+id+" organizationalUnitArn="+ouARN+" action=add")
}
