package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/share"
)

// sweepDrift changes the plain image's permissions by hand, as someone in
// the console might, and lets the scheduled sweep put them back.
func (d *demo) sweepDrift() error {
	img := d.plain
	fmt.Printf("By hand, outside amishare: %s gets launch permission on %s and create-volume\n", accountB, img.id)
	fmt.Printf("permission on %s; %s loses it on %s.\n", img.snaps[0], accountA, img.snaps[1])
	if err := d.fx.ShareImage(d.ctx, img.id, ec2types.LaunchPermission{UserId: aws.String(accountB)}); err != nil {
		return err
	}
	if err := d.fx.ShareSnapshot(d.ctx, img.snaps[0], []string{accountB}, nil); err != nil {
		return err
	}
	if _, err := d.fx.EC2.ModifySnapshotAttribute(d.ctx, &ec2.ModifySnapshotAttributeInput{
		SnapshotId: aws.String(img.snaps[1]), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: ec2types.OperationTypeRemove, UserIds: []string{accountA},
	}); err != nil {
		return err
	}
	before, err := d.perms(img)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(d.root, "events", "scheduled-sweep.json"))
	if err != nil {
		return fmt.Errorf("reading the sample event: %w", err)
	}
	fmt.Println()
	fmt.Println("Delivering events/scheduled-sweep.json (the stack's schedule, every 6 hours by")
	fmt.Println("default) to the handler: it re-checks every managed image at sweepRate (10 calls/s).")
	start := time.Now()
	sum, err := d.h.Handle(d.ctx, raw)
	if err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	if len(sum.Sweeps) != 1 {
		return fmt.Errorf("handler ran %d sweeps, want 1", len(sum.Sweeps))
	}
	s := sum.Sweeps[0]
	fmt.Println("Sweep summary:")
	w := table()
	fmt.Fprintf(w, "  managed images\t%d\n", s.ManagedImages)
	fmt.Fprintf(w, "  checked\t%d\n", s.ImagesChecked)
	fmt.Fprintf(w, "  drift repaired\t%d\n", s.DriftRepaired)
	fmt.Fprintf(w, "  errors\t%d (images left in status error, like the one under the AWS managed key)\n", s.Errors)
	fmt.Fprintf(w, "  AWS calls\t%d in %.1f s\n", s.Calls, time.Since(start).Seconds())
	w.Flush()
	var repaired *share.Result
	for i := range s.Changed {
		if s.Changed[i].ImageID == img.id {
			repaired = &s.Changed[i]
		}
	}
	if repaired == nil {
		return fmt.Errorf("the sweep did not repair %s", img.id)
	}
	d.printSummary(sum, *repaired)
	after, err := d.perms(img)
	if err != nil {
		return err
	}
	d.printPerms(img, before, after)
	if err := expectPerms(img, after, []string{accountA}); err != nil {
		return err
	}
	if s.DriftRepaired != 1 || s.ImagesChecked != s.ManagedImages || s.Continuation != nil {
		return fmt.Errorf("sweep: %d repaired, %d of %d managed images checked (continuation %v), want 1 repaired, all checked, complete",
			s.DriftRepaired, s.ImagesChecked, s.ManagedImages, s.Continuation)
	}
	check("the hand-made share of %s is gone and %s's permission is back: exactly what the tag says", accountB, accountA)
	return nil
}

