package moto

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// clients returns EC2 and KMS clients for a fresh server state. Retries are
// off so that a 500 from moto shows up at once instead of after backoff.
func clients(t *testing.T) (*ec2.Client, *kms.Client) {
	t.Helper()
	s := ForTest(t)
	cfg, err := s.AWSConfig(context.Background())
	if err != nil {
		t.Fatalf("AWSConfig: %v", err)
	}
	noRetry := func(r *aws.Retryer) { *r = aws.NopRetryer{} }
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) { noRetry(&o.Retryer) }),
		kms.NewFromConfig(cfg, func(o *kms.Options) { noRetry(&o.Retryer) })
}

func createKey(t *testing.T, c *kms.Client) *kmstypes.KeyMetadata {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String(t.Name())})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return out.KeyMetadata
}

// createSnapshot snapshots a new volume; keyID is sent as given ("" for none).
func createSnapshot(t *testing.T, c *ec2.Client, size int32, encrypted bool, keyID string) string {
	t.Helper()
	ctx := context.Background()
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(size)}
	if encrypted {
		in.Encrypted = aws.Bool(true)
	}
	if keyID != "" {
		in.KmsKeyId = aws.String(keyID)
	}
	vol, err := c.CreateVolume(ctx, in)
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	snap, err := c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	return aws.ToString(snap.SnapshotId)
}

func snapshotCount(t *testing.T, c *ec2.Client) int {
	t.Helper()
	out, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{})
	if err != nil {
		t.Fatalf("DescribeSnapshots: %v", err)
	}
	return len(out.Snapshots)
}

func describeImage(t *testing.T, c *ec2.Client, id string) ec2types.Image {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeImages(%s): %v", id, err)
	}
	if len(out.Images) != 1 {
		t.Fatalf("DescribeImages(%s): got %d images, want 1", id, len(out.Images))
	}
	return out.Images[0]
}

