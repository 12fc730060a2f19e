// Command amishare-demo is what `make demo` runs: it starts a local moto, seeds it
// with a configuration and a few AMIs, and delivers the shipped sample events
// (events/*.json) to the real handler, telling on stdout what amishare did.
// It checks everything it shows, so it doubles as a smoke test: any result
// other than the expected one ends it with exit status 1.
//
// The handler's JSON logs go to a temporary file (its path is printed), or
// to stderr with --verbose.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/handler"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	modulePath      = "github.com/amishare/amishare"
	configParameter = "/amishare/config"
	configDoc       = `{"allowedAccounts":["111122223333","444455556666"],"groups":{"prod":["777788889999"]},` +
		`"allowedOrganizationalUnits":["` + workloadsOU + `"]}`
	// workloadsOU is the OU "workloads" of organization o-a1b2c3d4e5
	// (management account 210987654321), allowed in the configuration.
	workloadsOU   = "arn:aws:organizations::210987654321:ou/o-a1b2c3d4e5/ou-ab12-11111111"
	workloadsOUID = "ou-ab12-11111111"
	// sampleImageID is the image id the shipped sample events name.
	sampleImageID = "ami-0123456789abcdef0"

	accountA     = "111122223333" // allowed
	accountB     = "444455556666" // allowed
	accountProd  = "777788889999" // the prod group
	accountOther = "999999999999" // not allowed
)

func main() {
	verbose := flag.Bool("verbose", false, "write the handler's JSON logs to stderr instead of a temporary file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the demo winds down and stops moto; a
		// second one kills it at once (moto then ends with our stdin).
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, *verbose)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "\ndemo interrupted; moto stopped")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

// demo holds what every step needs.
type demo struct {
	ctx    context.Context
	root   string // module root, where events/ lives
	h      *handler.Handler
	hopts  app.Options // to build a new handler (a fresh container) after a configuration change
	fx     *fixture.Fixture
	srv    *moto.Server
	labels map[string]string // key ARN → short name for display

	plain      image // the image of steps 2, 3 and 6
	enc        image // the encrypted image of steps 4 and 7
	keys       []string
	awsManaged image // the image of steps 5 and 10
}

// image is one AMI the demo registered, with what lies behind it.
type image struct {
	id    string
	snaps []string
	keyOf map[string]string // snapshot id → key label, encrypted snapshots only
}

func run(ctx context.Context, verbose bool) (err error) {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	logw, logNote, closeLog, err := openLog(verbose)
	if err != nil {
		return err
	}
	defer closeLog()

	title("amishare demo")
	fmt.Printf("amishare shares an AMI and its EBS snapshots with the accounts named in\n")
	fmt.Printf("its %s tag. Here the real handler runs against moto, a local AWS\n", amitag.Accounts)
	fmt.Println("emulator, and receives the sample events shipped in events/.")
	fmt.Println()

	fmt.Print("Starting moto on 127.0.0.1 ... ")
	srv, err := moto.Start()
	if err != nil {
		fmt.Println("failed")
		return err
	}
	defer func() {
		if stopErr := srv.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	fmt.Println(srv.Endpoint)
	fmt.Println(logNote)
	if err := ctx.Err(); err != nil {
		return err
	}

	// The handler builds its clients from the standard SDK chain, so the
	// environment must point at moto before app.New.
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	}
	if err := os.Setenv(app.ConfigParameterEnv, configParameter); err != nil {
		return fmt.Errorf("setting %s: %w", app.ConfigParameterEnv, err)
	}
	hopts := app.Options{Log: slog.New(slog.NewJSONHandler(logw, nil))}
	a, err := app.New(ctx, hopts)
	if err != nil {
		return err
	}
	h := a.Handler
	cfg, err := srv.AWSConfig(ctx)
	if err != nil {
		return err
	}
	d := &demo{ctx: ctx, root: root, h: h, hopts: hopts, fx: fixture.New(cfg), srv: srv, labels: map[string]string{}}

	steps := []struct {
		title string
		run   func() error
	}{
		{"1. The configuration", d.configure},
		{"2. Share a plain AMI", d.sharePlain},
		{"3. Change the tag: revoke an account", d.changeTag},
		{"4. Share an AMI encrypted with customer-managed keys", d.shareEncrypted},
		{"5. Refuse an AMI encrypted with the AWS managed key", d.refuseAWSManaged},
		{"6. Share an encrypted AMI with an organizational unit (OU)", d.shareWithOU},
		{"7. Copy an AMI to a second region and share the copy there", d.copyToRegion},
		{"8. Share the AWS-managed-key AMI through a re-encrypted copy", d.reencrypt},
		{"9. Someone shares by hand: the scheduled sweep repairs the drift", d.sweepDrift},
		{"10. Deregister an AMI: its snapshots and keys are unshared", d.deregister},
		{"11. Every amishare tag deleted at once: what amishare gave is revoked", d.untagAll},
		{"12. The other side: a receiver's own parameter and tags", d.consumerView},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Println()
		heading(s.title)
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.title, err)
		}
	}
	fmt.Println()
	fmt.Println("demo finished: every result was as expected.")
	return nil
}

