package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/kmsgrant"
)

var translated struct {
	once sync.Once
	t    Template
	err  error
}

// translate runs aws-sam-translator once per test binary.
func translate(t *testing.T) Template {
	t.Helper()
	translated.once.Do(func() { translated.t, translated.err = Translate(TemplatePath()) })
	if translated.err != nil {
		t.Fatal(translated.err)
	}
	return translated.t
}

func resolve(t *testing.T, params map[string]string) map[string]any {
	t.Helper()
	res, err := translate(t).Resolve(params)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func role(t *testing.T, params map[string]string) Role {
	t.Helper()
	r, err := FunctionRole(resolve(t, params), "AmishareFunction")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	imageARN    = "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0"
	snapshotARN = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
	keyARN      = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	foreignKey  = "arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	configARN   = "arn:aws:ssm:us-east-1:123456789012:parameter/amishare/config"
	accountRoot = "arn:aws:iam::111122223333:root"
)

// Resource tags as IAM sees them on the resource of a request.
var (
	taggedAccounts = map[string][]string{"aws:ResourceTag/amishare:accounts": {"111122223333"}}
	taggedStatus   = map[string][]string{"aws:ResourceTag/amishare:status": {"unshared"}}
	delegated      = map[string][]string{"aws:ResourceTag/amishare:managed": {"true"}}
	grantOps       = []string{"Decrypt", "DescribeKey", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "CreateGrant"}
)

func with(ctxs ...map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, c := range ctxs {
		for k, v := range c {
			out[k] = v
		}
	}
	return out
}

func grantCtx(ops []string, grantee string, extra ...map[string][]string) map[string][]string {
	return with(append([]map[string][]string{{"kms:GrantOperations": ops, "kms:GranteePrincipal": {grantee}}}, extra...)...)
}

// TestRolePerKmsMode evaluates the translated role for every KmsMode and
// DelegatedKeysOnly setting against the requests amishare makes, and some it
// must never be able to make.
func TestRolePerKmsMode(t *testing.T) {
	type want struct{ policy, grant, off bool }
	all, none := want{true, true, true}, want{}
	tests := []struct {
		name string
		req  iameval.Request
		// want holds with DelegatedKeysOnly=true, and also with false
		// unless undelegated says otherwise.
		want        want
		undelegated *want
	}{
		{"describe images", iameval.Request{Action: "ec2:DescribeImages", Resource: "*", Context: nil}, all, nil},
		{"describe snapshot attribute", iameval.Request{Action: "ec2:DescribeSnapshotAttribute", Resource: "*", Context: nil}, all, nil},
		{"image block public access state", iameval.Request{Action: "ec2:GetImageBlockPublicAccessState", Resource: "*", Context: nil}, all, nil},
		{"snapshot block public access state", iameval.Request{Action: "ec2:GetSnapshotBlockPublicAccessState", Resource: "*", Context: nil}, all, nil},
		{"share image tagged amishare:accounts", iameval.Request{Action: "ec2:ModifyImageAttribute", Resource: imageARN, Context: taggedAccounts}, all, nil},
		{"revoke image tagged only amishare:status", iameval.Request{Action: "ec2:ModifyImageAttribute", Resource: imageARN, Context: taggedStatus}, all, nil},
		{"modify an unmanaged image", iameval.Request{Action: "ec2:ModifyImageAttribute", Resource: imageARN, Context: nil}, none, nil},
		{"share snapshot with an account", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Add/userId": {"111122223333"}}}, all, nil},
		{"share snapshot with an account AllowedAccounts lacks", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Add/userId": {"999999999999"}}}, none, &none},
		{"share snapshot with an allowed and another account", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Add/userId": {"111122223333", "999999999999"}}}, none, &none},
		{"remove an account from a snapshot", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Remove/userId": {"999999999999"}}}, all, nil},
		{"reset an image of this account", iameval.Request{Action: "ec2:ResetImageAttribute", Resource: imageARN, Context: map[string][]string{"ec2:Owner": {"123456789012"}}}, all, &all},
		{"reset an image of another owner", iameval.Request{Action: "ec2:ResetImageAttribute", Resource: imageARN, Context: map[string][]string{"ec2:Owner": {"999999999999"}}}, none, &none},
		{"make a snapshot public", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Add/group": {"all"}}}, none, nil},
		{"make a snapshot public while sharing", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Add/group": {"all"}, "ec2:Add/userId": {"111122223333"}}}, none, nil},
		{"remove public from a snapshot", iameval.Request{Action: "ec2:ModifySnapshotAttribute", Resource: snapshotARN, Context: map[string][]string{"ec2:Remove/group": {"all"}}}, all, nil},
		{"status tags on a managed image", iameval.Request{Action: "ec2:CreateTags", Resource: imageARN, Context: with(taggedAccounts, map[string][]string{"aws:TagKeys": {"amishare:status", "amishare:message"}})}, all, nil},
		{"status tags on an image tagged only amishare:status", iameval.Request{Action: "ec2:CreateTags", Resource: imageARN, Context: with(taggedStatus, map[string][]string{"aws:TagKeys": {"amishare:status", "amishare:message"}})}, all, nil},
		{"status tags on an unmanaged image", iameval.Request{Action: "ec2:CreateTags", Resource: imageARN, Context: map[string][]string{"aws:TagKeys": {"amishare:status"}}}, none, nil},
		{"write amishare:accounts", iameval.Request{Action: "ec2:CreateTags", Resource: imageARN, Context: with(taggedAccounts, map[string][]string{"aws:TagKeys": {"amishare:accounts"}})}, none, nil},
		{"tags without keys", iameval.Request{Action: "ec2:CreateTags", Resource: imageARN, Context: taggedAccounts}, none, nil},
		{"status tags on a snapshot", iameval.Request{Action: "ec2:CreateTags", Resource: snapshotARN, Context: map[string][]string{"aws:TagKeys": {"amishare:status"}}}, none, nil},
		{"delete tags", iameval.Request{Action: "ec2:DeleteTags", Resource: imageARN, Context: taggedAccounts}, none, nil},
		{"read the configuration", iameval.Request{Action: "ssm:GetParameter", Resource: configARN, Context: nil}, all, nil},
		{"read another parameter", iameval.Request{Action: "ssm:GetParameter", Resource: "arn:aws:ssm:us-east-1:123456789012:parameter/other", Context: nil}, none, nil},
		{"describe a key", iameval.Request{Action: "kms:DescribeKey", Resource: keyARN, Context: nil}, all, nil},
		{"describe a key of another account", iameval.Request{Action: "kms:DescribeKey", Resource: foreignKey, Context: nil}, none, nil},
		{"read a key policy (every mode: statements left by policy mode are reported)", iameval.Request{Action: "kms:GetKeyPolicy", Resource: keyARN, Context: nil}, all, nil},
		{"write a delegated key's policy", iameval.Request{Action: "kms:PutKeyPolicy", Resource: keyARN, Context: delegated}, want{policy: true}, nil},
		{"write a delegated key's policy, check said false", iameval.Request{Action: "kms:PutKeyPolicy", Resource: keyARN, Context: with(delegated, map[string][]string{"kms:BypassPolicyLockoutSafetyCheck": {"false"}})}, want{policy: true}, nil},
		{"write an undelegated key's policy", iameval.Request{Action: "kms:PutKeyPolicy", Resource: keyARN, Context: nil}, none, &want{policy: true}},
		{"bypass the lockout safety check", iameval.Request{Action: "kms:PutKeyPolicy", Resource: keyARN, Context: with(delegated, map[string][]string{"kms:BypassPolicyLockoutSafetyCheck": {"true"}})}, none, &none},
		{"write a policy on another account's key", iameval.Request{Action: "kms:PutKeyPolicy", Resource: foreignKey, Context: delegated}, none, &none},
		{"grant amishare's operations to an account", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: grantCtx(grantOps, accountRoot, delegated)}, want{grant: true}, nil},
		{"grant fewer operations", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: grantCtx([]string{"Decrypt"}, accountRoot, delegated)}, want{grant: true}, nil},
		{"grant on an undelegated key", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: grantCtx(grantOps, accountRoot)}, none, &want{grant: true}},
		{"grant Encrypt", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: grantCtx(append([]string{"Encrypt"}, grantOps...), accountRoot, delegated)}, none, &none},
		{"grant to a role", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: grantCtx(grantOps, "arn:aws:iam::111122223333:role/admin", delegated)}, none, &none},
		{"grant without operations", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: with(delegated, map[string][]string{"kms:GranteePrincipal": {accountRoot}})}, none, &none},
		{"grant EBS makes for a copy", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: map[string][]string{"kms:GrantIsForAWSResource": {"true"}, "kms:ViaService": {"ec2.us-east-1.amazonaws.com"}}}, all, &all},
		{"grant for an AWS resource, not through EC2", iameval.Request{Action: "kms:CreateGrant", Resource: keyARN, Context: map[string][]string{"kms:GrantIsForAWSResource": {"true"}}}, none, &none},
		{"list grants (every mode: grants left by grant mode are revoked)", iameval.Request{Action: "kms:ListGrants", Resource: keyARN, Context: nil}, all, nil},
		{"read a key's tags (every mode: delegatedKeysOnly is checked before a write)", iameval.Request{Action: "kms:ListResourceTags", Resource: keyARN, Context: nil}, all, nil},
		{"read the tags of another account's key", iameval.Request{Action: "kms:ListResourceTags", Resource: foreignKey, Context: nil}, none, nil},
		{"tag a key", iameval.Request{Action: "kms:TagResource", Resource: keyARN, Context: nil}, none, &none},
		{"revoke a grant on a delegated key", iameval.Request{Action: "kms:RevokeGrant", Resource: keyARN, Context: delegated}, all, nil},
		{"revoke a grant on an undelegated key", iameval.Request{Action: "kms:RevokeGrant", Resource: keyARN, Context: nil}, none, &all},
		{"retire a grant", iameval.Request{Action: "kms:RetireGrant", Resource: keyARN, Context: delegated}, none, &none},
		{"decrypt with a key", iameval.Request{Action: "kms:Decrypt", Resource: keyARN, Context: delegated}, none, &none},
		{"schedule key deletion", iameval.Request{Action: "kms:ScheduleKeyDeletion", Resource: keyARN, Context: delegated}, none, &none},
		{"write logs", iameval.Request{Action: "logs:PutLogEvents", Resource: "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/amishare-AmishareFunction:log-stream:x", Context: nil}, all, nil},
		{"send to the function's dead-letter queue", iameval.Request{Action: "sqs:SendMessage", Resource: "arn:aws:sqs:us-east-1:123456789012:amishare-DeadLetterQueue", Context: nil}, all, nil},
		{"pass a role", iameval.Request{Action: "iam:PassRole", Resource: "*", Context: nil}, none, &none},
		{"delete a snapshot", iameval.Request{Action: "ec2:DeleteSnapshot", Resource: snapshotARN, Context: nil}, none, &none},
	}
	for _, delegatedOnly := range []string{"true", "false"} {
		for _, mode := range []string{"policy", "grant", "off"} {
			r := role(t, map[string]string{"KmsMode": mode, "DelegatedKeysOnly": delegatedOnly, "AllowedAccounts": "111122223333,444455556666"})
			stmts := r.Statements()
			for _, tt := range tests {
				w := tt.want
				if delegatedOnly == "false" && tt.undelegated != nil {
					w = *tt.undelegated
				}
				expect := map[string]bool{"policy": w.policy, "grant": w.grant, "off": w.off}[mode]
				t.Run("DelegatedKeysOnly="+delegatedOnly+"/KmsMode="+mode+"/"+tt.name, func(t *testing.T) {
					d := iameval.Evaluate(stmts, tt.req)
					if d.Allowed != expect {
						t.Errorf("%s: allowed = %v, want %v (decided by %v)", tt.req, d.Allowed, expect, sids(d.By))
					}
				})
			}
		}
	}
}

