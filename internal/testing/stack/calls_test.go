package stack

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/internal/testing/iameval"
)

// callsCheckEnv turns TestRecordedCallsAllowed on; `make test` sets it after
// the whole suite has run with AMISHARE_CALLS_DIR set.
const (
	callsDirEnv   = "AMISHARE_CALLS_DIR" // internal/testing/fixture.CallsDirEnv
	callsCheckEnv = "AMISHARE_CALLS_CHECK"
)

// TestRecordedCallsAllowed checks that the function's role, as translated
// from template.yaml, allows every AWS call the test suite saw amishare make,
// in at least one KmsMode, with DelegatedKeysOnly=true. A new call without
// its IAM permission fails here, in CI, and not in production.
func TestRecordedCallsAllowed(t *testing.T) {
	if os.Getenv(callsCheckEnv) == "" {
		t.Skipf("runs in `make test` after the suite recorded its calls (%s=1 with %s)", callsCheckEnv, callsDirEnv)
	}
	dir := os.Getenv(callsDirEnv)
	if dir == "" {
		t.Fatalf("%s is set but %s is not", callsCheckEnv, callsDirEnv)
	}
	calls, err := ReadCalls(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatalf("no call recorded under %s: the suite did not run with %s", dir, callsDirEnv)
	}
	t.Logf("%d distinct calls: %s", len(calls), strings.Join(Summary(calls), " "))
	checkCalls(t, calls, Accounts(calls))
	checkReceiverCalls(t, calls)
}

// checkCalls checks the function's role allows every call it made (not
// the receivers'), deployed with AllowedAccounts accounts and the
// receivers the calls assumed roles in.
func checkCalls(t *testing.T, calls []Call, accounts []string) {
	t.Helper()
	// The suite's configuration allows copies to the regions its calls went to.
	allowedRegions := strings.Join(Regions(calls), ",")
	receivers := strings.Join(Receivers(calls), ",")
	roles := map[string][]iameval.Statement{}
	roleFor := func(mode, param string) []iameval.Statement {
		key := mode + " " + param
		if r, ok := roles[key]; ok {
			return r
		}
		params := map[string]string{"KmsMode": mode, "DelegatedKeysOnly": "true", "AllowedRegions": allowedRegions,
			"AllowedAccounts": strings.Join(accounts, ","), "Receivers": receivers}
		if param != "" {
			params["ConfigParameterName"] = param
		}
		r := role(t, params).Statements()
		roles[key] = r
		return r
	}
	for _, c := range calls {
		if c.Receiver != "" {
			continue // checkReceiverCalls
		}
		for _, q := range c.Requests() {
			var denials []string
			for _, mode := range []string{"policy", "grant", "off"} {
				d := iameval.Evaluate(roleFor(mode, c.ConfigParameter()), q)
				if d.Allowed {
					denials = nil
					break
				}
				denials = append(denials, mode+": "+strings.Join(sids(d.By), ","))
			}
			if denials != nil {
				t.Errorf("the role does not allow %s (KmsMode %s): add its permission to template.yaml, least privilege, checked in the Service Authorization Reference",
					q, strings.Join(denials, "; "))
			}
		}
	}
}