// configure writes the configuration parameter.
func (d *demo) configure() error {
	if err := d.fx.PutConfig(d.ctx, configParameter, configDoc); err != nil {
		return err
	}
	fmt.Printf("SSM parameter %s (%s=%s):\n", configParameter, app.ConfigParameterEnv, configParameter)
	printJSON("  ", []byte(configDoc))
	fmt.Printf("Images may be shared with %s and %s, with the group prod (%s),\n", accountA, accountB, accountProd)
	fmt.Printf("and with the OU %s (tag it by its id, %s).\n", workloadsOU, workloadsOUID)
	fmt.Println("Any other account, organization or OU named in a tag is refused.")
	return nil
}

// sharePlain registers an unencrypted image and shares it through the AMI
// available event, with one account of the tag refused.
func (d *demo) sharePlain() error {
	tag := accountA + " prod " + accountOther
	id, snaps, err := d.fx.RegisterImage(d.ctx, "demo-plain", []fixture.Disk{{}, {}, {}}, nil)
	if err != nil {
		return err
	}
	d.plain = image{id: id, snaps: snaps}
	fmt.Printf("Registered %s with 3 unencrypted snapshots.\n", id)
	if err := d.tagImage(id, tag); err != nil {
		return err
	}
	fmt.Printf("(%s is not in the allowlist: expect it to be refused.)\n", accountOther)

	res, before, after, err := d.deliverAndCompare(d.plain, "ami-available.json")
	if err != nil {
		return err
	}
	fmt.Println("  (snapshots first, then the image: no account ever sees an image it cannot launch)")
	d.printPerms(d.plain, before, after)
	if err := d.printStatusTags(id); err != nil {
		return err
	}
	want := []string{accountA, accountProd}
	if err := expectResult(res, share.OutcomeApplied, rules.StatusPartial); err != nil {
		return err
	}
	if len(res.Refused) != 1 || res.Refused[0].Token != accountOther {
		return fmt.Errorf("refused %v, want only %s", res.Refused, accountOther)
	}
	if err := expectPerms(d.plain, after, want); err != nil {
		return err
	}
	if err := d.expectStatusTags(id, res); err != nil {
		return err
	}
	check("image and its 3 snapshots shared with exactly %s; %s refused", strings.Join(want, " and "), accountOther)
	return nil
}

// changeTag retags the plain image and delivers the tag change event.
func (d *demo) changeTag() error {
	fmt.Printf("The prod group should no longer use %s.\n", d.plain.id)
	if err := d.tagImage(d.plain.id, accountA); err != nil {
		return err
	}
	res, before, after, err := d.deliverAndCompare(d.plain, "tag-change.json")
	if err != nil {
		return err
	}
	fmt.Println("  (the image first, then its snapshots: the reverse of sharing)")
	d.printPerms(d.plain, before, after)
	if err := d.printStatusTags(d.plain.id); err != nil {
		return err
	}
	if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
		return err
	}
	if err := expectPerms(d.plain, after, []string{accountA}); err != nil {
		return err
	}
	if err := d.expectStatusTags(d.plain.id, res); err != nil {
		return err
	}
	check("%s revoked from the image and its 3 snapshots; %s kept", accountProd, accountA)
	return nil
}

