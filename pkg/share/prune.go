package share

import (
	"context"
	"errors"
	"fmt"

	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/kmspolicy"
	"github.com/amishare/amishare/pkg/share/rules"
)

// PruneResult reports PruneKey.
type PruneResult struct {
	KeyARN  string         `json:"keyArn"`
	Outcome Outcome        `json:"outcome"`
	Reason  string         `json:"reason,omitempty"`
	Changes []rules.Change `json:"changes,omitempty"`
	DryRun  bool           `json:"dryRun,omitempty"`
}

// PruneKey removes from a key's policy the statements amishare wrote in
// policy mode, once the configuration's mode is grant or off: the function's
// role may then no longer write key policies, so those statements would
// stay for good (amishare reports them as leftovers). It is the operator's
// remedy, run with credentials that may write the key policy (`amishare
// keys prune`). In policy mode amishare keeps its statements itself, and
// PruneKey refuses; with delegatedKeysOnly, a key not tagged
// amishare:managed = true is not amishare's to edit, and it refuses too.
func (e *Engine) PruneKey(ctx context.Context, keyARN string, opts Options) (PruneResult, error) {
	res := PruneResult{KeyARN: keyARN}
	var r Result
	cfg, invalid, err := e.begin(ctx, &r, opts)
	res.DryRun = r.DryRun
	switch {
	case err != nil:
		res.Outcome = OutcomeFailed
		return res, err
	case invalid != nil:
		res.Outcome, res.Reason = OutcomeBlocked, invalid.Error()
		return res, nil
	case cfg.KMS == config.ModePolicy:
		res.Outcome, res.Reason = OutcomeSkipped, `the configuration says "kms": "policy": amishare keeps its statements itself`
		return res, nil
	}
	policy, err := kmspolicy.GetPolicy(ctx, e.KMS, keyARN)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	grantees, err := kmspolicy.Grantees(policy)
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, fmt.Errorf("parsing policy of key %s: %w", keyARN, err)
	}
	for _, g := range grantees {
		res.Changes = append(res.Changes, rules.Change{KeyARN: keyARN, Action: rules.ActionRemove}.For(g))
	}
	if len(grantees) == 0 {
		res.Outcome, res.Reason = OutcomeApplied, "no statement of amishare's in the key policy"
		return res, nil
	}
	w := e.write(&r)
	w.delegatedOnly = cfg.DelegatedKeysOnly
	if err := w.checkDelegated(ctx, keyARN); err != nil {
		var nd *KeyNotDelegatedError
		if errors.As(err, &nd) {
			res.Outcome, res.Reason, res.Changes = OutcomeBlocked, nd.Reason(), nil
			return res, nil
		}
		res.Outcome, res.Changes = OutcomeFailed, nil
		return res, err
	}
	if res.DryRun {
		res.Outcome = OutcomePlanned
		for _, c := range res.Changes {
			audit(ctx, e.logger(), "planned permission change (dry run)", c)
		}
		return res, nil
	}
	if _, err := kmspolicy.EnsurePolicy(ctx, e.KMS, keyARN, nil, grantees); err != nil {
		res.Outcome, res.Changes = OutcomeFailed, nil
		if awserr.IsAccessDenied(err) {
			return res, fmt.Errorf("%w (prune with credentials that may write the key policy)", err)
		}
		return res, err
	}
	for _, c := range res.Changes {
		audit(ctx, e.logger(), "permission changed", c)
	}
	res.Outcome = OutcomeApplied
	return res, nil
}