func TestRegisterImageHonoursBlockDeviceMappings(t *testing.T) {
	ec2c, kmsc := clients(t)
	ctx := context.Background()
	keyA, keyB := createKey(t, kmsc), createKey(t, kmsc)

	// The volumes name their keys by id and by ARN; snapshots must report
	// the ARN either way.
	type disk struct {
		device string
		size   int32
		keyArn string // "" for unencrypted
	}
	root := createSnapshot(t, ec2c, 8, true, aws.ToString(keyA.KeyId))
	data := createSnapshot(t, ec2c, 20, true, aws.ToString(keyB.Arn))
	plain := createSnapshot(t, ec2c, 4, false, "")
	want := map[string]disk{
		root:  {"/dev/xvda", 8, aws.ToString(keyA.Arn)},
		data:  {"/dev/xvdb", 20, aws.ToString(keyB.Arn)},
		plain: {"/dev/xvdc", 4, ""},
	}

	before := snapshotCount(t, ec2c)
	var mappings []ec2types.BlockDeviceMapping
	for _, id := range []string{root, data, plain} {
		mappings = append(mappings, ec2types.BlockDeviceMapping{
			DeviceName: aws.String(want[id].device),
			Ebs: &ec2types.EbsBlockDevice{
				SnapshotId:          aws.String(id),
				VolumeSize:          aws.Int32(want[id].size),
				VolumeType:          ec2types.VolumeTypeGp3,
				DeleteOnTermination: aws.Bool(true),
			},
		})
	}
	reg, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:                aws.String("three-disks"),
		RootDeviceName:      aws.String("/dev/xvda"),
		BlockDeviceMappings: mappings,
	})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	imageID := aws.ToString(reg.ImageId)

	if got := snapshotCount(t, ec2c); got != before {
		t.Errorf("snapshots after RegisterImage: got %d, want %d (no invented snapshot)", got, before)
	}
	img := describeImage(t, ec2c, imageID)
	if got := aws.ToString(img.RootDeviceName); got != "/dev/xvda" {
		t.Errorf("RootDeviceName: got %q, want /dev/xvda", got)
	}
	if img.RootDeviceType != ec2types.DeviceTypeEbs {
		t.Errorf("RootDeviceType: got %q, want ebs", img.RootDeviceType)
	}
	var gotIDs []string
	for _, m := range img.BlockDeviceMappings {
		if m.Ebs == nil {
			t.Fatalf("mapping %s has no Ebs", aws.ToString(m.DeviceName))
		}
		id := aws.ToString(m.Ebs.SnapshotId)
		gotIDs = append(gotIDs, id)
		w, ok := want[id]
		if !ok {
			t.Errorf("mapping %s: unexpected snapshot %s", aws.ToString(m.DeviceName), id)
			continue
		}
		if got := aws.ToString(m.DeviceName); got != w.device {
			t.Errorf("snapshot %s: DeviceName got %q, want %q", id, got, w.device)
		}
		if got := aws.ToInt32(m.Ebs.VolumeSize); got != w.size {
			t.Errorf("snapshot %s: VolumeSize got %d, want %d", id, got, w.size)
		}
		if m.Ebs.VolumeType != ec2types.VolumeTypeGp3 {
			t.Errorf("snapshot %s: VolumeType got %q, want gp3", id, m.Ebs.VolumeType)
		}
		if !aws.ToBool(m.Ebs.DeleteOnTermination) {
			t.Errorf("snapshot %s: DeleteOnTermination got false, want true", id)
		}
		if got, want := aws.ToBool(m.Ebs.Encrypted), w.keyArn != ""; got != want {
			t.Errorf("snapshot %s: Encrypted got %v, want %v", id, got, want)
		}
		if got := aws.ToString(m.Ebs.KmsKeyId); got != w.keyArn {
			t.Errorf("snapshot %s: KmsKeyId got %q, want %q", id, got, w.keyArn)
		}
	}
	if wantIDs := []string{root, data, plain}; !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("mapped snapshots: got %v, want %v", gotIDs, wantIDs)
	}

	snaps, err := ec2c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{root, data, plain}})
	if err != nil {
		t.Fatalf("DescribeSnapshots: %v", err)
	}
	if len(snaps.Snapshots) != 3 {
		t.Fatalf("DescribeSnapshots: got %d snapshots, want 3", len(snaps.Snapshots))
	}
	for _, s := range snaps.Snapshots {
		id := aws.ToString(s.SnapshotId)
		if got, want := aws.ToBool(s.Encrypted), want[id].keyArn != ""; got != want {
			t.Errorf("DescribeSnapshots %s: Encrypted got %v, want %v", id, got, want)
		}
		if got := aws.ToString(s.KmsKeyId); got != want[id].keyArn {
			t.Errorf("DescribeSnapshots %s: KmsKeyId got %q, want %q", id, got, want[id].keyArn)
		}
		if strings.Contains(aws.ToString(s.Description), imageID) {
			t.Errorf("snapshot %s was made for the image: %q", id, aws.ToString(s.Description))
		}
	}

	// AWS refuses to delete a snapshot an image uses.
	_, err = ec2c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(data)})
	if code := apiErrorCode(err); code != "InvalidSnapshot.InUse" {
		t.Errorf("DeleteSnapshot of a mapped snapshot: got %v, want InvalidSnapshot.InUse", err)
	}
}

func TestRegisterImageCreatesSnapshotForMappingWithoutOne(t *testing.T) {
	ec2c, kmsc := clients(t)
	key := createKey(t, kmsc)
	before := snapshotCount(t, ec2c)
	reg, err := ec2c.RegisterImage(context.Background(), &ec2.RegisterImageInput{
		Name:           aws.String("fresh-disk"),
		RootDeviceName: aws.String("/dev/sda1"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/sda1"),
			Ebs: &ec2types.EbsBlockDevice{
				VolumeSize: aws.Int32(16),
				Encrypted:  aws.Bool(true),
				KmsKeyId:   key.KeyId,
			},
		}},
	})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	if got := snapshotCount(t, ec2c); got != before+1 {
		t.Errorf("snapshots after RegisterImage: got %d, want %d", got, before+1)
	}
	img := describeImage(t, ec2c, aws.ToString(reg.ImageId))
	if len(img.BlockDeviceMappings) != 1 || img.BlockDeviceMappings[0].Ebs == nil {
		t.Fatalf("BlockDeviceMappings: got %+v, want one Ebs mapping", img.BlockDeviceMappings)
	}
	ebs := img.BlockDeviceMappings[0].Ebs
	if !aws.ToBool(ebs.Encrypted) || aws.ToString(ebs.KmsKeyId) != aws.ToString(key.Arn) || aws.ToInt32(ebs.VolumeSize) != 16 {
		t.Errorf("Ebs: got Encrypted=%v KmsKeyId=%q VolumeSize=%d, want true %q 16",
			aws.ToBool(ebs.Encrypted), aws.ToString(ebs.KmsKeyId), aws.ToInt32(ebs.VolumeSize), aws.ToString(key.Arn))
	}
}

