package stack

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/sweep"
)

// Call is one AWS call amishare's code made in a test, as
// internal/testing/fixture.CallLog records it under AMISHARE_CALLS_DIR.
type Call struct {
	Service   string         `json:"service"`
	Operation string         `json:"operation"`
	Region    string         `json:"region"` // where the call was sent; "" means Region
	Input     map[string]any `json:"input"`
	// Receiver is the receiver whose role made the call, "" for the
	// function's own role.
	Receiver string `json:"receiver,omitempty"`
}

// account is the account whose resources the call names when they carry
// one (parameters, roles): the receiver's for its role's calls.
func (c Call) account() string {
	if c.Receiver != "" {
		return c.Receiver
	}
	return AccountID
}

// region is where the call was sent.
func (c Call) region() string {
	if c.Region == "" {
		return Region
	}
	return c.Region
}

// ReadCalls reads every recorded call under dir, deduplicated by what IAM
// would see (action, resource and context).
func ReadCalls(dir string) ([]Call, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Call
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var c Call
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			key := c.Receiver + fmt.Sprint(c.Requests())
			if !seen[key] {
				seen[key] = true
				out = append(out, c)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}

// Action is the IAM action of the call, e.g. "ec2:CreateTags".
func (c Call) Action() string {
	return strings.ToLower(strings.ReplaceAll(c.Service, " ", "")) + ":" + c.Operation
}

// Requests turns the call into what IAM evaluates: one request per resource
// the call names (CreateTags can name several), with the condition keys the
// request sets. The resource's own tags are those amishare requires of what
// it touches (a managed image, a delegated key): whether a resource has them
// is the engine's business, tested elsewhere; here the question is whether
// the role allows the call at all. Calls of services or operations not
// mapped below are evaluated on resource "*" without context: map them when
// the role restricts them.
func (c Call) Requests() []iameval.Request {
	action := c.Action()
	in := c.Input
	region := c.region()
	// IAM sets aws:RequestedRegion on every request.
	ctx := map[string][]string{"aws:RequestedRegion": {region}}
	var resources []string
	var extra []iameval.Request // requests of other actions the call implies
	switch strings.ToLower(c.Service) {
	case "ec2":
		switch c.Operation {
		case "CopyImage":
			// Authorized on the source image (in its region) and the new
			// image, and their snapshots; TagSpecifications are authorized as
			// CreateTags on the new image with ec2:CreateAction = CopyImage.
			src := fmt.Sprint(in["SourceRegion"])
			resources = []string{
				fmt.Sprintf("arn:%s:ec2:%s::image/%s", Partition, src, in["SourceImageId"]),
				fmt.Sprintf("arn:%s:ec2:%s::snapshot/*", Partition, src),
				fmt.Sprintf("arn:%s:ec2:%s::image/*", Partition, region),
				fmt.Sprintf("arn:%s:ec2:%s::snapshot/*", Partition, region),
			}
			for _, spec := range iameval.List(in["TagSpecifications"]) {
				sm, _ := spec.(map[string]any)
				tctx := map[string][]string{"aws:RequestedRegion": {region}, "ec2:CreateAction": {"CopyImage"}}
				tctx["aws:TagKeys"] = addRequestTags(tctx, iameval.List(sm["Tags"]))
				extra = append(extra, iameval.Request{Action: "ec2:CreateTags", Resource: fmt.Sprintf("arn:%s:ec2:%s::%v/*", Partition, region, sm["ResourceType"]), Context: tctx})
			}
		case "CreateTags", "DeleteTags":
			resources = ec2ARNs(strList(in["Resources"]), region)
			keys := addRequestTags(ctx, iameval.List(in["Tags"]))
			if len(keys) > 0 {
				ctx["aws:TagKeys"] = keys
			}
			if slices.Equal(keys, []string{"amishare:accounts"}) {
				// amishare writes only the accounts tag of its copies.
				ctx["aws:ResourceTag/amishare:source"] = []string{"us-east-1/ami-0123456789abcdef0"}
			}
		case "ModifySnapshotAttribute":
			op := fmt.Sprint(in["OperationType"])
			add := func(dir, kind string, vals []string) {
				if len(vals) > 0 {
					ctx["ec2:"+dir+"/"+kind] = append(ctx["ec2:"+dir+"/"+kind], vals...)
				}
			}
			dir := map[string]string{"add": "Add", "remove": "Remove"}[op]
			if dir != "" {
				add(dir, "userId", strList(in["UserIds"]))
				add(dir, "group", strList(in["GroupNames"]))
			}
			perm, _ := in["CreateVolumePermission"].(map[string]any)
			for _, d := range []string{"Add", "Remove"} {
				for _, e := range iameval.List(perm[d]) {
					em, _ := e.(map[string]any)
					if u, ok := em["UserId"].(string); ok {
						add(d, "userId", []string{u})
					}
					if g, ok := em["Group"].(string); ok && g != "" {
						add(d, "group", []string{g})
					}
				}
			}
		}
		if resources == nil {
			if id, ok := in["ImageId"].(string); ok {
				resources = ec2ARNs([]string{id}, region)
			} else if id, ok := in["SnapshotId"].(string); ok {
				resources = ec2ARNs([]string{id}, region)
			}
		}
	case "kms":
		if id, ok := in["KeyId"].(string); ok {
			resources = []string{kmsKeyARN(id, region)}
		}
		if ops := strList(in["Operations"]); len(ops) > 0 {
			ctx["kms:GrantOperations"] = ops
		}
		if g, ok := in["GranteePrincipal"].(string); ok {
			ctx["kms:GranteePrincipal"] = []string{g}
		}
		if b, ok := in["BypassPolicyLockoutSafetyCheck"].(bool); ok && b {
			ctx["kms:BypassPolicyLockoutSafetyCheck"] = []string{"true"}
		}
	case "ssm":
		names := strList(in["Names"])
		if name, ok := in["Name"].(string); ok {
			names = append(names, name)
		}
		for _, name := range names {
			resources = append(resources, fmt.Sprintf("arn:%s:ssm:%s:%s:parameter/%s", Partition, region, c.account(), strings.TrimPrefix(name, "/")))
		}
		if c.Operation == "PutParameter" {
			// Set when the request has parameter policies (the Parameter
			// Store guide's condition key).
			_, policies := in["Policies"].(string)
			ctx["ssm:Policies"] = []string{fmt.Sprint(policies)}
		}
	case "sts":
		if arn, ok := in["RoleArn"].(string); ok {
			resources = []string{arn}
		}
		if name, ok := in["RoleSessionName"].(string); ok {
			ctx["sts:RoleSessionName"] = []string{name}
		}
	case "iam":
		if name, ok := in["RoleName"].(string); ok {
			path := "/"
			if name == AutoScalingRoleName {
				path = "/aws-service-role/autoscaling.amazonaws.com/"
			}
			resources = []string{fmt.Sprintf("arn:%s:iam::%s:role%s%s", Partition, c.account(), path, name)}
		}
	case "sqs":
		if u, ok := in["QueueUrl"].(string); ok {
			resources = []string{fmt.Sprintf("arn:%s:sqs:%s:%s:%s", Partition, Region, AccountID, u[strings.LastIndex(u, "/")+1:])}
		}
	case "dynamodb":
		if name, ok := in["TableName"].(string); ok {
			resources = []string{fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", Partition, region, AccountID, name)}
		}
		// dynamodb:LeadingKeys: the partition key of the item (Key, or
		// PutItem's Item), as the SDK records an attribute value ({"Value": ...}).
		item, _ := in["Key"].(map[string]any)
		if item == nil {
			item, _ = in["Item"].(map[string]any)
		}
		if v, ok := item[sweep.LeaseKeyAttribute].(map[string]any); ok {
			ctx["dynamodb:LeadingKeys"] = []string{fmt.Sprint(v["Value"])}
		}
	}
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	out := make([]iameval.Request, len(resources))
	for i, r := range resources {
		rc := map[string][]string{}
		for k, v := range ctx {
			rc[k] = v
		}
		switch {
		case strings.Contains(r, ":image/"):
			rc["aws:ResourceTag/amishare:accounts"] = []string{"111122223333"}
			rc["aws:ResourceTag/amishare:status"] = []string{"shared"}
			rc["ec2:Owner"] = []string{AccountID}
		case strings.Contains(r, ":kms:") && strings.Contains(r, ":key/"):
			rc["aws:ResourceTag/amishare:managed"] = []string{"true"}
		}
		out[i] = iameval.Request{Action: action, Resource: r, Context: rc}
	}
	return append(out, extra...)
}

// Regions lists the regions other than Region that calls were sent to, sorted.
func Regions(calls []Call) []string {
	var out []string
	for _, c := range calls {
		if r := c.region(); r != Region && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// Accounts lists the accounts calls shared snapshots with (ec2:Add/userId),
// sorted: with the stack, AllowedAccounts lists them all.
func Accounts(calls []Call) []string {
	var out []string
	for _, c := range calls {
		for _, q := range c.Requests() {
			for _, a := range q.Context["ec2:Add/userId"] {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// AutoScalingRoleName is the Auto Scaling service-linked role, whose path
// is /aws-service-role/autoscaling.amazonaws.com/.
const AutoScalingRoleName = "AWSServiceRoleForAutoScaling"

// Receivers lists the accounts whose roles calls assumed, sorted: with the
// stack, Receivers lists them all.
func Receivers(calls []Call) []string {
	var out []string
	for _, c := range calls {
		if arn, ok := c.Input["RoleArn"].(string); ok && strings.EqualFold(c.Service, "sts") {
			if a := strings.Split(arn, ":"); len(a) > 4 && !slices.Contains(out, a[4]) {
				out = append(out, a[4])
			}
		}
	}
	sort.Strings(out)
	return out
}

// MirroredKeys lists the tag keys receivers' calls wrote or deleted on
// images, sorted: with the receiver stack, MirrorTags lists them all.
func MirroredKeys(calls []Call) []string {
	var out []string
	for _, c := range calls {
		if c.Receiver == "" || (c.Operation != "CreateTags" && c.Operation != "DeleteTags") {
			continue
		}
		for _, t := range iameval.List(c.Input["Tags"]) {
			tm, _ := t.(map[string]any)
			if k := fmt.Sprint(tm["Key"]); !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ConfigParameter is the configuration parameter a GetParameter call read,
// "" otherwise: the function's read of a parameter outside the parameters
// it keeps (the tests keep them under the default prefix).
func (c Call) ConfigParameter() string {
	if strings.EqualFold(c.Service, "ssm") && c.Operation == "GetParameter" && c.Receiver == "" &&
		!strings.HasPrefix(fmt.Sprint(c.Input["Name"]), config.DefaultParameterPrefix) {
		if name, ok := c.Input["Name"].(string); ok {
			return name
		}
	}
	return ""
}

func strList(v any) []string {
	var out []string
	for _, e := range iameval.List(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func ec2ARNs(ids []string, region string) []string {
	var out []string
	for _, id := range ids {
		switch {
		case strings.HasPrefix(id, "ami-"):
			out = append(out, fmt.Sprintf("arn:%s:ec2:%s::image/%s", Partition, region, id))
		case strings.HasPrefix(id, "snap-"):
			out = append(out, fmt.Sprintf("arn:%s:ec2:%s::snapshot/%s", Partition, region, id))
		default:
			out = append(out, "*")
		}
	}
	return out
}

func kmsKeyARN(id, region string) string {
	switch {
	case strings.HasPrefix(id, "arn:"):
		return id
	case strings.HasPrefix(id, "alias/"):
		return fmt.Sprintf("arn:%s:kms:%s:%s:%s", Partition, region, AccountID, id)
	}
	return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", Partition, region, AccountID, id)
}

// Summary lists the actions of calls, sorted, for messages.
func Summary(calls []Call) []string {
	seen := map[string]bool{}
	for _, c := range calls {
		seen[c.Action()] = true
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// addRequestTags puts each tag's aws:RequestTag/KEY into ctx and returns
// the tag keys, in order (aws:TagKeys).
func addRequestTags(ctx map[string][]string, tags []any) []string {
	var keys []string
	for _, t := range tags {
		tm, _ := t.(map[string]any)
		k := fmt.Sprint(tm["Key"])
		keys = append(keys, k)
		if v, ok := tm["Value"].(string); ok {
			ctx["aws:RequestTag/"+k] = []string{v}
		}
	}
	return keys
}
