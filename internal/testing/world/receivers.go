package world

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/receiver"
)

// The other side of the share: the accounts an image is shared with, seen
// by their own administrators (moto's account header), and the receiver
// role amishare assumes there.

// Account is another account of the world, reached as its administrator,
// in the world's region.
type Account struct {
	ID  string
	EC2 *ec2.Client
	SSM *ssm.Client
	IAM *iam.Client
}

// As returns the world's view from account (an administrator of it).
func (w *World) As(account string) *Account {
	cfg := w.AWS.Copy()
	cfg.Region = w.Fixture.EC2.Options().Region
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), moto.AsAccount(account))
	return &Account{ID: account, EC2: ec2.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg)}
}

// Receiver makes account a receiver: it creates there the role the
// receiver stack creates (config.DefaultReceiverRole), which this world's
// account may assume with a session named amishare-…, as the stack's trust
// policy says (its other conditions, on the function's role, are checked
// against the template by internal/testing/stack).
func (w *World) Receiver(t testing.TB, account string) *Account {
	t.Helper()
	a := w.As(account)
	trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + moto.AccountID + ":root"}, "Action": "sts:AssumeRole",
		"Condition": map[string]any{"StringLike": map[string]any{"sts:RoleSessionName": receiver.SessionPrefix + "*"}},
	}}})
	if _, err := a.IAM.CreateRole(w.Ctx, &iam.CreateRoleInput{RoleName: aws.String(config.DefaultReceiverRole), AssumeRolePolicyDocument: aws.String(string(trust))}); err != nil {
		t.Fatalf("creating the receiver role in %s: %v", account, err)
	}
	return a
}

// AutoScalingRole creates the account's Auto Scaling service-linked role,
// as the account's first Auto Scaling group would.
func (a *Account) AutoScalingRole(t testing.TB, w *World) {
	t.Helper()
	if _, err := a.IAM.CreateServiceLinkedRole(w.Ctx, &iam.CreateServiceLinkedRoleInput{AWSServiceName: aws.String("autoscaling.amazonaws.com")}); err != nil {
		t.Fatalf("creating the Auto Scaling service-linked role in %s: %v", a.ID, err)
	}
}

// Parameter returns the value of a parameter of the account ("" when it
// does not exist).
func (a *Account) Parameter(t testing.TB, w *World, name string) string {
	t.Helper()
	out, err := a.SSM.GetParameter(w.Ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if awserr.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatalf("reading %s in %s: %v", name, a.ID, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// ImageTags returns the image's tags as the account sees them (its own),
// nil when the image is not visible there.
func (a *Account) ImageTags(t testing.TB, w *World, id string) map[string]string {
	t.Helper()
	out, err := a.EC2.DescribeImages(w.Ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if awserr.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("describing %s in %s: %v", id, a.ID, err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == id {
			m := map[string]string{}
			for _, tag := range img.Tags {
				m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			return m
		}
	}
	return nil
}

// Owner is the world's own account seen like the others.
func (w *World) Owner() *Account { return w.As(moto.AccountID) }

// ParameterInfo is how the owner's (or an account's) parameter is stored.
type ParameterInfo struct {
	Value, Type, DataType, Tier string
	Policies                    int
}

// ParameterInfo describes a parameter of the account.
func (a *Account) ParameterInfo(t testing.TB, w *World, name string) ParameterInfo {
	t.Helper()
	out, err := a.SSM.DescribeParameters(w.Ctx, &ssm.DescribeParametersInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range out.Parameters {
		if aws.ToString(p.Name) == name {
			return ParameterInfo{Value: a.Parameter(t, w, name), Type: string(p.Type), DataType: aws.ToString(p.DataType), Tier: string(p.Tier), Policies: len(p.Policies)}
		}
	}
	t.Fatalf("no parameter %s in %s", name, a.ID)
	return ParameterInfo{}
}

// SetCreated sets an image's CreationDate (2024-05-14T09:20:01.000Z):
// tests that order images by age.
func (w *World) SetCreated(t testing.TB, id, date string) {
	t.Helper()
	if err := w.Server.SetCreationDate(id, date); err != nil {
		t.Fatal(err)
	}
}

// TagsOnly returns the tags of m whose keys are in keys.
func TagsOnly(m map[string]string, keys ...string) map[string]string {
	out := maps.Clone(m)
	maps.DeleteFunc(out, func(k, _ string) bool { return !slices.Contains(keys, k) })
	return out
}
