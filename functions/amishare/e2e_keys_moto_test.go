package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
)

// awsDocSample is AWS's EC2 AMI State Change example, verbatim in events/
// (placeholder time "yyyy-mm-ddThh:mm:ssZ", placeholder image id).
const (
	awsDocSample   = "aws-doc-ami-available.json"
	awsDocImageID  = "ami-0123456789example"
	foreignAccount = "999988887777"
)

// TestLambdaKeysAndAWSSample drives the real bootstrap under the emulator
// through what a production review found broken while every test passed:
// AWS's own sample event, a snapshot encrypted with another account's key,
// and a key the role may not write because it is not delegated. None of them
// may fail the invocation (Lambda would retry it and send it to the DLQ).
func TestLambdaKeysAndAWSSample(t *testing.T) {
	le := newLambdaEnv(t, e2eConfig)
	ctx, srv, fx := le.Ctx, le.Server, le.Fixture
	em := le.start(t)
	sample, err := os.ReadFile(filepath.Join(artifacts.root, "events", awsDocSample))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(sample, []byte(`"time": "yyyy-mm-ddThh:mm:ssZ"`)) || !bytes.Contains(sample, []byte(awsDocImageID)) {
		t.Fatalf("events/%s is no longer AWS's sample with its placeholders", awsDocSample)
	}
	n := 0
	invoke := func(t *testing.T, body []byte) (response, []map[string]any) {
		t.Helper()
		n++
		requestID := fmt.Sprintf("e2e-keys-%02d", n)
		status, raw := em.invoke(t, requestID, body)
		var got response
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("response is not JSON: %v\n%s", err, raw)
		}
		if status != http.StatusOK || got.ErrorMessage != "" || got.Error != "" {
			t.Fatalf("invocation failed (HTTP %d): %s", status, raw)
		}
		return got, em.records(t, requestID)
	}
	oneImage := func(t *testing.T, got response, imageID, outcome, status string) string {
		t.Helper()
		if len(got.Images) != 1 {
			t.Fatalf("images = %d, want 1 (%+v)", len(got.Images), got)
		}
		img := got.Images[0]
		if img.ImageID != imageID || img.Outcome != outcome || img.Status != status {
			t.Errorf("image %s outcome %q status %q, want %s %q %q (message %q)", img.ImageID, img.Outcome, img.Status, imageID, outcome, status, img.Message)
		}
		return img.Message
	}
	available := func(t *testing.T, imageID string) []byte {
		return readEvent(t, "ami-available.json", imageID, true)
	}

	t.Run("AWS sample verbatim is accepted and ignored (placeholder image id)", func(t *testing.T) {
		got, _ := invoke(t, sample)
		if got.Kind != "ami-state-change" || !strings.Contains(got.Ignored, awsDocImageID) || len(got.Images) != 0 {
			t.Errorf("summary %+v, want the sample ignored for its placeholder id", got)
		}
	})

	t.Run("AWS sample with a real image id shares it", func(t *testing.T) {
		id, snaps := le.Image(t, make([]fixture.Disk, 2), map[string]string{amitag.Accounts: acctA})
		got, _ := invoke(t, bytes.ReplaceAll(sample, []byte(awsDocImageID), []byte(id)))
		oneImage(t, got, id, "applied", "shared")
		le.WantShared(t, id, snaps, acctA)
	})

	t.Run("key of another account blocks the image, the invocation succeeds", func(t *testing.T) {
		foreign := fixture.ForeignKeyARN(foreignAccount)
		id, snaps := le.Image(t, []fixture.Disk{{KeyID: foreign}}, map[string]string{amitag.Accounts: acctA + " prod"})
		got, logs := invoke(t, available(t, id))
		msg := oneImage(t, got, id, "blocked", "error")
		if !strings.Contains(msg, "of account "+foreignAccount) {
			t.Errorf("message %q does not name the key's account %s", msg, foreignAccount)
		}
		le.WantShared(t, id, snaps)
		wantStatusTags(t, le.World, id, "error", msg)
		i := slices.IndexFunc(logs, func(r map[string]any) bool {
			return r["message"] == "key belongs to another account: its owner must add this statement to the key policy"
		})
		if i < 0 {
			t.Fatalf("no statement for the key's owner logged")
		}
		stmt, _ := json.Marshal(logs[i]["statement"])
		for _, a := range []string{acctA, acctProd} {
			if !strings.Contains(string(stmt), "arn:aws:iam::"+a+":root") {
				t.Errorf("logged statement %s does not name %s", stmt, a)
			}
		}
		if logs[i]["keyArn"] != foreign || logs[i]["keyOwner"] != foreignAccount {
			t.Errorf("statement line %v, want keyArn %s and keyOwner %s", logs[i], foreign, foreignAccount)
		}
	})

	t.Run("undelegated key blocks with the tag to add, then shares once tagged", func(t *testing.T) {
		if err := srv.SetDelegatedKeysOnly(true); err != nil {
			t.Fatal(err)
		}
		k := le.Key(t)
		id, snaps := le.Image(t, []fixture.Disk{{KeyID: k}}, map[string]string{amitag.Accounts: acctA})
		got, _ := invoke(t, available(t, id))
		want := "key " + k + " is not delegated to amishare: tag the key amishare:managed = true"
		if msg := oneImage(t, got, id, "blocked", "error"); msg != want {
			t.Errorf("message = %q, want %q", msg, want)
		}
		le.WantShared(t, id, snaps)
		wantStatusTags(t, le.World, id, "error", want)

		if err := fx.TagKey(ctx, k, map[string]string{amitag.KeyManaged: amitag.KeyManagedValue}); err != nil {
			t.Fatal(err)
		}
		got, _ = invoke(t, available(t, id))
		oneImage(t, got, id, "applied", "shared")
		le.WantShared(t, id, snaps, acctA)
	})

	// The container read the block public access states once, at start-up.
	if n := strings.Count(em.out.String(), `"message":"block public access"`); n != 1 {
		t.Errorf("block public access logged %d times, want once per container:\n%s", n, em.out)
	}
}