func TestRegisterImageUnknownSnapshot(t *testing.T) {
	ec2c, _ := clients(t)
	_, err := ec2c.RegisterImage(context.Background(), &ec2.RegisterImageInput{
		Name: aws.String("missing-disk"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/sda1"),
			Ebs:        &ec2types.EbsBlockDevice{SnapshotId: aws.String("snap-0123456789abcdef0")},
		}},
	})
	if code := apiErrorCode(err); code != "InvalidSnapshot.NotFound" {
		t.Errorf("RegisterImage with unknown snapshot: got %v, want InvalidSnapshot.NotFound", err)
	}
	out, err := ec2c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil {
		t.Fatalf("DescribeImages: %v", err)
	}
	if len(out.Images) != 0 {
		t.Errorf("images after failed RegisterImage: got %d, want 0", len(out.Images))
	}
}

func TestRegisterImageWithoutMappingsKeepsStockSnapshot(t *testing.T) {
	ec2c, _ := clients(t)
	before := snapshotCount(t, ec2c)
	reg, err := ec2c.RegisterImage(context.Background(), &ec2.RegisterImageInput{Name: aws.String("stock")})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	if got := snapshotCount(t, ec2c); got != before+1 {
		t.Errorf("snapshots after RegisterImage: got %d, want %d", got, before+1)
	}
	img := describeImage(t, ec2c, aws.ToString(reg.ImageId))
	if len(img.BlockDeviceMappings) != 1 || img.BlockDeviceMappings[0].Ebs == nil ||
		aws.ToString(img.BlockDeviceMappings[0].Ebs.SnapshotId) == "" {
		t.Errorf("BlockDeviceMappings: got %+v, want one mapping with a snapshot", img.BlockDeviceMappings)
	}
}

func TestVolumeAndSnapshotKeepKMSKey(t *testing.T) {
	ec2c, kmsc := clients(t)
	ctx := context.Background()
	key := createKey(t, kmsc)
	vol, err := ec2c.CreateVolume(ctx, &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String("us-east-1a"),
		Size:             aws.Int32(1),
		Encrypted:        aws.Bool(true),
		KmsKeyId:         key.KeyId,
	})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	vols, err := ec2c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{aws.ToString(vol.VolumeId)}})
	if err != nil {
		t.Fatalf("DescribeVolumes: %v", err)
	}
	if got := aws.ToString(vols.Volumes[0].KmsKeyId); got != aws.ToString(key.Arn) {
		t.Errorf("volume KmsKeyId: got %q, want %q", got, aws.ToString(key.Arn))
	}
	snap, err := ec2c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if !aws.ToBool(snap.Encrypted) || aws.ToString(snap.KmsKeyId) != aws.ToString(key.Arn) {
		t.Errorf("CreateSnapshot: got Encrypted=%v KmsKeyId=%q, want true %q",
			aws.ToBool(snap.Encrypted), aws.ToString(snap.KmsKeyId), aws.ToString(key.Arn))
	}
}

func TestKeyManager(t *testing.T) {
	ec2c, kmsc := clients(t)
	ctx := context.Background()
	vol, err := ec2c.CreateVolume(ctx, &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String("us-east-1a"),
		Size:             aws.Int32(1),
		Encrypted:        aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	ebsKey, err := kmsc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	if err != nil {
		t.Fatalf("DescribeKey(alias/aws/ebs): %v", err)
	}
	if got, want := aws.ToString(vol.KmsKeyId), aws.ToString(ebsKey.KeyMetadata.Arn); got != want {
		t.Errorf("default-encrypted volume KmsKeyId: got %q, want alias/aws/ebs key %q", got, want)
	}

	customer := createKey(t, kmsc)
	for _, tc := range []struct {
		name  string
		keyID string
		want  kmstypes.KeyManagerType
	}{
		{"aws/ebs by ARN", aws.ToString(vol.KmsKeyId), kmstypes.KeyManagerTypeAws},
		{"aws/ebs by alias", "alias/aws/ebs", kmstypes.KeyManagerTypeAws},
		{"CreateKey", aws.ToString(customer.KeyId), kmstypes.KeyManagerTypeCustomer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kmsc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(tc.keyID)})
			if err != nil {
				t.Fatalf("DescribeKey: %v", err)
			}
			if got := out.KeyMetadata.KeyManager; got != tc.want {
				t.Errorf("KeyManager: got %q, want %q", got, tc.want)
			}
		})
	}
	if customer.KeyManager != kmstypes.KeyManagerTypeCustomer {
		t.Errorf("CreateKey KeyManager: got %q, want CUSTOMER", customer.KeyManager)
	}
}

