package main

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

const (
	homeRegion   = "us-east-1" // where the handler runs (AWS_REGION) and the sample events come from
	secondRegion = "eu-west-1"
)

// copyToRegion configures copies to eu-west-1, tags an encrypted image with
// that region, and delivers its available event: the handler copies it
// there, encrypted with eu-west-1's key; then the copy's own available event
// (region eu-west-1, while the handler runs in us-east-1) shares it there.
func (d *demo) copyToRegion() error {
	eu := d.fx.In(secondRegion)
	euKey, err := eu.CreateKey(d.ctx, "amishare demo copies key (eu-west-1)")
	if err != nil {
		return err
	}
	homeKey, err := d.fx.CreateKey(d.ctx, "amishare demo copies key (us-east-1)")
	if err != nil {
		return err
	}
	d.labels[euKey], d.labels[homeKey] = "eu-copy-key", "us-copy-key"
	// The configuration of step 1 (the OU of step 6 stays allowed), plus copies.
	doc := fmt.Sprintf(`{"allowedAccounts":["%s","%s"],"groups":{"prod":["%s"]},"allowedOrganizationalUnits":["%s"],"allowedRegions":["%s"],"copyKeys":{"%s":"%s","%s":"%s"}}`,
		accountA, accountB, accountProd, workloadsOU, secondRegion, secondRegion, euKey, homeRegion, homeKey)
	if err := d.fx.PutConfig(d.ctx, configParameter, doc); err != nil {
		return err
	}
	fmt.Println("The configuration now allows copies to eu-west-1 and names a customer-managed")
	fmt.Println("key per region for them (copyKeys):")
	printJSON("  ", []byte(doc))
	// A Lambda container keeps the configuration for a minute; start a new one.
	a, err := app.New(d.ctx, d.hopts)
	if err != nil {
		return err
	}
	d.h = a.Handler
	fmt.Println("(A new handler, as a new Lambda container would be: each caches the configuration for 60 s.)")

	key1 := ""
	for k, label := range d.labels {
		if label == "key-1" {
			key1 = k
		}
	}
	id, snaps, err := d.fx.RegisterImage(d.ctx, "demo-golden", []fixture.Disk{{KeyID: key1}, {KeyID: key1}}, nil)
	if err != nil {
		return err
	}
	src := image{id: id, snaps: snaps, keyOf: map[string]string{snaps[0]: "key-1", snaps[1]: "key-1"}}
	fmt.Printf("Registered %s (us-east-1) with 2 snapshots encrypted with key-1.\n", id)
	if err := d.fx.Tag(d.ctx, id, map[string]string{amitag.Accounts: accountA, amitag.Regions: secondRegion}); err != nil {
		return err
	}
	fmt.Printf("Tagged %s  %s = %q, %s = %q\n", id, amitag.Accounts, accountA, amitag.Regions, secondRegion)

	res, err := d.deliverIn(d.fx, src, "ami-available.json", homeRegion)
	if err != nil {
		return err
	}
	if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
		return err
	}
	cp, err := d.onlyCopy(eu, id)
	if err != nil {
		return err
	}
	cpID := aws.ToString(cp.ImageId)
	copyImg, err := d.describeCopy(eu, cp)
	if err != nil {
		return err
	}
	if err := d.printStatusTags(id); err != nil {
		return err
	}
	if err := expectCopy(cp, copyImg, accountA, homeRegion+"/"+id, 2, "eu-copy-key"); err != nil {
		return err
	}
	if tags, err := d.fx.Tags(d.ctx, id); err != nil {
		return err
	} else if want := secondRegion + "=" + cpID; tags[amitag.Copies] != want {
		return fmt.Errorf("%s on the source is %q, want %q", amitag.Copies, tags[amitag.Copies], want)
	}
	check("copied to eu-west-1 as %s: both snapshots re-encrypted with eu-copy-key, tagged for sharing, no %s", cpID, amitag.Regions)

	fmt.Println()
	fmt.Printf("The copy's available event arrives from eu-west-1 (its \"region\" field); the\n")
	fmt.Printf("handler runs in us-east-1 and acts in eu-west-1 all the same.\n")
	res, err = d.deliverIn(eu, copyImg, "ami-available.json", secondRegion)
	if err != nil {
		return err
	}
	if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
		return err
	}
	after, err := permsIn(d, eu, copyImg)
	if err != nil {
		return err
	}
	if err := expectPerms(copyImg, after, []string{accountA}); err != nil {
		return err
	}
	if err := d.expectKeyAccounts(eu, euKey, []string{accountA}); err != nil {
		return err
	}
	check("the copy %s and its snapshots are shared with %s in eu-west-1; eu-copy-key's policy lets %s use it", cpID, accountA, accountA)
	return nil
}