func sids(stmts []iameval.Statement) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, s.Policy+"/"+s.Sid)
	}
	return out
}

// TestRoleShape checks what docs/iam.md promises of the role: every inline
// policy declares Version 2012-10-17, snapshots can never be made public, the
// lockout safety check is never bypassed, grants are limited to exactly the
// operations amishare grants, and the only managed policy is the basic
// execution role SAM attaches.
func TestRoleShape(t *testing.T) {
	for _, mode := range []string{"policy", "grant", "off"} {
		t.Run(mode, func(t *testing.T) {
			r := role(t, map[string]string{"KmsMode": mode})
			if len(r.Inline) == 0 {
				t.Fatal("role has no inline policy")
			}
			for _, p := range r.Inline {
				if p.Version != "2012-10-17" {
					t.Errorf("inline policy %s: Version = %q, want 2012-10-17", p.Name, p.Version)
				}
			}
			if !slices.Equal(r.ManagedPolicies, []string{BasicExecutionRole}) {
				t.Errorf("managed policies = %v, want only %s", r.ManagedPolicies, BasicExecutionRole)
			}
			stmts := r.Statements()
			wantDeny(t, stmts, "ec2:ModifySnapshotAttribute", "StringEquals", "ec2:Add/group", "all")
			wantDeny(t, stmts, "kms:PutKeyPolicy", "Bool", "kms:BypassPolicyLockoutSafetyCheck", "true")
			for _, s := range stmts {
				if s.Effect == "Allow" && slices.Contains(s.Resource, "*") {
					for _, a := range s.Action {
						if !strings.HasPrefix(a, "ec2:Describe") && !strings.HasPrefix(a, "ec2:Get") && !strings.HasPrefix(a, "logs:") {
							t.Errorf("statement %s allows %s on every resource", s.Sid, a)
						}
					}
				}
				if s.Effect == "Allow" && slices.Contains(s.Action, "kms:CreateGrant") && s.Condition["Bool"]["kms:GrantIsForAWSResource"] == nil {
					if got := s.Condition["ForAllValues:StringEquals"]["kms:GrantOperations"]; !slices.Equal(got, grantOps) {
						t.Errorf("CreateGrant statement %s: kms:GrantOperations = %v, want exactly %v", s.Sid, got, grantOps)
					}
				}
			}
		})
	}
}

