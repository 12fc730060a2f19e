package stack

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/amishare/amishare/internal/testing/iameval"
	"github.com/amishare/amishare/pkg/sweep"
)

// functionRoleGetAtt is the function role's ARN as the resolver writes it (Fn::GetAtt).
const functionRoleGetAtt = "getatt:AmishareFunctionRole.Arn"

// TestBurstSettings checks how the stack absorbs a burst (docs/bursts.md):
// the function's reserved concurrency is the parameter (none for 0),
// throttled asynchronous events wait up to the 6 hours Lambda allows, the
// sweep's queue invokes at most 2 at once and never more than the
// reservation, and a continuation survives the throttling a burst causes
// (five receives, a visibility timeout of six function timeouts).
func TestBurstSettings(t *testing.T) {
	for _, c := range []struct {
		param string // ReservedConcurrency; "" is the default
		want  any    // ReservedConcurrentExecutions; nil when absent
	}{
		{"", "10"},
		{"25", "25"},
		{"2", "2"},
		{"0", nil},
	} {
		t.Run("ReservedConcurrency="+c.param, func(t *testing.T) {
			params := map[string]string{}
			if c.param != "" {
				params["ReservedConcurrency"] = c.param
			}
			res := resolve(t, params)
			fn := res["AmishareFunction"].(map[string]any)
			got := prop(fn, "ReservedConcurrentExecutions")
			if got != c.want {
				t.Errorf("ReservedConcurrentExecutions: got %v, want %v", got, c.want)
			}
			// What the burst harness (internal/testing/burst) models.
			limits, err := FunctionLimits(res, "AmishareFunction")
			if err != nil || limits.Concurrency != number(c.want) || limits.Timeout != 300*time.Second {
				t.Errorf("FunctionLimits: got %+v, %v; want concurrency %d, timeout 300s", limits, err, number(c.want))
			}
			var invokeConfigs []map[string]any
			for _, v := range res {
				if r := v.(map[string]any); r["Type"] == "AWS::Lambda::EventInvokeConfig" {
					invokeConfigs = append(invokeConfigs, r)
				}
			}
			if len(invokeConfigs) != 1 {
				t.Fatalf("event invoke configs: got %d, want 1", len(invokeConfigs))
			}
			eic := invokeConfigs[0]
			if prop(eic, "FunctionName") != "ref:AmishareFunction" || fmt.Sprint(prop(eic, "MaximumEventAgeInSeconds")) != "21600" || fmt.Sprint(prop(eic, "MaximumRetryAttempts")) != "2" {
				t.Errorf("event invoke config: got %v, want the function's, events kept 21600 s, 2 retries of errors", eic["Properties"])
			}

			esm := res["SweepContinuationMapping"].(map[string]any)
			if prop(esm, "FunctionName") != "ref:AmishareFunction" || prop(esm, "EventSourceArn") != "arn:aws:sqs:us-east-1:123456789012:amishare-SweepQueue" || fmt.Sprint(prop(esm, "BatchSize")) != "1" {
				t.Errorf("sweep mapping: got %v, want the sweep queue to the function, one message at a time", esm["Properties"])
			}
			scaling, _ := prop(esm, "ScalingConfig").(map[string]any)
			maxConc := number(scaling["MaximumConcurrency"])
			if maxConc != 2 {
				t.Errorf("sweep mapping MaximumConcurrency: got %v, want 2 (the fewest Lambda allows)", scaling["MaximumConcurrency"])
			}
			if c.want != nil && maxConc > number(c.want) {
				t.Errorf("sweep mapping MaximumConcurrency %d exceeds the reserved concurrency %v", maxConc, c.want)
			}

			q := res["SweepQueue"].(map[string]any)
			visibility, timeout := number(prop(q, "VisibilityTimeout")), number(prop(fn, "Timeout"))
			if timeout == 0 || visibility < 6*timeout {
				t.Errorf("sweep queue visibility timeout %d s, function timeout %d s: want at least six times it", visibility, timeout)
			}
			redrive, _ := prop(q, "RedrivePolicy").(map[string]any)
			if receives := number(redrive["maxReceiveCount"]); receives < 5 {
				t.Errorf("sweep queue maxReceiveCount: got %d, want at least 5 (a throttled invocation counts a receive)", receives)
			}
		})
	}
}