// reencrypt redelivers the event of step 5's image now that copyKeys names a
// key for us-east-1: a re-encrypted copy is made and shared instead.
func (d *demo) reencrypt() error {
	src := d.awsManaged
	fmt.Printf("%s is encrypted with the AWS managed key; copyKeys now names us-copy-key for us-east-1.\n", src.id)
	res, err := d.deliverIn(d.fx, src, "ami-available.json", homeRegion)
	if err != nil {
		return err
	}
	if err := d.printStatusTags(src.id); err != nil {
		return err
	}
	if err := expectResult(res, share.OutcomeApplied, rules.StatusCopied); err != nil {
		return err
	}
	cp, err := d.onlyCopy(d.fx, src.id)
	if err != nil {
		return err
	}
	cpID := aws.ToString(cp.ImageId)
	if !strings.Contains(res.Message, cpID) {
		return fmt.Errorf("message %q does not name the copy %s", res.Message, cpID)
	}
	before, err := d.perms(src)
	if err != nil {
		return err
	}
	if err := expectPerms(src, before, nil); err != nil {
		return err
	}
	copyImg, err := d.describeCopy(d.fx, cp)
	if err != nil {
		return err
	}
	if err := expectCopy(cp, copyImg, accountA, homeRegion+"/"+src.id, 1, "us-copy-key"); err != nil {
		return err
	}
	check("status copied: the source stays unshared; its copy %s is re-encrypted with us-copy-key", cpID)

	fmt.Println()
	res, err = d.deliverIn(d.fx, copyImg, "ami-available.json", homeRegion)
	if err != nil {
		return err
	}
	if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
		return err
	}
	after, err := permsIn(d, d.fx, copyImg)
	if err != nil {
		return err
	}
	if err := expectPerms(copyImg, after, []string{accountA}); err != nil {
		return err
	}
	check("the re-encrypted copy %s is shared with %s", cpID, accountA)
	return nil
}

