// Package world is the one test environment of amishare's moto-backed
// tests: it starts (or resets) moto, points the SDK's default chain at it as
// the Lambda and the CLI read it, stores a configuration document, builds
// the app the way the Lambda does, and seeds and inspects AWS through a
// fixture. Every package's integration tests start here, so each helper
// exists once.
//
// Worlds share one moto per test binary (moto.ForTest): tests that use a
// world must not run in parallel with each other.
package world

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
	"github.com/amishare/amishare/pkg/sweep"
)

// Param is the configuration parameter every world names (app.ConfigParameterEnv).
const Param = "/amishare/test-config"

// World is one test's AWS: moto reached through the environment, as the
// Lambda reaches AWS, a fixture to seed and inspect it in one region, the
// calls of the apps it builds and their log output.
type World struct {
	Ctx    context.Context
	Server *moto.Server
	// AWS is an SDK configuration for moto, for clients the fixture lacks (SQS).
	AWS aws.Config
	// Fixture acts in the world's region (moto.Region, or In's).
	Fixture *fixture.Fixture
	Calls   *fixture.CallLog
	Logs    *fixture.LogBuffer
}

// New resets moto, points the SDK's default chain at it for the rest of t,
// names Param as the configuration parameter and stores configDoc there
// (nothing when configDoc is "").
func New(t testing.TB, configDoc string) *World {
	t.Helper()
	srv := moto.ForTest(t)
	srv.SetEnv(t)
	t.Setenv(app.ConfigParameterEnv, Param)
	w := &World{Ctx: context.Background(), Server: srv, Calls: &fixture.CallLog{}, Logs: &fixture.LogBuffer{}}
	cfg, err := srv.AWSConfig(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.AWS, w.Fixture = cfg, fixture.New(cfg)
	if configDoc != "" {
		w.PutConfig(t, configDoc)
	}
	return w
}

// In returns the same world seen from region: its fixture's EC2 and KMS
// clients act there; the configuration, calls and logs are shared.
func (w *World) In(region string) *World {
	in := *w
	in.Fixture = w.Fixture.In(region)
	return &in
}

// PutConfig stores doc in the configuration parameter.
func (w *World) PutConfig(t testing.TB, doc string) {
	t.Helper()
	if err := w.Fixture.PutConfig(w.Ctx, Param, doc); err != nil {
		t.Fatal(err)
	}
}

// Options completes opts the way every world's app is built: logs into
// w.Logs (unless opts has a logger: the CLI's logs to its stderr), every
// client's calls recorded in w.Calls (before opts' own API options), and
// retries waiting at most a few milliseconds unless opts says otherwise, so
// that injected faults cost no time.
func (w *World) Options(opts app.Options) app.Options {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewJSONHandler(w.Logs, nil))
	}
	opts.APIOptions = append([]func(*middleware.Stack) error{w.Calls.APIOption}, opts.APIOptions...)
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Millisecond
	}
	return opts
}

// App builds the app with app.New, as the Lambda does, with Options(opts).
func (w *World) App(t testing.TB, opts app.Options) *app.App {
	t.Helper()
	a, err := app.New(w.Ctx, w.Options(opts))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	return a
}

// Handler is App's handler.
func (w *World) Handler(t testing.TB, opts app.Options) *handler.Handler {
	t.Helper()
	return w.App(t, opts).Handler
}

// Engine is App's engine of the function's own region: a real, paced engine
// built by the composition root.
func (w *World) Engine(t testing.TB, opts app.Options) *share.Engine {
	t.Helper()
	return w.App(t, opts).Pool.Engine("")
}

// The names internal/testing/stack gives the stack's sweep queue and lease
// table, so that the calls made to them are checked against the role's
// statements for them.
const (
	SweepQueueName = "amishare-SweepQueue"
	SweepLeaseName = "amishare-SweepLeaseTable"
)