func TestUnknownImageIDs(t *testing.T) {
	ec2c, _ := clients(t)
	ctx := context.Background()
	reg, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("short-lived")})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	deregistered := aws.ToString(reg.ImageId)
	if _, err := ec2c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: reg.ImageId}); err != nil {
		t.Fatalf("DeregisterImage: %v", err)
	}

	calls := map[string]func(id string) error{
		"DescribeImageAttribute": func(id string) error {
			_, err := ec2c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
				ImageId: aws.String(id), Attribute: ec2types.ImageAttributeNameLaunchPermission,
			})
			return err
		},
		"ModifyImageAttribute": func(id string) error {
			_, err := ec2c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
				ImageId: aws.String(id),
				LaunchPermission: &ec2types.LaunchPermissionModifications{
					Add: []ec2types.LaunchPermission{{UserId: aws.String("111122223333")}},
				},
			})
			return err
		},
		"DescribeImages": func(id string) error {
			_, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
			return err
		},
	}
	for _, tc := range []struct {
		name, id, call, want string
	}{
		{"unknown", "ami-0123456789abcdef0", "DescribeImageAttribute", "InvalidAMIID.NotFound"},
		{"unknown", "ami-0123456789abcdef0", "ModifyImageAttribute", "InvalidAMIID.NotFound"},
		{"unknown", "ami-0123456789abcdef0", "DescribeImages", "InvalidAMIID.NotFound"},
		{"deregistered", deregistered, "DescribeImageAttribute", "InvalidAMIID.NotFound"},
		{"deregistered", deregistered, "ModifyImageAttribute", "InvalidAMIID.NotFound"},
		{"malformed", "ami-xyz", "DescribeImageAttribute", "InvalidAMIID.Malformed"},
		{"malformed", "ami-xyz", "ModifyImageAttribute", "InvalidAMIID.Malformed"},
		{"malformed", "image-1", "DescribeImages", "InvalidAMIID.Malformed"},
	} {
		t.Run(tc.call+"/"+tc.name, func(t *testing.T) {
			err := calls[tc.call](tc.id)
			if code := apiErrorCode(err); code != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
				t.Errorf("HTTP status: got %v, want 400", err)
			}
		})
	}

	// One unknown id fails the whole call, even next to a known one.
	kept, err := ec2c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("kept")})
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	_, err = ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{aws.ToString(kept.ImageId), "ami-0123456789abcdef0"}})
	if code := apiErrorCode(err); code != "InvalidAMIID.NotFound" {
		t.Errorf("DescribeImages(known, unknown): got %v, want InvalidAMIID.NotFound", err)
	}

	// AWS leaves recently deregistered images out rather than failing.
	out, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{deregistered}})
	if err != nil {
		t.Fatalf("DescribeImages(deregistered): %v", err)
	}
	if len(out.Images) != 0 {
		t.Errorf("DescribeImages(deregistered): got %d images, want 0", len(out.Images))
	}
}