// shareEncrypted shares an image whose snapshots use two customer-managed
// keys: the key policies gain amishare's statements, the rest stays.
func (d *demo) shareEncrypted() error {
	key1, err := d.fx.CreateKey(d.ctx, "amishare demo key 1")
	if err != nil {
		return err
	}
	key2, err := d.fx.CreateKey(d.ctx, "amishare demo key 2")
	if err != nil {
		return err
	}
	d.labels[key1], d.labels[key2] = "key-1", "key-2"
	fmt.Println("Created two customer-managed KMS keys:")
	fmt.Printf("  key-1  %s\n  key-2  %s\n", key1, key2)

	disks := []fixture.Disk{{KeyID: key1}, {KeyID: key1}, {KeyID: key2}}
	id, snaps, err := d.fx.RegisterImage(d.ctx, "demo-encrypted", disks, nil)
	if err != nil {
		return err
	}
	img := image{id: id, snaps: snaps, keyOf: map[string]string{snaps[0]: "key-1", snaps[1]: "key-1", snaps[2]: "key-2"}}
	d.enc, d.keys = img, []string{key1, key2}
	fmt.Printf("Registered %s with 3 encrypted snapshots (two under key-1, one under key-2).\n", id)
	if err := d.tagImage(id, accountA+" "+accountB); err != nil {
		return err
	}

	keys := []string{key1, key2}
	policiesBefore := map[string]keyPolicy{}
	fmt.Println()
	fmt.Println("Key policies before (Sid and principals of each statement):")
	for _, k := range keys {
		stmts, err := d.policy(k)
		if err != nil {
			return err
		}
		policiesBefore[k] = stmts
		stmts.print(d.labels[k])
	}

	res, before, after, err := d.deliverAndCompare(img, "ami-available.json")
	if err != nil {
		return err
	}
	fmt.Println("  (the keys first, then the snapshots, then the image)")

	want := []string{accountA, accountB}
	fmt.Println()
	fmt.Println("Key policies after:")
	policiesAfter := map[string]keyPolicy{}
	for _, k := range keys {
		stmts, err := d.policy(k)
		if err != nil {
			return err
		}
		policiesAfter[k] = stmts
		stmts.print(d.labels[k])
	}
	fmt.Println()
	fmt.Println("amishare's two statements, in full (the same on both keys):")
	policiesAfter[key1].printOurs()
	d.printPerms(img, before, after)
	if err := d.printStatusTags(id); err != nil {
		return err
	}

	if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
		return err
	}
	for _, k := range keys {
		if err := expectPolicy(policiesBefore[k], policiesAfter[k], want); err != nil {
			return fmt.Errorf("policy of %s (%s): %w", d.labels[k], k, err)
		}
	}
	if err := expectPerms(img, after, want); err != nil {
		return err
	}
	if err := d.expectStatusTags(id, res); err != nil {
		return err
	}
	check("both key policies grant %s through amishare's statements; their original statement is intact", strings.Join(want, " and "))
	check("image and its 3 snapshots shared with exactly %s", strings.Join(want, " and "))
	return nil
}

// refuseAWSManaged shows that an image under the AWS managed EBS key is
// refused: such a key cannot be shared, so nothing is.
func (d *demo) refuseAWSManaged() error {
	id, snaps, err := d.fx.RegisterImage(d.ctx, "demo-aws-managed", []fixture.Disk{{Encrypted: true}}, nil)
	if err != nil {
		return err
	}
	img := image{id: id, snaps: snaps, keyOf: map[string]string{snaps[0]: "aws/ebs"}}
	d.awsManaged = img
	fmt.Printf("Registered %s with 1 snapshot encrypted with the default EBS key (alias/aws/ebs).\n", id)
	if err := d.tagImage(id, accountA); err != nil {
		return err
	}
	res, before, after, err := d.deliverAndCompare(img, "ami-available.json")
	if err != nil {
		return err
	}
	d.printPerms(img, before, after)
	if err := d.printStatusTags(id); err != nil {
		return err
	}
	if err := expectResult(res, share.OutcomeBlocked, rules.StatusError); err != nil {
		return err
	}
	if !strings.Contains(res.Message, `configure copyKeys["us-east-1"]`) {
		return fmt.Errorf("message %q does not name the copyKeys entry to configure", res.Message)
	}
	if len(res.Changes) != 0 {
		return fmt.Errorf("%d permission changes, want none", len(res.Changes))
	}
	if err := expectPerms(img, after, nil); err != nil {
		return err
	}
	if err := d.expectStatusTags(id, res); err != nil {
		return err
	}
	check("refused with status error; nothing shared")
	return nil
}

// tagImage sets the accounts tag and says so.
func (d *demo) tagImage(id, value string) error {
	if err := d.fx.Tag(d.ctx, id, map[string]string{amitag.Accounts: value}); err != nil {
		return err
	}
	fmt.Printf("Tagged %s  %s = %q\n", id, amitag.Accounts, value)
	return nil
}

