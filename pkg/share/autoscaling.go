package share

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmsgrant"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share/rules"
)

// Auto Scaling can launch encrypted images: for each key of an image that
// amishare may write (policy mode), each receiver the key lets use it gets a
// statement in the key policy allowing its receiver role to create the
// grant the EC2 Auto Scaling guide prescribes, and that grant, created from
// the receiver's account; an account the key no longer lets in loses both
// (the grant first). Organizations and OUs cannot be expanded to accounts
// here: only receivers named by account id get a grant.

// keyAfter is a key amishare may write as its image's plan leaves it.
type keyAfter struct {
	ARN string
	// Accounts are the accounts the key's statements let use it once the plan is applied.
	Accounts []string
	// Policy is the key policy as read (its Auto Scaling statements are not the plan's).
	Policy string
}

// keysAfter lists the keys of st amishare may write in policy mode, with
// the accounts they grant once p is applied.
func keysAfter(st rules.State, p rules.Plan, mode config.KMSMode) []keyAfter {
	if mode != config.ModePolicy {
		return nil
	}
	var out []keyAfter
	for _, k := range st.Keys {
		if !k.Writable(st.Owner) || k.Unread {
			continue
		}
		ka := keyAfter{ARN: k.ARN, Policy: k.Policy, Accounts: slices.Clone(k.Accounts)}
		for _, d := range p.Keys {
			if d.KeyARN != k.ARN {
				continue
			}
			ka.Accounts = slices.DeleteFunc(ka.Accounts, func(a string) bool { return slices.Contains(d.Remove, a) })
			for _, a := range d.Add {
				if awsid.IsAccountID(a) && !slices.Contains(ka.Accounts, a) {
					ka.Accounts = append(ka.Accounts, a)
				}
			}
		}
		slices.Sort(ka.Accounts)
		out = append(out, ka)
	}
	return out
}

// GrantResult is one Auto Scaling grant (or its statement) changed, or
// planned, or waiting.
type GrantResult struct {
	KeyARN  string `json:"keyArn"`
	Account string `json:"account"`
	// Action is "create" or "revoke" for the grant, "statements" for the
	// key policy's Auto Scaling statements (Account is then empty).
	Action string `json:"action"`
	// Waiting: the account has no Auto Scaling service-linked role yet (it
	// never used Auto Scaling); its grant follows at a later reconcile.
	Waiting bool   `json:"waiting,omitempty"`
	Error   string `json:"error,omitempty"`
}

// hasAutoScaling reports whether any key holds Auto Scaling statements.
func hasAutoScaling(keys []keyAfter) bool {
	return slices.ContainsFunc(keys, func(k keyAfter) bool {
		have, err := kmspolicy.AutoScalingGrantees(k.Policy)
		return err == nil && len(have) > 0
	})
}

// autoScaling keeps the Auto Scaling statements and grants of ci's keys.
// Nothing it meets is an error: what cannot be done now is a note, and the
// next reconcile tries again. In a sweep each key is looked at once.
func (e *Engine) autoScaling(ctx context.Context, cfg *config.Config, rep *ConsumerReport, ci consumerImage, views *receiverSet, dryRun bool) {
	for _, k := range ci.Keys {
		statements, err := kmspolicy.AutoScalingGrantees(k.Policy)
		if err != nil {
			continue // a policy amishare cannot parse: the share itself reports it
		}
		want := rules.AutoScalingWant(cfg, k.Accounts)
		if len(statements) == 0 && len(want) == 0 || !e.cache.autoScalingOnce(k.ARN) {
			continue
		}
		grants, err := kmsgrant.AutoScalingGrants(ctx, e.KMS, k.ARN)
		if err != nil {
			e.grantFailed(ctx, rep, GrantResult{KeyARN: k.ARN, Action: "list"}, err)
			continue
		}
		p, change := rules.DecideAutoScaling(k.ARN, want, statements, slices.Sorted(maps.Keys(grants)))
		if !change {
			continue
		}
		if dryRun {
			e.planAutoScaling(ctx, rep, ci, p, views)
			continue
		}
		e.applyAutoScaling(ctx, cfg, rep, ci, p, grants, views)
	}
}

// planAutoScaling is a dry run's Auto Scaling changes: the revocations and
// the statements as decided; of the grants to create, only those apply
// could create now, after the same reads (the receiver's session, its Auto
// Scaling role): one waiting for its role is planned as waiting, and one
// whose receiver cannot be reached not at all (it is reported unreachable).
func (e *Engine) planAutoScaling(ctx context.Context, rep *ConsumerReport, ci consumerImage, p rules.AutoScalingPlan, views *receiverSet) {
	for _, a := range p.Revoke {
		rep.Grants = append(rep.Grants, GrantResult{KeyARN: p.KeyARN, Account: a, Action: "revoke"})
	}
	if p.Statements {
		rep.Grants = append(rep.Grants, GrantResult{KeyARN: p.KeyARN, Action: "statements"})
	}
	for _, a := range p.Create {
		gr := GrantResult{KeyARN: p.KeyARN, Account: a, Action: "create"}
		if _, ok := e.grantable(ctx, rep, ci, gr, views); ok {
			rep.Grants = append(rep.Grants, gr)
		}
	}
	e.logger().InfoContext(ctx, "planned Auto Scaling grants (dry run)", "imageId", ci.ID, "keyArn", p.KeyARN, "plan", p)
}