// number reads a resolved numeric value (a JSON number, or a parameter's string); 0 when it is none.
func number(v any) int {
	var n int
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

// TestQueuesOnlyTheFunctionRole evaluates the queue policies of the sweep's
// queue and of the function's dead-letter queue: another principal of the
// account is refused what only the function does with each (whatever its
// identity policy allows), the function's role is not, and the queue stays
// manageable.
func TestQueuesOnlyTheFunctionRole(t *testing.T) {
	res := resolve(t, nil)
	other := map[string][]string{"aws:PrincipalAccount": {AccountID}, "aws:PrincipalArn": {"arn:aws:iam::123456789012:role/admin"}}
	function := map[string][]string{"aws:PrincipalAccount": {AccountID}, "aws:PrincipalArn": {functionRoleGetAtt}}
	for _, c := range []struct {
		policy, queue string
		refused       []string // for any principal but the function's role
	}{
		{"SweepQueuePolicy", "SweepQueue", []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}},
		{"DeadLetterQueuePolicy", "DeadLetterQueue", []string{"sqs:SendMessage"}},
	} {
		t.Run(c.policy, func(t *testing.T) {
			qp, ok := res[c.policy].(map[string]any)
			if !ok {
				t.Fatalf("no %s", c.policy)
			}
			if queues := iameval.Strings(prop(qp, "Queues")); !slices.Equal(queues, []string{"ref:" + c.queue}) {
				t.Errorf("%s applies to %v, want %s", c.policy, queues, c.queue)
			}
			doc := prop(qp, "PolicyDocument").(map[string]any)
			if doc["Version"] != "2012-10-17" {
				t.Errorf("Version: got %v", doc["Version"])
			}
			var stmts []iameval.Statement
			for _, s := range iameval.List(doc["Statement"]) {
				st, err := iameval.ParseStatement(s)
				if err != nil {
					t.Fatal(err)
				}
				stmts = append(stmts, st)
			}
			arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s-%s", Region, AccountID, StackName, c.queue)
			denied := func(action string, ctx map[string][]string) bool {
				d := iameval.Evaluate(stmts, iameval.Request{Action: action, Resource: arn, Context: ctx})
				return !d.Allowed && len(d.By) > 0
			}
			for _, a := range c.refused {
				if !denied(a, other) {
					t.Errorf("%s by another principal of the account: not refused", a)
				}
				if denied(a, function) {
					t.Errorf("%s by the function's role: refused", a)
				}
			}
			for _, a := range []string{"sqs:GetQueueAttributes", "sqs:SetQueueAttributes", "sqs:PurgeQueue"} {
				if denied(a, other) {
					t.Errorf("%s by an administrator: refused, want the queue manageable", a)
				}
			}
		})
	}
}

// TestSweepLeaseTable: the lease's table is keyed as pkg/sweep writes it,
// the function is given its name, and the role may read and write the
// lease's one item there, nothing else.
func TestSweepLeaseTable(t *testing.T) {
	res := resolve(t, nil)
	table, ok := res["SweepLeaseTable"].(map[string]any)
	if !ok || table["Type"] != "AWS::DynamoDB::Table" {
		t.Fatalf("SweepLeaseTable: got %v, want a DynamoDB table", res["SweepLeaseTable"])
	}
	keys := iameval.List(prop(table, "KeySchema"))
	attrs := iameval.List(prop(table, "AttributeDefinitions"))
	if len(keys) != 1 || fmt.Sprint(keys[0]) != fmt.Sprint(map[string]any{"AttributeName": sweep.LeaseKeyAttribute, "KeyType": "HASH"}) ||
		len(attrs) != 1 || fmt.Sprint(attrs[0]) != fmt.Sprint(map[string]any{"AttributeName": sweep.LeaseKeyAttribute, "AttributeType": "S"}) {
		t.Errorf("key schema %v, attributes %v: want the string partition key %q alone", keys, attrs, sweep.LeaseKeyAttribute)
	}
	env, _ := prop(res["AmishareFunction"].(map[string]any), "Environment").(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	if vars["AMISHARE_SWEEP_LEASE_TABLE"] != "ref:SweepLeaseTable" {
		t.Errorf("AMISHARE_SWEEP_LEASE_TABLE: got %v, want the table's name", vars["AMISHARE_SWEEP_LEASE_TABLE"])
	}
	arn := "arn:aws:dynamodb:us-east-1:123456789012:table/amishare-SweepLeaseTable"
	lease := map[string][]string{"dynamodb:LeadingKeys": {sweep.LeaseKey}}
	stmts := role(t, nil).Statements()
	for _, c := range []struct {
		name string
		req  iameval.Request
		want bool
	}{
		{"take the lease", iameval.Request{Action: "dynamodb:PutItem", Resource: arn, Context: lease}, true},
		{"read the lease", iameval.Request{Action: "dynamodb:GetItem", Resource: arn, Context: lease}, true},
		{"hand the lease over", iameval.Request{Action: "dynamodb:UpdateItem", Resource: arn, Context: lease}, true},
		{"end the lease", iameval.Request{Action: "dynamodb:DeleteItem", Resource: arn, Context: lease}, true},
		{"write another item", iameval.Request{Action: "dynamodb:PutItem", Resource: arn, Context: map[string][]string{"dynamodb:LeadingKeys": {"other"}}}, false},
		{"scan the table", iameval.Request{Action: "dynamodb:Scan", Resource: arn}, false},
		{"write another table", iameval.Request{Action: "dynamodb:PutItem", Resource: "arn:aws:dynamodb:us-east-1:123456789012:table/other", Context: lease}, false},
		{"delete the table", iameval.Request{Action: "dynamodb:DeleteTable", Resource: arn}, false},
	} {
		if got := iameval.Evaluate(stmts, c.req).Allowed; got != c.want {
			t.Errorf("%s: allowed = %v, want %v", c.name, got, c.want)
		}
	}
}