func wantDeny(t *testing.T, stmts []iameval.Statement, action, op, key, value string) {
	t.Helper()
	for _, s := range stmts {
		if s.Effect == "Deny" && slices.Contains(s.Action, action) && slices.Contains(s.Resource, "*") &&
			slices.Equal(s.Condition[op][key], []string{value}) {
			return
		}
	}
	t.Errorf("no Deny of %s on * when %s %s = %s", action, op, key, value)
}

// TestGrantOperationsMatchCode keeps the role's kms:GrantOperations and the
// operations pkg/kmsgrant grants in step.
func TestGrantOperationsMatchCode(t *testing.T) {
	var code []string
	for _, op := range kmsgrant.Operations {
		code = append(code, string(op))
	}
	if !slices.Equal(code, grantOps) {
		t.Errorf("pkg/kmsgrant grants %v; the role and this test allow %v", code, grantOps)
	}
}

// TestEventDelivery checks that no event can be lost silently: every rule
// target has a dead-letter queue and a retry policy, only this stack's rules
// may write to that queue, and every queue and Lambda's drop metrics are alarmed.
func TestEventDelivery(t *testing.T) {
	for _, c := range []struct{ cloudTrail, schedule string }{{"false", ""}, {"true", ""}, {"false", "rate(6 hours)"}, {"true", "rate(1 day)"}} {
		cloudTrail := c.cloudTrail
		t.Run("EnableCloudTrailEvents="+cloudTrail+",SweepSchedule="+c.schedule, func(t *testing.T) {
			res := resolve(t, map[string]string{"EnableCloudTrailEvents": cloudTrail, "SweepSchedule": c.schedule})
			var rules []string
			for name, v := range res {
				r := v.(map[string]any)
				if r["Type"] != "AWS::Events::Rule" {
					continue
				}
				rules = append(rules, name)
				for _, target := range iameval.List(prop(r, "Targets")) {
					tm := target.(map[string]any)
					dlq, _ := tm["DeadLetterConfig"].(map[string]any)
					if dlq["Arn"] != "arn:aws:sqs:us-east-1:123456789012:amishare-EventsDeadLetterQueue" {
						t.Errorf("rule %s target %v: DeadLetterConfig = %v, want EventsDeadLetterQueue", name, tm["Id"], tm["DeadLetterConfig"])
					}
					if rp, _ := tm["RetryPolicy"].(map[string]any); rp["MaximumRetryAttempts"] == nil || rp["MaximumEventAgeInSeconds"] == nil {
						t.Errorf("rule %s target %v: RetryPolicy = %v", name, tm["Id"], tm["RetryPolicy"])
					}
				}
			}
			wantRules := 2
			if cloudTrail == "true" {
				wantRules++
			}
			if c.schedule != "" {
				wantRules++
				if r, _ := res["SweepRule"].(map[string]any); prop(r, "ScheduleExpression") != c.schedule {
					t.Errorf("SweepRule schedule = %v, want %q", prop(r, "ScheduleExpression"), c.schedule)
				}
			}
			if len(rules) != wantRules {
				t.Fatalf("rules = %v, want %d", rules, wantRules)
			}
			qp := res["EventsDeadLetterQueuePolicy"].(map[string]any)
			doc := prop(qp, "PolicyDocument").(map[string]any)
			if doc["Version"] != "2012-10-17" {
				t.Errorf("queue policy Version = %v", doc["Version"])
			}
			var sources []string
			onlyEventBridge := false
			for _, st := range iameval.List(doc["Statement"]) {
				stmt := st.(map[string]any)
				cond := stmt["Condition"].(map[string]any)
				if stmt["Effect"] == "Deny" {
					ne, _ := cond["StringNotEquals"].(map[string]any)
					onlyEventBridge = onlyEventBridge || fmt.Sprint(ne["aws:PrincipalServiceName"]) == "events.amazonaws.com"
					continue
				}
				sources = append(sources, iameval.Strings(cond["ArnEquals"].(map[string]any)["aws:SourceArn"])...)
			}
			if !onlyEventBridge {
				t.Errorf("events dead-letter queue policy: no Deny of every principal but EventBridge")
			}
			for _, rule := range rules {
				arn := "arn:aws:events:us-east-1:123456789012:rule/amishare-" + rule
				if !slices.Contains(sources, arn) {
					t.Errorf("events dead-letter queue policy does not let rule %s write (sources %v)", rule, sources)
				}
			}
			if len(sources) != len(rules) {
				t.Errorf("queue policy sources %v, want exactly the %d rules", sources, len(rules))
			}
			alarmed := map[string]bool{}
			for _, v := range res {
				r := v.(map[string]any)
				if r["Type"] != "AWS::CloudWatch::Alarm" {
					continue
				}
				key := prop(r, "Namespace").(string) + "/" + prop(r, "MetricName").(string)
				for _, d := range iameval.List(prop(r, "Dimensions")) {
					key += "/" + strings.TrimPrefix(strings.TrimPrefix(fmtAny(d.(map[string]any)["Value"]), "getatt:"), "ref:")
				}
				alarmed[key] = true
			}
			for _, want := range []string{
				"AWS/SQS/ApproximateNumberOfMessagesVisible/DeadLetterQueue.QueueName",
				"AWS/SQS/ApproximateNumberOfMessagesVisible/EventsDeadLetterQueue.QueueName",
				"AWS/SQS/ApproximateNumberOfMessagesVisible/SweepDeadLetterQueue.QueueName",
				"AWS/Lambda/AsyncEventsDropped/AmishareFunction",
				"AWS/Lambda/DeadLetterErrors/AmishareFunction",
				"AWS/Lambda/Errors/AmishareFunction",
			} {
				if !alarmed[want] {
					t.Errorf("no alarm on %s (alarms: %v)", want, alarmed)
				}
			}
		})
	}
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

// TestRulePatterns runs every rule's pattern against the sample events and
// hand-made ones (moto does not apply patterns, and its own matcher does not
// flatten arrays of objects as EventBridge does).
func TestRulePatterns(t *testing.T) {
	res := resolve(t, map[string]string{"EnableCloudTrailEvents": "true"})
	patterns := map[string]map[string]any{}
	for name, v := range res {
		r := v.(map[string]any)
		if r["Type"] == "AWS::Events::Rule" && prop(r, "ScheduleExpression") == nil {
			patterns[name] = prop(r, "EventPattern").(map[string]any)
		}
	}
	deleteAllTags := `{"version":"0","id":"x","account":"123456789012","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","detail":{"eventSource":"ec2.amazonaws.com","eventName":"DeleteTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]}}}}`
	deleteOtherTag := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"DeleteTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"Name"}]}}}}`
	deleteAllInstanceTags := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"DeleteTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"i-0123456789abcdef0"}]}}}}`
	createTagsMixed := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"CreateTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"i-0123456789abcdef0"},{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"Name"},{"key":"amishare:accounts"}]}}}}`
	failedCreateTags := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"CreateTags","errorCode":"Client.UnauthorizedOperation","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"amishare:accounts"}]}}}}`
	statusTags := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"CreateTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"amishare:status"},{"key":"amishare:message"}]}}}}`
	regionsTagChange := `{"account":"123456789012","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:regions"],"service":"ec2","resource-type":"image"}}`
	copiesTagChange := `{"account":"123456789012","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:copies","amishare:status"],"service":"ec2","resource-type":"image","tags":{"amishare:copies":"eu-west-1=ami-0123456789abcdef1","amishare:status":"shared"}}}`
	createRegionsTag := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"CreateTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"amishare:regions"}]}}}}`
	statusDeleted := `{"account":"123456789012","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:status"],"service":"ec2","resource-type":"image","tags":{"Name":"x"}}}`
	everyTagDeleted := `{"account":"123456789012","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:status","amishare:message"],"service":"ec2","resource-type":"image","tags":{}}}`
	statusWritten := `{"account":"123456789012","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:status"],"service":"ec2","resource-type":"image","tags":{"amishare:status":"shared"}}}`
	deleteStatus := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"DeleteTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"amishare:status"}]}}}}`
	parameterTagChange := `{"account":"123456789012","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:parameter"],"service":"ec2","resource-type":"image","tags":{"amishare:parameter":"/amishare/images/golden"}}}`
	createParameterTag := `{"account":"123456789012","source":"aws.ec2","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"ec2.amazonaws.com","eventName":"CreateTags","requestParameters":{"resourcesSet":{"items":[{"resourceId":"ami-0123456789abcdef0"}]},"tagSet":{"items":[{"key":"amishare:parameter"}]}}}}`
	otherAccount := `{"account":"999999999999","source":"aws.tag","detail-type":"Tag Change on Resource","resources":["arn:aws:ec2:us-east-1:999999999999:image/ami-0123456789abcdef0"],"detail":{"changed-tag-keys":["amishare:accounts"],"service":"ec2","resource-type":"image"}}`
	tests := []struct {
		name  string
		event string // a file in events/ or inline JSON
		rule  string // the rule that must match, "" for none
	}{
		{"available", "ami-available.json", "AmishareFunctionAmiAvailable"},
		// AWS's sample comes from account 012345678901: not this stack's.
		{"AWS documentation sample, another account", "aws-doc-ami-available.json", ""},
		{"failed (a copy amishare made may have failed)", "ami-failed.json", "AmishareFunctionAmiAvailable"},
		{"deregistered", "ami-deregistered.json", "AmishareFunctionAmiAvailable"},
		{"tag change", "tag-change.json", "AmishareFunctionAccountsTagChanged"},
		{"status-only tag change", "tag-change-status-only.json", ""},
		{"CloudTrail CreateImage", "cloudtrail-create-image.json", "CloudTrailRule"},
		{"CloudTrail CopyImage", "cloudtrail-copy-image.json", "CloudTrailRule"},
		{"CloudTrail CreateTags", "cloudtrail-create-tags.json", "CloudTrailRule"},
		{"CloudTrail DeleteTags", "cloudtrail-delete-tags.json", "CloudTrailRule"},
		{"DeleteTags removing every tag of an image", deleteAllTags, "CloudTrailRule"},
		{"DeleteTags removing every tag (sample)", "cloudtrail-delete-all-tags.json", "CloudTrailRule"},
		{"DeleteTags of another key", deleteOtherTag, ""},
		{"DeleteTags removing every tag of an instance", deleteAllInstanceTags, ""},
		{"CreateTags on an instance and an image", createTagsMixed, "CloudTrailRule"},
		{"failed CreateTags", failedCreateTags, ""},
		{"amishare's own status tags", statusTags, ""},
		{"other event", "other-event.json", ""},
		{"regions tag change", regionsTagChange, "AmishareFunctionAccountsTagChanged"},
		{"CreateTags of amishare:regions", createRegionsTag, "CloudTrailRule"},
		{"amishare's own copies tag", copiesTagChange, ""},
		{"amishare:status deleted", statusDeleted, "AmishareFunctionAccountsTagChanged"},
		{"every amishare tag deleted", everyTagDeleted, "AmishareFunctionAccountsTagChanged"},
		{"amishare's own status tag written", statusWritten, ""},
		{"CloudTrail DeleteTags of amishare:status", deleteStatus, "CloudTrailRule"},
		{"a tag change in another account", otherAccount, ""},
		{"parameter tag change", parameterTagChange, "AmishareFunctionAccountsTagChanged"},
		{"CreateTags of amishare:parameter", createParameterTag, "CloudTrailRule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.event)
			if strings.HasSuffix(tt.event, ".json") {
				var err error
				if raw, err = os.ReadFile(filepath.Join("../../../events", tt.event)); err != nil {
					t.Fatal(err)
				}
			}
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			var matched []string
			for name, p := range patterns {
				ok, err := Matches(p, ev)
				if err != nil {
					t.Fatalf("rule %s: %v", name, err)
				}
				if ok {
					matched = append(matched, name)
				}
			}
			want := []string{}
			if tt.rule != "" {
				want = []string{tt.rule}
			}
			if !slices.Equal(append([]string{}, matched...), want) {
				t.Errorf("matched by %v, want %v", matched, want)
			}
		})
	}
}