func TestModifySnapshotAttributeCreateVolumePermission(t *testing.T) {
	ec2c, _ := clients(t)
	ctx := context.Background()
	snap := createSnapshot(t, ec2c, 1, false, "")
	modify := func(in *ec2.ModifySnapshotAttributeInput) {
		t.Helper()
		in.SnapshotId = aws.String(snap)
		in.Attribute = ec2types.SnapshotAttributeNameCreateVolumePermission
		if _, err := ec2c.ModifySnapshotAttribute(ctx, in); err != nil {
			t.Fatalf("ModifySnapshotAttribute: %v", err)
		}
	}
	users := func() []string {
		t.Helper()
		out, err := ec2c.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
			SnapshotId: aws.String(snap), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
		})
		if err != nil {
			t.Fatalf("DescribeSnapshotAttribute: %v", err)
		}
		var ids []string
		for _, p := range out.CreateVolumePermissions {
			ids = append(ids, aws.ToString(p.UserId))
		}
		slices.Sort(ids)
		return ids
	}

	modify(&ec2.ModifySnapshotAttributeInput{CreateVolumePermission: &ec2types.CreateVolumePermissionModifications{
		Add: []ec2types.CreateVolumePermission{{UserId: aws.String("111122223333")}, {UserId: aws.String("444455556666")}},
	}})
	if got, want := users(), []string{"111122223333", "444455556666"}; !slices.Equal(got, want) {
		t.Errorf("after Add: got %v, want %v", got, want)
	}
	modify(&ec2.ModifySnapshotAttributeInput{CreateVolumePermission: &ec2types.CreateVolumePermissionModifications{
		Remove: []ec2types.CreateVolumePermission{{UserId: aws.String("111122223333")}},
	}})
	if got, want := users(), []string{"444455556666"}; !slices.Equal(got, want) {
		t.Errorf("after Remove: got %v, want %v", got, want)
	}
	modify(&ec2.ModifySnapshotAttributeInput{OperationType: ec2types.OperationTypeRemove, UserIds: []string{"444455556666"}})
	if got := users(); len(got) != 0 {
		t.Errorf("after OperationType remove: got %v, want none", got)
	}
}

func TestKeyPolicyNameDefaults(t *testing.T) {
	_, kmsc := clients(t)
	ctx := context.Background()
	key := createKey(t, kmsc)
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"test","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` +
		AccountID + `:root"},"Action":"kms:*","Resource":"*"}]}`
	if _, err := kmsc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: key.KeyId, Policy: aws.String(policy)}); err != nil {
		t.Fatalf("PutKeyPolicy without PolicyName: %v", err)
	}
	out, err := kmsc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: key.Arn})
	if err != nil {
		t.Fatalf("GetKeyPolicy without PolicyName: %v", err)
	}
	if got := aws.ToString(out.Policy); got != policy {
		t.Errorf("GetKeyPolicy: got %s, want %s", got, policy)
	}
}

func TestReset(t *testing.T) {
	_, kmsc := clients(t)
	ctx := context.Background()
	createKey(t, kmsc)
	if err := ForTest(t).Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	out, err := kmsc.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if len(out.Keys) != 0 {
		t.Errorf("keys after Reset: got %d, want 0", len(out.Keys))
	}
}

// TestEnv checks that the variables lead the SDK's default chain to moto.
func TestEnv(t *testing.T) {
	s := ForTest(t)
	for _, kv := range s.Env() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("Env entry %q is not K=V", kv)
		}
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	if cfg.Region != Region {
		t.Errorf("Region: got %q, want %q", cfg.Region, Region)
	}
	c := kms.NewFromConfig(cfg)
	created := createKey(t, c)
	if got := aws.ToString(created.AWSAccountId); got != AccountID {
		t.Errorf("AWSAccountId: got %q, want %q", got, AccountID)
	}
}

func TestStop(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint: got %q, want http://127.0.0.1:PORT", s.Endpoint)
	}
	if err := s.Reset(); err != nil {
		t.Fatalf("Reset on a running server: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := s.cmd.ProcessState; st == nil || !st.Exited() {
		t.Errorf("process state after Stop: got %v, want exited", st)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir after Stop: got %v, want it gone", err)
	}
	if err := s.Reset(); err == nil {
		t.Errorf("Reset after Stop: got nil error, want a connection error")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
}

// TestLauncherRefusesWildcard runs the script as `make demo` does and checks
// it will not listen on every interface.
func TestLauncherRefusesWildcard(t *testing.T) {
	script := filepath.Join(t.TempDir(), "launcher.py")
	if err := os.WriteFile(script, launcher, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", script, "--host", "0.0.0.0", "--port", "0").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("--host 0.0.0.0: got %v (%s), want exit status 2", err, out)
	}
	if !strings.Contains(string(out), "refusing") {
		t.Errorf("--host 0.0.0.0 output: got %q, want a refusal", out)
	}
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