// deregister deregisters the encrypted image and delivers its
// deregistered event: its snapshots and keys stop being shared.
func (d *demo) deregister() error {
	img := d.enc
	fmt.Printf("%s is shared with %s and %s; its snapshots are recorded for it:\n", img.id, accountA, accountB)
	for _, snap := range img.snaps {
		tags, err := d.fx.SnapshotTags(d.ctx, snap)
		if err != nil {
			return err
		}
		fmt.Printf("  %s  %s = %s\n", snap, amitag.Image, tags[amitag.Image])
		if tags[amitag.Image] != img.id {
			return fmt.Errorf("%s is not recorded for %s", snap, img.id)
		}
	}
	before, err := d.perms(img)
	if err != nil {
		return err
	}
	if err := d.fx.DeregisterImage(d.ctx, img.id); err != nil {
		return err
	}
	fmt.Printf("Deregistered %s. AWS keeps its snapshots, still shared with both accounts.\n", img.id)
	raw, err := d.sampleEvent("ami-deregistered.json", img.id)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("Delivering events/ami-deregistered.json (image id replaced by %s) to the handler.\n", img.id)
	sum, err := d.h.Handle(d.ctx, raw)
	if err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	if len(sum.Images) != 1 || sum.Images[0].Outcome != share.OutcomeCleaned {
		return fmt.Errorf("handler: %+v, want the image cleaned up", sum.Images)
	}
	d.printSummary(sum, sum.Images[0])

	fmt.Println("Snapshots of the deregistered image (kept, never deleted):")
	w := table()
	for _, snap := range img.snaps {
		p, err := d.fx.VolumePermissions(d.ctx, snap)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s\t%s\t->\t%s\n", snap, describePerms(before[snap]), describePerms(p))
		if len(p.Accounts) != 0 || p.Public {
			return fmt.Errorf("%s is still shared with %s", snap, describePerms(p))
		}
	}
	w.Flush()
	// key-1 also encrypts the golden image of step 7, shared with accountA:
	// that account stays on key-1; everything else goes.
	keep := map[string][]string{"key-1": {accountA}}
	fmt.Println("Keys (an account stays only while another managed image on the key needs it):")
	for _, k := range d.keys {
		accounts, err := d.fx.KeyAccounts(d.ctx, k)
		if err != nil {
			return err
		}
		fmt.Printf("  %s: amishare's statements grant %v\n", d.labels[k], accounts)
		if want := keep[d.labels[k]]; !slices.Equal(accounts, want) {
			return fmt.Errorf("key %s grants %v, want %v", d.labels[k], accounts, want)
		}
	}
	fmt.Printf("Find them with: aws ec2 describe-snapshots --owner-ids self --snapshot-ids %s\n", img.snaps[0])
	fmt.Println("(the log line \"snapshots released\" names every snapshot of the image).")
	var remaining []string
	for _, snap := range img.snaps {
		if _, err := d.fx.SnapshotTags(d.ctx, snap); err == nil {
			remaining = append(remaining, snap)
		}
	}
	if !slices.Equal(remaining, img.snaps) {
		return fmt.Errorf("snapshots %v exist, want all of %v kept", remaining, img.snaps)
	}
	check("the deregistered image's 3 snapshots are shared with nobody; its keys dropped %s, and %s where no other image needs it", accountB, accountA)
	return nil
}

// untagAll deletes every amishare tag of the plain image at once, as a
// careless `aws ec2 delete-tags` would: the image no longer looks managed,
// but its snapshots' record shows amishare shared it, so everything
// amishare gave is revoked (its launch permissions by a reset).
func (d *demo) untagAll() error {
	img := d.plain
	fmt.Printf("Someone runs: aws ec2 delete-tags --resources %s   (every tag of the image at once)\n", img.id)
	if _, err := d.fx.EC2.DeleteTags(d.ctx, &ec2.DeleteTagsInput{Resources: []string{img.id}}); err != nil {
		return err
	}
	tags, err := d.fx.Tags(d.ctx, img.id)
	if err != nil {
		return err
	}
	if len(tags) != 0 {
		return fmt.Errorf("%s still has tags %v", img.id, tags)
	}
	fmt.Printf("%s carries no amishare tag now; its snapshots still record it (%s = %s).\n", img.id, amitag.Image, img.id)
	res, before, after, err := d.deliverAndCompare(img, "cloudtrail-delete-all-tags.json")
	if err != nil {
		return err
	}
	if res.Outcome != share.OutcomeCleaned {
		return fmt.Errorf("outcome %s (%s), want the image released", res.Outcome, res.Reason)
	}
	d.printPerms(img, before, after)
	if err := expectPerms(img, after, nil); err != nil {
		return err
	}
	for _, snap := range img.snaps {
		tags, err := d.fx.SnapshotTags(d.ctx, snap)
		if err != nil {
			return err
		}
		if v, ok := tags[amitag.Image]; ok {
			return fmt.Errorf("%s still records %q", snap, v)
		}
	}
	check("deleting every tag revoked everything amishare gave %s: launch permissions (reset), snapshots, and the record", img.id)
	return nil
}