// TestCallRequests pins how recorded calls become IAM requests, and that the
// check fails for a call the role does not allow.
func TestCallRequests(t *testing.T) {
	calls := []Call{
		{Service: "EC2", Operation: "CreateTags", Input: map[string]any{
			"Resources": []any{"ami-0123456789abcdef0"},
			"Tags":      []any{map[string]any{"Key": "amishare:status", "Value": "shared"}, map[string]any{"Key": "amishare:message", "Value": "m"}},
		}},
		{Service: "EC2", Operation: "ModifySnapshotAttribute", Input: map[string]any{
			"SnapshotId": "snap-0123456789abcdef0", "OperationType": "add", "UserIds": []any{"111122223333"},
		}},
		{Service: "KMS", Operation: "CreateGrant", Input: map[string]any{
			"KeyId": keyARN, "GranteePrincipal": accountRoot,
			"Operations": []any{"Decrypt", "DescribeKey", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "CreateGrant"},
		}},
		{Service: "SSM", Operation: "GetParameter", Input: map[string]any{"Name": "/amishare-e2e/config"}},
		{Service: "EC2", Operation: "CopyImage", Region: "eu-west-1", Input: map[string]any{
			"SourceImageId": "ami-0123456789abcdef0", "SourceRegion": "us-east-1", "Encrypted": true, "KmsKeyId": "alias/amis",
			"TagSpecifications": []any{map[string]any{"ResourceType": "image", "Tags": []any{
				map[string]any{"Key": "amishare:accounts", "Value": "111122223333"}, map[string]any{"Key": "amishare:source", "Value": "us-east-1/ami-0123456789abcdef0"}}}},
		}},
		{Service: "EC2", Operation: "CreateTags", Region: "eu-west-1", Input: map[string]any{
			"Resources": []any{"ami-0123456789abcdef1"}, "Tags": []any{map[string]any{"Key": "amishare:accounts", "Value": ""}},
		}},
		{Service: "KMS", Operation: "PutKeyPolicy", Region: "eu-west-1", Input: map[string]any{"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "Policy": "{}"}},
		// The snapshots' record, and the sweep's continuation queue.
		{Service: "EC2", Operation: "CreateTags", Input: map[string]any{
			"Resources": []any{"snap-0123456789abcdef0", "snap-0123456789abcdef1"}, "Tags": []any{map[string]any{"Key": "amishare:image", "Value": "ami-0123456789abcdef0"}},
		}},
		{Service: "EC2", Operation: "DeleteTags", Input: map[string]any{
			"Resources": []any{"snap-0123456789abcdef0"}, "Tags": []any{map[string]any{"Key": "amishare:image", "Value": "ami-0123456789abcdef0"}},
		}},
		{Service: "SQS", Operation: "SendMessage", Input: map[string]any{"QueueUrl": "http://127.0.0.1:5000/123456789012/amishare-SweepQueue"}},
		// The parameters naming the newest image, and a receiver's role.
		{Service: "SSM", Operation: "GetParameters", Input: map[string]any{"Names": []any{"/amishare/images/a", "/amishare/images/b"}}},
		{Service: "SSM", Operation: "PutParameter", Input: map[string]any{"Name": "/amishare/images/a", "Value": "ami-0123456789abcdef0", "DataType": "aws:ec2:image"}},
		{Service: "SSM", Operation: "GetParameter", Input: map[string]any{"Name": "/amishare/images/a"}},
		{Service: "SSM", Operation: "DeleteParameter", Region: "eu-west-1", Input: map[string]any{"Name": "/amishare/images/a"}},
		{Service: "STS", Operation: "AssumeRole", Input: map[string]any{"RoleArn": "arn:aws:iam::111122223333:role/amishare-receiver", "RoleSessionName": "amishare-ami-0123456789abcdef0"}},
		// The sweep's lease, as the SDK records its attribute values.
		{Service: "DynamoDB", Operation: "PutItem", Input: map[string]any{"TableName": "amishare-SweepLeaseTable", "Item": map[string]any{"scope": map[string]any{"Value": "sweep"}, "holder": map[string]any{"Value": "h"}}}},
		{Service: "DynamoDB", Operation: "UpdateItem", Input: map[string]any{"TableName": "amishare-SweepLeaseTable", "Key": map[string]any{"scope": map[string]any{"Value": "sweep"}}}},
	}
	if q := calls[len(calls)-1].Requests(); len(q) != 1 || q[0].Action != "dynamodb:UpdateItem" || q[0].Resource != "arn:aws:dynamodb:us-east-1:123456789012:table/amishare-SweepLeaseTable" || !slices.Equal(q[0].Context["dynamodb:LeadingKeys"], []string{"sweep"}) {
		t.Errorf("UpdateItem request = %v, want the lease table and its key", q)
	}
	if got := Receivers(calls); !slices.Equal(got, []string{"111122223333"}) {
		t.Errorf("Receivers = %v, want [111122223333]", got)
	}
	if got := Regions(calls); !slices.Equal(got, []string{"eu-west-1"}) {
		t.Errorf("Regions = %v, want [eu-west-1]", got)
	}
	if q := calls[4].Requests(); len(q) != 5 || q[4].Action != "ec2:CreateTags" || q[4].Context["ec2:CreateAction"][0] != "CopyImage" {
		t.Errorf("CopyImage requests = %v, want 4 CopyImage and the CreateTags of its TagSpecifications", q)
	}
	q := calls[1].Requests()
	if len(q) != 1 || q[0].Resource != snapshotARN || !slices.Equal(q[0].Context["ec2:Add/userId"], []string{"111122223333"}) {
		t.Errorf("ModifySnapshotAttribute request = %v", q)
	}
	if got := Accounts(calls); !slices.Equal(got, []string{"111122223333"}) {
		t.Errorf("Accounts = %v, want [111122223333]", got)
	}
	checkCalls(t, calls, Accounts(calls))

	// Calls the role must refuse: the check has to report them.
	bad := []Call{
		{Service: "EC2", Operation: "ModifySnapshotAttribute", Input: map[string]any{
			"SnapshotId": "snap-0123456789abcdef0", "OperationType": "add", "GroupNames": []any{"all"},
		}},
		{Service: "EC2", Operation: "CreateTags", Input: map[string]any{
			"Resources": []any{"snap-0123456789abcdef0"}, "Tags": []any{map[string]any{"Key": "amishare:image", "Value": "ami-0123456789abcdef0"}, map[string]any{"Key": "Name", "Value": "x"}},
		}},
		{Service: "EC2", Operation: "DeleteTags", Input: map[string]any{"Resources": []any{"snap-0123456789abcdef0"}}},
		{Service: "EC2", Operation: "DeregisterImage", Input: map[string]any{"ImageId": "ami-0123456789abcdef0"}},
		// A snapshot shared with an account the stack does not allow.
		{Service: "EC2", Operation: "ModifySnapshotAttribute", Input: map[string]any{
			"SnapshotId": "snap-0123456789abcdef0", "OperationType": "add", "UserIds": []any{"999999999999"},
		}},
		{Service: "SQS", Operation: "SendMessage", Input: map[string]any{"QueueUrl": "http://127.0.0.1:5000/123456789012/amishare-sweep"}},
		{Service: "DynamoDB", Operation: "PutItem", Input: map[string]any{"TableName": "amishare-SweepLeaseTable", "Item": map[string]any{"scope": map[string]any{"Value": "other"}}}},
		{Service: "DynamoDB", Operation: "PutItem", Input: map[string]any{"TableName": "other", "Item": map[string]any{"scope": map[string]any{"Value": "sweep"}}}},
		// No AllowedRegions in the role below: no copy to another region.
		{Service: "EC2", Operation: "CopyImage", Region: "eu-west-1", Input: map[string]any{"SourceImageId": "ami-0123456789abcdef0", "SourceRegion": "us-east-1"}},
		{Service: "EC2", Operation: "CreateTags", Input: map[string]any{
			"Resources": []any{"ami-0123456789abcdef0"}, "Tags": []any{map[string]any{"Key": "amishare:regions", "Value": "eu-west-1"}},
		}},
		// Parameters outside the prefix, or the configuration itself.
		{Service: "SSM", Operation: "PutParameter", Input: map[string]any{"Name": "/app/db-password", "Value": "x"}},
		{Service: "SSM", Operation: "PutParameter", Input: map[string]any{"Name": "/amishare/config", "Value": "{}"}},
		{Service: "SSM", Operation: "PutParameter", Input: map[string]any{"Name": "/amishare/images/a", "Value": "x", "Policies": "[]"}},
		// No receiver in the role below: no role to assume.
		{Service: "STS", Operation: "AssumeRole", Input: map[string]any{"RoleArn": "arn:aws:iam::111122223333:role/amishare-receiver", "RoleSessionName": "amishare-x"}},
	}
	for _, c := range bad {
		t.Run("refused "+c.Action(), func(t *testing.T) {
			allowed := false
			for _, mode := range []string{"policy", "grant", "off"} {
				for _, q := range c.Requests() {
					if iameval.Evaluate(role(t, map[string]string{"KmsMode": mode, "AllowedAccounts": "111122223333"}).Statements(), q).Allowed {
						allowed = true
					}
				}
			}
			if allowed {
				t.Errorf("%s is allowed by the role; want it refused (the check would not catch a missing permission)", c.Action())
			}
		})
	}
}
