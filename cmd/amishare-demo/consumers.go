package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/fixture"
	"github.com/amishare/amishare/internal/testing/moto"
	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/app"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/receiver"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
)

// goldenParameter is the parameter of step 12, kept in this account and in
// the receiver.
const goldenParameter = "/amishare/images/demo/golden"

// consumerView makes accountA a receiver, shares two golden images with it
// and reads, with accountA's own credentials (a role of its own, assumed
// through STS), what it sees: its parameter naming the newest image, and
// the image's tags (only the mirrored one, as its own). Then the newest
// is deregistered and the receiver's parameter falls back.
func (d *demo) consumerView() error {
	doc := fmt.Sprintf(`{"allowedAccounts":["%s","%s"],"groups":{"prod":["%s"]},"allowedOrganizationalUnits":["%s"],`+
		`"parameters":{"%s":"demo-golden-*"},"receivers":["%s"],"mirrorTags":["team"]}`,
		accountA, accountB, accountProd, workloadsOU, goldenParameter, accountA)
	if err := d.fx.PutConfig(d.ctx, configParameter, doc); err != nil {
		return err
	}
	fmt.Printf("The configuration now declares the parameter %s for images named demo-golden-*,\n", goldenParameter)
	fmt.Printf("names %s a receiver, and mirrors the tag key team:\n", accountA)
	printJSON("  ", []byte(doc))
	a, err := app.New(d.ctx, d.hopts)
	if err != nil {
		return err
	}
	d.h = a.Handler

	// Account A deploys the receiver stack: here, its role, with the trust
	// policy the stack writes (session names amishare-…).
	cfg, err := d.srv.AWSConfig(d.ctx)
	if err != nil {
		return err
	}
	asA := cfg.Copy()
	asA.APIOptions = append(slices.Clone(asA.APIOptions), moto.AsAccount(accountA))
	if err := createRole(d, asA, config.DefaultReceiverRole, moto.AccountID, receiver.SessionPrefix+"*"); err != nil {
		return err
	}
	fmt.Printf("\nAccount %s deployed the receiver stack (receiver/template.yaml): role %s,\n", accountA, config.DefaultReceiverRole)
	fmt.Printf("which amishare's function role in %s may assume with a session named amishare-IMAGE_ID.\n", moto.AccountID)

	// Two golden images; the second is newer.
	var ids []string
	for i, date := range []string{"2024-01-10T10:00:00.000Z", "2024-02-10T10:00:00.000Z"} {
		name := fmt.Sprintf("demo-golden-%d", i+1)
		id, snaps, err := d.fx.RegisterImage(d.ctx, name, []fixture.Disk{{}}, map[string]string{
			amitag.Accounts: accountA + " " + accountB, amitag.Parameter: goldenParameter, "team": "platform", "cost-center": "4711"})
		if err != nil {
			return err
		}
		if err := d.srv.SetCreationDate(id, date); err != nil {
			return err
		}
		ids = append(ids, id)
		fmt.Printf("\nRegistered %s (%s, created %s), tagged %s = %q, %s = %s, team = platform, cost-center = 4711.\n",
			id, name, date[:10], amitag.Accounts, accountA+" "+accountB, amitag.Parameter, goldenParameter)
		res, _, _, err := d.deliverAndCompare(image{id: id, snaps: snaps}, "ami-available.json")
		if err != nil {
			return err
		}
		if err := expectResult(res, share.OutcomeApplied, rules.StatusShared); err != nil {
			return err
		}
	}
	newest := ids[1]

	// What account A sees, with its own credentials.
	consumer, err := d.consumerCredentials(asA)
	if err != nil {
		return err
	}
	fmt.Printf("\nAccount %s, with its own credentials (role demo-consumer, assumed through STS):\n", accountA)
	value, err := readParameter(d, consumer, goldenParameter)
	if err != nil {
		return err
	}
	fmt.Printf("  aws ssm get-parameter --name %s  ->  %s\n", goldenParameter, value)
	tags, err := imageTags(d, consumer, newest)
	if err != nil {
		return err
	}
	fmt.Printf("  aws ec2 describe-images --image-ids %s  ->  tags %v\n", newest, tags)
	if value != newest {
		return fmt.Errorf("receiver's parameter names %q, want the newest image %s", value, newest)
	}
	if !maps.Equal(tags, map[string]string{"team": "platform"}) {
		return fmt.Errorf("receiver sees tags %v, want only team=platform (its own copy; the owner's are private)", tags)
	}
	check("%s's own parameter names the newest golden image; it sees the image's team tag as its own, and nothing else", accountA)

	// The newest is deregistered: the receiver falls back.
	if err := d.fx.DeregisterImage(d.ctx, newest); err != nil {
		return err
	}
	fmt.Printf("\n%s is deregistered.\n", newest)
	raw, err := d.sampleEvent("ami-deregistered.json", newest)
	if err != nil {
		return err
	}
	if _, err := d.h.Handle(d.ctx, raw); err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	if value, err = readParameter(d, consumer, goldenParameter); err != nil {
		return err
	}
	fmt.Printf("  %s's %s  ->  %s\n", accountA, goldenParameter, value)
	if value != ids[0] {
		return fmt.Errorf("after the deregistration: %q, want the older image %s", value, ids[0])
	}
	check("the receiver's parameter fell back to %s (logged and counted as a rollback)", ids[0])
	return nil
}

// consumerCredentials creates in account A (cfg acts as its
// administrator) a role its own principals may assume, and returns a
// configuration with that role's credentials, assumed through STS.
func (d *demo) consumerCredentials(asA aws.Config) (aws.Config, error) {
	if err := createRole(d, asA, "demo-consumer", accountA, ""); err != nil {
		return aws.Config{}, err
	}
	cfg, err := d.srv.AWSConfig(d.ctx)
	if err != nil {
		return aws.Config{}, err
	}
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(asA), "arn:aws:iam::"+accountA+":role/demo-consumer",
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "demo-consumer" }))
	cfg.APIOptions = []func(*middleware.Stack) error{}
	return cfg, nil
}

// createRole creates a role in the account cfg acts as, assumable by
// trusted's principals (with a session name like session, when not "").
func createRole(d *demo, cfg aws.Config, name, trusted, session string) error {
	st := map[string]any{"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + trusted + ":root"}, "Action": "sts:AssumeRole"}
	if session != "" {
		st["Condition"] = map[string]any{"StringLike": map[string]any{"sts:RoleSessionName": session}}
	}
	trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
	_, err := iam.NewFromConfig(cfg).CreateRole(d.ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(string(trust))})
	if err != nil {
		return fmt.Errorf("creating role %s: %w", name, err)
	}
	return nil
}

func readParameter(d *demo, cfg aws.Config, name string) (string, error) {
	out, err := ssm.NewFromConfig(cfg).GetParameter(d.ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if awserr.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

func imageTags(d *demo, cfg aws.Config, id string) (map[string]string, error) {
	out, err := ec2.NewFromConfig(cfg).DescribeImages(d.ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", id, err)
	}
	if len(out.Images) != 1 {
		return nil, fmt.Errorf("describing %s: %d images", id, len(out.Images))
	}
	return tagsOf(out.Images[0]), nil
}