// TestIAMDocListsTheRole keeps docs/iam.md's table and the role in step:
// every action the role allows in any KmsMode is in the table, and the table
// names no action the role does not have.
func TestIAMDocListsTheRole(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/iam.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "# IAM: the role allows")
	if start < 0 {
		t.Fatal("docs/iam.md has no section \"# IAM: the role allows\"")
	}
	end := strings.Index(doc[start+1:], "\n## ")
	if end < 0 {
		end = len(doc) - start - 1
	}
	var table []string
	for _, line := range strings.Split(doc[start:start+1+end], "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		for _, f := range strings.Split(cells[1], "`") {
			if strings.Contains(f, ":") && !strings.ContainsAny(f, " ,") {
				table = append(table, f)
			}
		}
	}
	if len(table) < 10 {
		t.Fatalf("found only %v in the IAM table of docs/iam.md", table)
	}
	have := map[string]bool{}
	for _, mode := range []string{"policy", "grant", "off"} {
		// With a receiver, so that its sts:AssumeRole is in the role too.
		for _, a := range role(t, map[string]string{"KmsMode": mode, "Receivers": "111122223333"}).Actions() {
			have[a] = true
			if !slices.Contains(table, a) {
				t.Errorf("the role allows %s (KmsMode %s) but docs/iam.md does not list it", a, mode)
			}
		}
	}
	for _, a := range table {
		if !have[a] {
			t.Errorf("docs/iam.md lists %s, which the role does not allow", a)
		}
	}
}