// SweepQueue creates the sweep's continuation queue and returns its URL.
func (w *World) SweepQueue(t testing.TB) string {
	t.Helper()
	out, err := sqs.NewFromConfig(w.AWS).CreateQueue(w.Ctx, &sqs.CreateQueueInput{QueueName: aws.String(SweepQueueName)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// SweepLease creates the sweep's lease table, as template.yaml defines it,
// and returns its name.
func (w *World) SweepLease(t testing.TB) string {
	t.Helper()
	_, err := dynamodb.NewFromConfig(w.AWS).CreateTable(w.Ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(SweepLeaseName),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(sweep.LeaseKeyAttribute), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(sweep.LeaseKeyAttribute), KeyType: ddbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return SweepLeaseName
}

// Handle delivers raw to h with a fresh call log.
func (w *World) Handle(t testing.TB, h *handler.Handler, raw []byte) (handler.Summary, error) {
	t.Helper()
	w.Calls.Reset()
	return h.Handle(w.Ctx, raw)
}

// Image registers an available image with the given disks (one snapshot
// each) and tags, named after the test; it returns the image and snapshot ids.
func (w *World) Image(t testing.TB, disks []fixture.Disk, tags map[string]string) (string, []string) {
	t.Helper()
	id, snaps, err := w.Fixture.RegisterImage(w.Ctx, strings.ReplaceAll(t.Name(), "/", "-"), disks, tags)
	if err != nil {
		t.Fatal(err)
	}
	return id, snaps
}

// PlainImage registers an image with n unencrypted disks.
func (w *World) PlainImage(t testing.TB, n int, tags map[string]string) (string, []string) {
	t.Helper()
	return w.Image(t, make([]fixture.Disk, n), tags)
}

// EncryptedImage registers an image tagged amishare:accounts = accounts
// with one disk encrypted under each of keys.
func (w *World) EncryptedImage(t testing.TB, accounts string, keys ...string) (string, []string) {
	t.Helper()
	var disks []fixture.Disk
	for _, k := range keys {
		disks = append(disks, fixture.Disk{KeyID: k})
	}
	return w.Image(t, disks, map[string]string{amitag.Accounts: accounts})
}

// Images registers n images named prefix-0, … with one plain snapshot each,
// all tagged tags (the cheap way to seed many); it returns their ids and snapshots.
func (w *World) Images(t testing.TB, prefix string, n int, tags map[string]string) (ids, snaps []string) {
	t.Helper()
	ids, snaps, err := w.Fixture.RegisterImages(w.Ctx, prefix, n, tags)
	if err != nil {
		t.Fatal(err)
	}
	return ids, snaps
}

// Key creates a customer-managed key named after the test and returns its ARN.
func (w *World) Key(t testing.TB) string {
	t.Helper()
	k, err := w.Fixture.CreateKey(w.Ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Tag sets tags on a resource.
func (w *World) Tag(t testing.TB, id string, tags map[string]string) {
	t.Helper()
	if err := w.Fixture.Tag(w.Ctx, id, tags); err != nil {
		t.Fatal(err)
	}
}

// Untag deletes tag keys from a resource.
func (w *World) Untag(t testing.TB, id string, keys ...string) {
	t.Helper()
	if err := w.Fixture.Untag(w.Ctx, id, keys...); err != nil {
		t.Fatal(err)
	}
}

// ShareImage grants launch permission by hand, outside amishare.
func (w *World) ShareImage(t testing.TB, id string, perm ec2types.LaunchPermission) {
	t.Helper()
	if err := w.Fixture.ShareImage(w.Ctx, id, perm); err != nil {
		t.Fatal(err)
	}
}

// ShareSnapshot grants create-volume permission by hand; group "all" makes it public.
func (w *World) ShareSnapshot(t testing.TB, snap string, accounts, groups []string) {
	t.Helper()
	if err := w.Fixture.ShareSnapshot(w.Ctx, snap, accounts, groups); err != nil {
		t.Fatal(err)
	}
}

// DeregisterImage deregisters an image; its snapshots stay.
func (w *World) DeregisterImage(t testing.TB, id string) {
	t.Helper()
	if err := w.Fixture.DeregisterImage(w.Ctx, id); err != nil {
		t.Fatal(err)
	}
}

// Tags returns an image's tags.
func (w *World) Tags(t testing.TB, id string) map[string]string {
	t.Helper()
	tags, err := w.Fixture.Tags(w.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

// SnapshotRecord returns the snapshot's amishare:image tag: the image
// amishare shared it for ("" when none).
func (w *World) SnapshotRecord(t testing.TB, snap string) string {
	t.Helper()
	tags, err := w.Fixture.SnapshotTags(w.Ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	return tags[amitag.Image]
}

// ImagePerms returns an image's launch permissions.
func (w *World) ImagePerms(t testing.TB, id string) fixture.Perms {
	t.Helper()
	p, err := w.Fixture.LaunchPermissions(w.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SnapshotPerms returns a snapshot's create-volume permissions.
func (w *World) SnapshotPerms(t testing.TB, id string) fixture.Perms {
	t.Helper()
	p, err := w.Fixture.VolumePermissions(w.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WantShared checks, from the owner's side, that the image and each of
// snaps are shared with exactly accounts and are not public. It does not
// look at the image's organizations and OUs (WantOrgs does).
func (w *World) WantShared(t testing.TB, id string, snaps []string, accounts ...string) {
	t.Helper()
	check := func(what string, p fixture.Perms) {
		if !slices.Equal(p.Accounts, accounts) || p.Public {
			t.Errorf("%s: got %v public=%v, want %v public=false", what, p.Accounts, p.Public, accounts)
		}
	}
	check("image "+id+" launch permissions", w.ImagePerms(t, id))
	for _, s := range snaps {
		check("snapshot "+s+" create-volume permissions", w.SnapshotPerms(t, s))
	}
}

// WantOnlyAllowed checks that nothing behind the image is shared with an
// account outside allowed or with everyone.
func (w *World) WantOnlyAllowed(t testing.TB, id string, snaps []string, allowed ...string) {
	t.Helper()
	check := func(what string, p fixture.Perms) {
		if p.Public {
			t.Errorf("%s is public", what)
		}
		for _, a := range p.Accounts {
			if !slices.Contains(allowed, a) {
				t.Errorf("%s is shared with %s, outside the allowlist", what, a)
			}
		}
	}
	check("image "+id, w.ImagePerms(t, id))
	for _, s := range snaps {
		check("snapshot "+s, w.SnapshotPerms(t, s))
	}
}

// WantOrgs checks that the image's launch permissions name exactly the
// organization ARNs orgs and the OU ARNs ous (each sorted; nil for none).
func (w *World) WantOrgs(t testing.TB, id string, orgs, ous []string) {
	t.Helper()
	if p := w.ImagePerms(t, id); !slices.Equal(p.Organizations, orgs) || !slices.Equal(p.OrganizationalUnits, ous) {
		t.Errorf("image %s: got organizations %v and OUs %v, want %v and %v", id, p.Organizations, p.OrganizationalUnits, orgs, ous)
	}
}

// WantStatus checks the image's amishare:status is status and its
// amishare:message contains msgContains.
func (w *World) WantStatus(t testing.TB, id string, status rules.Status, msgContains string) {
	t.Helper()
	tags := w.Tags(t, id)
	if tags[amitag.Status] != string(status) {
		t.Errorf("%s: got %q (message %q), want %q", amitag.Status, tags[amitag.Status], tags[amitag.Message], status)
	}
	if !strings.Contains(tags[amitag.Message], msgContains) {
		t.Errorf("%s: got %q, want it to contain %q", amitag.Message, tags[amitag.Message], msgContains)
	}
}