// deliverAndCompare reads the permissions, delivers the sample event named
// name (with its image id replaced by img's) to the handler, prints the
// summary and reads the permissions again.
func (d *demo) deliverAndCompare(img image, name string) (res share.Result, before, after map[string]fixture.Perms, err error) {
	if before, err = d.perms(img); err != nil {
		return res, nil, nil, err
	}
	raw, err := d.sampleEvent(name, img.id)
	if err != nil {
		return res, nil, nil, err
	}
	fmt.Println()
	fmt.Printf("Delivering events/%s (image id replaced by %s) to the handler.\n", name, img.id)
	sum, err := d.h.Handle(d.ctx, raw)
	if err != nil {
		return res, nil, nil, fmt.Errorf("handler: %w", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].ImageID != img.id {
		return res, nil, nil, fmt.Errorf("handler reconciled %d image(s) (%+v), want %s", len(sum.Images), sum.Images, img.id)
	}
	res = sum.Images[0]
	d.printSummary(sum, res)
	if after, err = d.perms(img); err != nil {
		return res, nil, nil, err
	}
	return res, before, after, nil
}

// sampleEvent reads a shipped sample event and points it at imageID.
func (d *demo) sampleEvent(name, imageID string) ([]byte, error) {
	path := filepath.Join(d.root, "events", name)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the sample event: %w", err)
	}
	if !bytes.Contains(raw, []byte(sampleImageID)) {
		return nil, fmt.Errorf("sample event %s no longer names %s, which the demo replaces with its image", path, sampleImageID)
	}
	return bytes.ReplaceAll(raw, []byte(sampleImageID), []byte(imageID)), nil
}

// perms reads who may use the image and each of its snapshots, by resource id.
func (d *demo) perms(img image) (map[string]fixture.Perms, error) {
	out := map[string]fixture.Perms{}
	p, err := d.fx.LaunchPermissions(d.ctx, img.id)
	if err != nil {
		return nil, err
	}
	out[img.id] = p
	for _, s := range img.snaps {
		if out[s], err = d.fx.VolumePermissions(d.ctx, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// policy reads and parses a key policy.
func (d *demo) policy(keyARN string) (keyPolicy, error) {
	doc, err := d.fx.KeyPolicy(d.ctx, keyARN)
	if err != nil {
		return keyPolicy{}, err
	}
	p, err := parseKeyPolicy(keyARN, doc)
	if err != nil {
		return p, fmt.Errorf("policy of %s: %w", keyARN, err)
	}
	return p, nil
}

// expectResult checks a reconcile's outcome and status.
func expectResult(res share.Result, outcome share.Outcome, want rules.Status) error {
	if res.Outcome != outcome || res.Status != want {
		return fmt.Errorf("image %s: outcome %q, status %q (%s), want outcome %q, status %q",
			res.ImageID, res.Outcome, res.Status, res.Message, outcome, want)
	}
	return nil
}

// expectPerms checks that the image and every snapshot are shared with
// exactly want, and none is public.
func expectPerms(img image, got map[string]fixture.Perms, want []string) error {
	for _, id := range append([]string{img.id}, img.snaps...) {
		p := got[id]
		if p.Public || !slices.Equal(p.Accounts, want) {
			return fmt.Errorf("%s is shared with %s, want %s", id, describePerms(p), describePerms(fixture.Perms{Accounts: want}))
		}
	}
	return nil
}

// expectStatusTags checks that the image's status tags say what the handler reported.
func (d *demo) expectStatusTags(id string, res share.Result) error {
	tags, err := d.fx.Tags(d.ctx, id)
	if err != nil {
		return err
	}
	if tags[amitag.Status] != string(res.Status) || tags[amitag.Message] != res.Message {
		return fmt.Errorf("%s status tags are %q / %q, want %q / %q",
			id, tags[amitag.Status], tags[amitag.Message], res.Status, res.Message)
	}
	return nil
}

// moduleRoot finds the amishare module's directory, the working directory
// or one above it, so that the demo reads the shipped sample events.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			path := readModulePath(f)
			f.Close()
			if path == modulePath {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s is not inside the %s module: run the demo from the repository (make demo), it reads the sample events in events/", wd, modulePath)
		}
		dir = parent
	}
}

func readModulePath(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// openLog gives the writer for the handler's logs and a line saying where they go.
func openLog(verbose bool) (w io.Writer, note string, closeFn func(), err error) {
	if verbose {
		return os.Stderr, "Handler logs (JSON) go to stderr.", func() {}, nil
	}
	f, err := os.CreateTemp("", "amishare-demo-*.log")
	if err != nil {
		return nil, "", nil, fmt.Errorf("creating the log file: %w", err)
	}
	note = "Handler logs (JSON): " + f.Name() + "  (--verbose sends them to stderr)"
	return f, note, func() {
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, errors.Join(errors.New("closing the log file"), err))
		}
	}, nil
}