// deliverIn delivers events/name for img as sent from region, and shows the
// summary and the permissions before and after, read with fx.
func (d *demo) deliverIn(fx *fixture.Fixture, img image, name, region string) (share.Result, error) {
	before, err := permsIn(d, fx, img)
	if err != nil {
		return share.Result{}, err
	}
	raw, err := d.sampleEvent(name, img.id)
	if err != nil {
		return share.Result{}, err
	}
	raw = bytes.ReplaceAll(raw, []byte(`"`+homeRegion+`"`), []byte(`"`+region+`"`))
	fmt.Println()
	fmt.Printf("Delivering events/%s for %s, region %s, to the handler.\n", name, img.id, region)
	sum, err := d.h.Handle(d.ctx, raw)
	if err != nil {
		return share.Result{}, fmt.Errorf("handler: %w", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].ImageID != img.id {
		return share.Result{}, fmt.Errorf("handler reconciled %+v, want %s", sum.Images, img.id)
	}
	res := sum.Images[0]
	d.printSummary(sum, res)
	printCopySteps(d, res)
	after, err := permsIn(d, fx, img)
	if err != nil {
		return res, err
	}
	d.printPerms(img, before, after)
	return res, nil
}

// printCopySteps shows the copies the handler made and the copy tags it set.
func printCopySteps(d *demo, res share.Result) {
	if res.Plan == nil || len(res.Plan.Copies) == 0 {
		return
	}
	fmt.Println("  copies:")
	w := table()
	for _, c := range res.Plan.Copies {
		key := "(unencrypted)"
		if c.KMSKeyID != "" {
			key = d.labels[c.KMSKeyID]
		}
		fmt.Fprintf(w, "    %s\t%s\t%s\tkey %s\taccounts %q\tclient token %s\n", c.Action, c.Region, c.ImageID, key, c.Accounts, c.Token)
	}
	w.Flush()
}

// permsIn reads, with fx, who may use the image and each of its snapshots.
func permsIn(d *demo, fx *fixture.Fixture, img image) (map[string]fixture.Perms, error) {
	saved := d.fx
	d.fx = fx
	defer func() { d.fx = saved }()
	return d.perms(img)
}

// onlyCopy finds the one image in fx's region copied from src.
func (d *demo) onlyCopy(fx *fixture.Fixture, src string) (ec2types.Image, error) {
	imgs, err := fx.ImagesTagged(d.ctx, amitag.Source, homeRegion+"/"+src)
	if err != nil {
		return ec2types.Image{}, err
	}
	if len(imgs) != 1 {
		return ec2types.Image{}, fmt.Errorf("%d copies of %s, want 1", len(imgs), src)
	}
	return imgs[0], nil
}

// describeCopy prints the copy, its tags and its snapshots' keys, and
// returns it as a demo image.
func (d *demo) describeCopy(fx *fixture.Fixture, cp ec2types.Image) (image, error) {
	snaps, keys, err := fx.SnapshotKeys(d.ctx, cp)
	if err != nil {
		return image{}, err
	}
	img := image{id: aws.ToString(cp.ImageId), snaps: snaps, keyOf: map[string]string{}}
	fmt.Println()
	fmt.Printf("The copy %s (%q):\n", img.id, aws.ToString(cp.Name))
	w := table()
	tags := tagsOf(cp)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		fmt.Fprintf(w, "  tag %s\t%s\n", k, tags[k])
	}
	for i, s := range snaps {
		img.keyOf[s] = d.labels[keys[i]]
		fmt.Fprintf(w, "  snapshot %s\tencrypted with %s\n", s, img.keyOf[s])
	}
	w.Flush()
	return img, nil
}

// expectCopy checks the copy's tags and that every snapshot uses keyLabel.
func expectCopy(cp ec2types.Image, img image, accounts, source string, snaps int, keyLabel string) error {
	tags := tagsOf(cp)
	if tags[amitag.Accounts] != accounts || tags[amitag.Source] != source {
		return fmt.Errorf("copy tags %v, want %s=%q and %s=%q", tags, amitag.Accounts, accounts, amitag.Source, source)
	}
	if _, ok := tags[amitag.Regions]; ok {
		return fmt.Errorf("copy has %s: a copy must never be copied again", amitag.Regions)
	}
	if len(img.snaps) != snaps {
		return fmt.Errorf("copy has %d snapshots, want %d", len(img.snaps), snaps)
	}
	for _, s := range img.snaps {
		if img.keyOf[s] != keyLabel {
			return fmt.Errorf("copy snapshot %s is encrypted with %q, want %s", s, img.keyOf[s], keyLabel)
		}
	}
	return nil
}

func (d *demo) expectKeyAccounts(fx *fixture.Fixture, key string, want []string) error {
	got, err := fx.KeyAccounts(d.ctx, key)
	if err != nil {
		return err
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("key %s lets %v use it, want %v", d.labels[key], got, want)
	}
	return nil
}

func tagsOf(img ec2types.Image) map[string]string {
	m := map[string]string{}
	for _, t := range img.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
