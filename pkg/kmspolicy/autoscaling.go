package kmspolicy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/kmsgrant"
)

// The Auto Scaling statements: for each receiver of an image under a key,
// one statement letting that receiver's role (and no other principal of
// the account) create exactly the grant the EC2 Auto Scaling guide
// prescribes for a key of another account: for the receiver's
// AWSServiceRoleForAutoScaling (kms:GranteePrincipal), with the guide's
// operations and no other (kms:GrantOperations). The grant itself is
// created from the receiver's account (kmsgrant.CreateAutoScalingGrant).
// The principal is the account's root, narrowed by aws:PrincipalArn: a key
// policy naming a role that does not exist (yet) is refused by KMS.

// AutoScalingSid starts the Sid of each Auto Scaling statement; the
// receiver's account id follows.
const AutoScalingSid = "amishare-asg-grant"

// AutoScalingOperations are the operations the EC2 Auto Scaling guide
// grants the service-linked role on a key of another account ("Required
// AWS KMS key policy for use with encrypted volumes", cross-account
// example), in its order: the grant's (kmsgrant.AutoScalingOperations).
var AutoScalingOperations = func() []string {
	var out []string
	for _, op := range kmsgrant.AutoScalingOperations {
		out = append(out, string(op))
	}
	return out
}()

// autoScalingStatement is the statement for one receiver whose role is
// named role.
func autoScalingStatement(account, role string, key Key) statement {
	return statement{
		Sid:       AutoScalingSid + "-" + account,
		Effect:    "Allow",
		Principal: awsPrincipal{AWS: []string{awsid.RootARN(key.Partition, account)}},
		Action:    "kms:CreateGrant",
		Resource:  "*",
		Condition: conditions{
			{"ArnEquals", map[string]any{"aws:PrincipalArn": awsid.RoleARN(key.Partition, account, role)}},
			{"StringEquals", map[string]any{"kms:GranteePrincipal": awsid.AutoScalingRoleARN(key.Partition, account)}},
			{"ForAllValues:StringEquals", map[string]any{"kms:GrantOperations": slices.Clone(AutoScalingOperations)}},
			{"Null", map[string]any{"kms:GrantOperations": "false"}},
		},
	}
}

// autoScalingAccount returns the account an Auto Scaling statement is for;
// ok is false for any other statement.
func autoScalingAccount(raw json.RawMessage) (fields map[string]json.RawMessage, account string, ok bool) {
	if json.Unmarshal(raw, &fields) != nil {
		return nil, "", false
	}
	var sid string
	if json.Unmarshal(fields[sidKey], &sid) != nil {
		return nil, "", false
	}
	account, ok = strings.CutPrefix(sid, AutoScalingSid+"-")
	return fields, account, ok && awsid.IsAccountID(account)
}

// AutoScalingGrantees returns the accounts the policy's Auto Scaling
// statements are for, sorted.
func AutoScalingGrantees(policy string) ([]string, error) {
	doc, err := parse(policy)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range doc.stmts {
		if _, a, ok := autoScalingAccount(s); ok && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

// EditAutoScaling returns the policy with exactly one Auto Scaling
// statement for each of accounts (their role named role), written as this
// version writes them, and every other statement kept byte for byte.
// changed is false when the policy already holds exactly those; out is then
// policy itself. The key's own account never gets one.
func EditAutoScaling(policy string, accounts []string, role string, key Key) (out string, changed bool, err error) {
	key, err = key.check()
	if err != nil {
		return "", false, err
	}
	var want []string
	for _, a := range accounts {
		if !awsid.IsAccountID(a) {
			return "", false, fmt.Errorf("%w: %q", ErrInvalidAccount, a)
		}
		if a != key.Account && !slices.Contains(want, a) {
			want = append(want, a)
		}
	}
	slices.Sort(want)
	if role == "" {
		return "", false, fmt.Errorf("%w: no receiver role name", ErrInvalidPolicy)
	}
	doc, err := parse(policy)
	if err != nil {
		return "", false, err
	}
	var fresh []json.RawMessage
	for _, a := range want {
		b, err := marshal(autoScalingStatement(a, role, key), false)
		if err != nil {
			return "", false, err
		}
		fresh = append(fresh, b)
	}
	var kept []json.RawMessage
	var have []string
	canonical, placed := true, false
	for _, s := range doc.stmts {
		fields, a, ok := autoScalingAccount(s)
		if !ok {
			kept = append(kept, s)
			continue
		}
		if !placed {
			kept, placed = append(kept, fresh...), true
		}
		have = append(have, a)
		if i := slices.Index(want, a); i < 0 || !statementMeans(fields, fresh[i]) {
			canonical = false
		}
	}
	if !placed {
		kept = append(kept, fresh...)
	}
	if canonical && slices.Equal(have, want) {
		return policy, false, nil
	}
	var b []byte
	for _, l := range []layout{layoutIndented, layoutOursCompact, layoutCompact} {
		if b, err = doc.render(kept, fresh, l); err != nil {
			return "", false, err
		}
		if len(b) <= MaxPolicyBytes {
			return string(b), true, nil
		}
	}
	return "", false, fmt.Errorf("%w: %d bytes with %d Auto Scaling statements, limit %d", ErrPolicyTooLarge, len(b), len(want), MaxPolicyBytes)
}

// statementMeans reports whether a statement's fields mean what want (a
// statement as this package writes it) does.
func statementMeans(fields map[string]json.RawMessage, want json.RawMessage) bool {
	var wm map[string]json.RawMessage
	if json.Unmarshal(want, &wm) != nil {
		return false
	}
	got, err := decodeFields(fields, "")
	if err != nil {
		return false
	}
	w, err := decodeFields(wm, "")
	return err == nil && reflect.DeepEqual(got, w)
}

// EnsureAutoScaling makes the key's policy hold exactly the Auto Scaling
// statements for accounts (their role named role), each write computed
// from a read right before it and read back (see EnsurePolicy). It does
// not write when nothing changes.
func EnsureAutoScaling(ctx context.Context, api API, keyARN string, accounts []string, role string) (wrote bool, err error) {
	key := KeyOf(keyARN)
	want := slices.DeleteFunc(slices.Sorted(slices.Values(accounts)), func(a string) bool { return a == key.Account })
	want = slices.Compact(want)
	return ensure(ctx, api, keyARN,
		func(policy string) (string, bool, error) { return EditAutoScaling(policy, accounts, role, key) },
		func(policy string) (bool, error) {
			got, err := AutoScalingGrantees(policy)
			return slices.Equal(got, want), err
		})
}