// applyAutoScaling revokes the grants that go, writes the statements, then
// creates the grants that come, each through its receiver's role.
func (e *Engine) applyAutoScaling(ctx context.Context, cfg *config.Config, rep *ConsumerReport, ci consumerImage, p rules.AutoScalingPlan, grants map[string][]string, views *receiverSet) {
	log := e.logger().With("imageId", ci.ID, "keyArn", p.KeyARN)
	// delegatedKeysOnly holds here as for the share's own key writes.
	w := e.write(nil)
	w.delegatedOnly = cfg.DelegatedKeysOnly
	if err := w.checkDelegated(ctx, p.KeyARN); err != nil {
		e.grantFailed(ctx, rep, GrantResult{KeyARN: p.KeyARN, Action: "statements"}, err)
		return
	}
	for _, a := range p.Revoke {
		gr := GrantResult{KeyARN: p.KeyARN, Account: a, Action: "revoke"}
		if err := kmsgrant.Revoke(ctx, e.KMS, p.KeyARN, grants[a]); err != nil {
			e.grantFailed(ctx, rep, gr, err)
			return // the statement stays until its grant is gone
		}
		rep.Grants = append(rep.Grants, gr)
		log.InfoContext(ctx, "Auto Scaling grant revoked", "account", a)
	}
	if p.Statements {
		gr := GrantResult{KeyARN: p.KeyARN, Action: "statements"}
		_, err := kmspolicy.EnsureAutoScaling(ctx, e.KMS, p.KeyARN, p.Want, cfg.ReceiverRole)
		e.cache.forgetKey(p.KeyARN)
		if err != nil {
			e.grantFailed(ctx, rep, gr, err)
			return
		}
		rep.Grants = append(rep.Grants, gr)
		log.InfoContext(ctx, "Auto Scaling statements written", "accounts", p.Want, "role", cfg.ReceiverRole)
	}
	for _, a := range p.Create {
		gr := GrantResult{KeyARN: p.KeyARN, Account: a, Action: "create"}
		v, ok := e.grantable(ctx, rep, ci, gr, views)
		if !ok {
			continue
		}
		if err := kmsgrant.CreateAutoScalingGrant(ctx, v.clients.KMS, p.KeyARN, a); err != nil {
			e.grantFailed(ctx, rep, gr, err)
			continue
		}
		rep.Grants = append(rep.Grants, gr)
		log.InfoContext(ctx, "Auto Scaling grant created", "account", a, "grantee", awsid.AutoScalingRoleARN(awsid.PartitionOf(p.KeyARN), a))
	}
}

// grantable reports whether the grant gr can be created now, and returns
// its receiver: the receiver is reachable (otherwise it is reported
// unreachable) and has its Auto Scaling role (otherwise the grant is
// reported waiting, or failed when the role cannot be read). Both checks
// are reads, made alike by apply and by a dry run.
func (e *Engine) grantable(ctx context.Context, rep *ConsumerReport, ci consumerImage, gr GrantResult, views *receiverSet) (*receiverView, bool) {
	v := views.get(ctx, gr.Account)
	if v.err != nil {
		return nil, false // reported unreachable
	}
	exists, err := autoScalingRoleExists(ctx, v.clients.IAM)
	switch {
	case err != nil:
		e.grantFailed(ctx, rep, gr, err)
		return nil, false
	case !exists:
		gr.Waiting = true
		rep.Grants = append(rep.Grants, gr)
		e.logger().InfoContext(ctx, "Auto Scaling grant waits for the account's Auto Scaling role", "imageId", ci.ID, "keyArn", gr.KeyARN, "account", gr.Account)
		rep.note("%s has no Auto Scaling role yet: its grant on %s follows, retried later", gr.Account, shortKeyName(gr.KeyARN))
		return nil, false
	}
	return v, true
}

// autoScalingRoleExists reports whether the receiver has its Auto Scaling
// service-linked role (created with its first Auto Scaling group).
func autoScalingRoleExists(ctx context.Context, api *iam.Client) (bool, error) {
	_, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("AWSServiceRoleForAutoScaling")})
	switch {
	case err == nil:
		return true, nil
	case awserr.Code(err) == "NoSuchEntity":
		return false, nil
	}
	return false, fmt.Errorf("reading the Auto Scaling role: %w", err)
}

// grantFailed reports an Auto Scaling grant (or its statements) that could
// not be changed: a note; the next reconcile tries again.
func (e *Engine) grantFailed(ctx context.Context, rep *ConsumerReport, gr GrantResult, err error) {
	gr.Error = err.Error()
	rep.Grants = append(rep.Grants, gr)
	e.logger().WarnContext(ctx, "Auto Scaling grant not changed", "keyArn", gr.KeyARN, "account", gr.Account, "action", gr.Action, "error", err.Error())
	if nd := (*KeyNotDelegatedError)(nil); errors.As(err, &nd) {
		rep.note("Auto Scaling grants wait: %s", nd.Reason())
		return
	}
	what := "Auto Scaling grant"
	if gr.Account != "" {
		what += " of " + gr.Account
	}
	rep.note("%s on %s not changed (%s), retried later", what, shortKeyName(gr.KeyARN), short(err))
}

// shortKeyName names a key by its key/ID part, for amishare:message.
func shortKeyName(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}
