package share

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/receiver"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The other side of the share: what the accounts an image is shared with
// see. After an image's share is applied (reconcile), or revoked (release,
// cleanup), the consumer phase keeps, in this account and in each receiver
// (an account that runs the receiver stack), the parameters naming the
// newest image, and mirrors the configured tags onto the image in the
// receivers it is shared with by account id. A receiver that cannot be
// reached never blocks anything: the image's message names it and the next
// reconcile tries again.

// ReceiverOpener opens a session in a receiver (*receiver.Sessions in production).
type ReceiverOpener interface {
	Open(ctx context.Context, account, role, region, session string) (*receiver.Clients, error)
}

var _ ReceiverOpener = (*receiver.Sessions)(nil)

// ConsumerReport is what the consumer phase did for one image, or in a dry
// run would do.
type ConsumerReport struct {
	Parameters  []ParameterResult `json:"parameters,omitempty"`
	Tags        []TagResult       `json:"tags,omitempty"`
	Grants      []GrantResult     `json:"grants,omitempty"`
	Unreachable []Unreachable     `json:"unreachable,omitempty"`
	// Notes are appended to the image's amishare:message: what is left for
	// a later reconcile.
	Notes []string `json:"notes,omitempty"`
}

// ParameterResult is one parameter changed (or planned).
type ParameterResult struct {
	rules.ParameterChange
	// Pending: SSM accepted the write but the parameter does not name the
	// image yet (aws:ec2:image values are validated asynchronously).
	Pending bool   `json:"pending,omitempty"`
	Error   string `json:"error,omitempty"`
}

// TagResult is one receiver's mirrored tags changed (or planned).
type TagResult struct {
	Account string            `json:"account"`
	Set     map[string]string `json:"set,omitempty"`
	Deleted []string          `json:"deleted,omitempty"`
	Error   string            `json:"error,omitempty"`
}

// Unreachable is a receiver amishare could not act in.
type Unreachable struct {
	Account string `json:"account"`
	Error   string `json:"error"`
}

// Rollbacks counts the parameters that fell back to an older image.
func (r *ConsumerReport) Rollbacks() int {
	n := 0
	for _, p := range r.each() {
		if p.Rollback && p.Error == "" {
			n++
		}
	}
	return n
}

// PendingParameters counts the parameters written that SSM has not taken yet.
func (r *ConsumerReport) PendingParameters() int {
	n := 0
	for _, p := range r.each() {
		if p.Pending {
			n++
		}
	}
	return n
}

// Changed returns the parameters changed, planned, or that failed (none for a nil report).
func (r *ConsumerReport) Changed() []ParameterResult { return r.each() }

func (r *ConsumerReport) each() []ParameterResult {
	if r == nil {
		return nil
	}
	return r.Parameters
}

func (r *ConsumerReport) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// empty reports whether the phase found nothing to do or say.
func (r *ConsumerReport) empty() bool {
	return r == nil || len(r.Parameters)+len(r.Tags)+len(r.Grants)+len(r.Unreachable)+len(r.Notes) == 0
}

// consumerImage is the image whose change the consumer phase follows.
type consumerImage struct {
	ID, Name string
	// Owner is the account that owns the image (this one).
	Owner string
	// Tags are the image's tags; nil when it is gone.
	Tags map[string]string
	// Shared are the accounts it is shared with by account id once its plan
	// is applied (nil when gone, released or blocked from sharing).
	Shared []string
	// Keys are its keys amishare may write, as its plan leaves them.
	Keys []keyAfter
}

// view replaces, in the images the rules decide from, what was listed of
// the image itself by what its plan leaves: a gone image feeds nothing,
// and it is shared with exactly Shared.
func (ci consumerImage) view(images []rules.ParameterImage) []rules.ParameterImage {
	out := make([]rules.ParameterImage, 0, len(images))
	for _, img := range images {
		if img.ImageID == ci.ID {
			if ci.Tags == nil {
				continue
			}
			img.Accounts = ci.Shared
		}
		out = append(out, img)
	}
	return out
}

// receiverView is one receiver as the consumer phase sees it.
type receiverView struct {
	account string
	clients *receiver.Clients
	// current are its parameters' values (by name) when parameters are declared.
	current map[string]string
	err     error
}

// consumers is the consumer phase of one image. It changes nothing in a
// dry run (it still reads, in this account and the receivers). Only a
// failure to read or write this account's parameters that a retry may fix
// is an error; everything else is in the report.
func (e *Engine) consumers(ctx context.Context, cfg *config.Config, ci consumerImage, dryRun bool) (*ConsumerReport, error) {
	if e.SSM == nil || !cfg.Consumers() && !hasAutoScaling(ci.Keys) {
		return nil, nil
	}
	rep := &ConsumerReport{}
	names := slices.Sorted(maps.Keys(cfg.Parameters))
	set := &receiverSet{e: e, cfg: cfg, ci: ci, names: names, rep: rep}
	if t := amitag.ResolveAccounts(ci.Tags[amitag.Accounts], cfg); len(cfg.Receivers) > 0 && len(t.Organizations)+len(t.OrganizationalUnits) > 0 {
		e.logger().InfoContext(ctx, "organizations and OUs do not feed receivers", "imageId", ci.ID,
			"organizations", slices.Concat(t.Organizations, t.OrganizationalUnits),
			"reason", "amishare cannot tell which accounts they hold: only receivers named by account id get parameters, mirrored tags and Auto Scaling grants")
	}
	tag := ci.Tags[amitag.Parameter]
	var affected []string
	owner := map[string]string{}
	if len(names) > 0 {
		var err error
		if owner, err = e.read().ownerParameters(ctx, e.SSM, names); err != nil {
			if awserr.IsTransient(err) {
				return rep, err
			}
			e.logger().ErrorContext(ctx, "parameters not read", "imageId", ci.ID, "error", err.Error())
			rep.note("parameters not read (%s), retried later", short(err))
			return rep, nil
		}
		affected = rules.Affected(cfg, tag, ci.Name, ci.ID, owner)
	}
	views := e.receiverViews(ctx, set)
	for _, v := range views {
		affected = union(affected, rules.Affected(cfg, tag, ci.Name, ci.ID, v.current))
	}
	if len(affected) > 0 {
		images, err := e.read().parameterImages(ctx, cfg, affected)
		if err != nil {
			return rep, err
		}
		images = ci.view(images)
		for _, name := range affected {
			if err := e.parameter(ctx, cfg, rep, ci, e.SSM, "", name, owner[name], images, dryRun); err != nil {
				return rep, err
			}
			for _, v := range views {
				// A receiver's failures are in the report: never an error.
				_ = e.parameter(ctx, cfg, rep, ci, v.clients.SSM, v.account, name, v.current[name], images, dryRun)
			}
		}
	}
	for _, v := range views {
		if slices.Contains(ci.Shared, v.account) && len(cfg.MirrorTags) > 0 && ci.Tags != nil {
			e.mirror(ctx, cfg, rep, ci, v, dryRun)
		}
	}
	e.autoScaling(ctx, cfg, rep, ci, set, dryRun)
	return rep, nil
}

// parameter decides one parameter of one account (account "" is this one)
// and, unless dryRun, writes it. In a sweep, whose reads are minutes old,
// a parameter that must change is read again, with the images that may
// feed it, and decided afresh before it is written.
func (e *Engine) parameter(ctx context.Context, cfg *config.Config, rep *ConsumerReport, ci consumerImage, api SSMAPI, account, name, current string, images []rules.ParameterImage, dryRun bool) error {
	c, change := rules.DecideParameter(cfg, images, name, account, current)
	if !change {
		return nil
	}
	if e.cache != nil && !dryRun {
		var err error
		if current, err = parameterValue(ctx, api, name); err == nil {
			images, err = e.fresh().read().parameterImages(ctx, cfg, []string{name})
		}
		if err != nil {
			return e.parameterFailed(ctx, rep, c, err)
		}
		if c, change = rules.DecideParameter(cfg, ci.view(images), name, account, current); !change {
			return nil
		}
	}
	pr := ParameterResult{ParameterChange: c}
	log := e.logger().With("imageId", ci.ID, "parameter", name, "account", accountName(account), "from", c.From, "to", c.To, "action", string(c.Action))
	if dryRun {
		rep.Parameters = append(rep.Parameters, pr)
		// A dry-run sweep goes on as if it were written, as a sweep does:
		// its later steps neither plan it again nor count it twice.
		e.cache.putParameter(account, name, c.To)
		log.InfoContext(ctx, "planned parameter change (dry run)")
		return nil
	}
	var err error
	switch c.Action {
	case rules.ParameterPut:
		pattern, _ := cfg.NamePattern(name)
		pr.Pending, err = putParameter(ctx, api, c, pattern)
	case rules.ParameterDelete:
		err = deleteParameter(ctx, api, name)
	}
	if err != nil {
		return e.parameterFailed(ctx, rep, c, err)
	}
	rep.Parameters = append(rep.Parameters, pr)
	e.cache.putParameter(account, name, c.To)
	switch {
	case pr.Pending:
		log.WarnContext(ctx, "parameter not taken yet", "reason", "SSM validates aws:ec2:image values asynchronously; written again at the next reconcile")
		rep.note("parameter %s%s not taken yet, retried later", name, inAccount(account))
	case c.Rollback:
		log.WarnContext(ctx, "parameter rolled back", "reason", "the image it named no longer feeds it")
	default:
		log.InfoContext(ctx, "parameter changed")
	}
	return nil
}

// parameterFailed records a parameter that could not be read or written: an
// error for this account's when a retry may fix it, a note otherwise.
func (e *Engine) parameterFailed(ctx context.Context, rep *ConsumerReport, c rules.ParameterChange, err error) error {
	if c.Account == "" && awserr.IsTransient(err) {
		return err
	}
	rep.Parameters = append(rep.Parameters, ParameterResult{ParameterChange: c, Error: err.Error()})
	e.logger().ErrorContext(ctx, "parameter not written", "parameter", c.Name, "account", accountName(c.Account), "error", err.Error())
	rep.note("parameter %s%s not written (%s), retried later", c.Name, inAccount(c.Account), short(err))
	return nil
}

// receiverSet opens the receivers one consumer phase reaches, each once:
// one that cannot be reached is reported once, and left out.
type receiverSet struct {
	e     *Engine
	cfg   *config.Config
	ci    consumerImage
	names []string
	rep   *ConsumerReport
	views map[string]*receiverView
}

// get returns the receiver account, opened (and its parameters read) on
// first use.
func (s *receiverSet) get(ctx context.Context, account string) *receiverView {
	if v, ok := s.views[account]; ok {
		return v
	}
	if s.views == nil {
		s.views = map[string]*receiverView{}
	}
	v := &receiverView{account: account, err: fmt.Errorf("no receiver sessions")}
	if s.e.Receivers != nil {
		v = s.e.receiver(ctx, s.cfg, account, s.ci.ID, s.names)
	}
	s.views[account] = v
	if v.err != nil {
		s.rep.Unreachable = append(s.rep.Unreachable, Unreachable{Account: account, Error: v.err.Error()})
		s.e.logger().WarnContext(ctx, "receiver unreachable", "imageId", s.ci.ID, "account", account, "role", s.cfg.ReceiverRole, "error", v.err.Error())
		s.rep.note("receiver %s unreachable (%s), retried later", account, short(v.err))
	}
	return v
}

// receiverViews returns the receivers that have something to hold for the
// set's image (its parameters, when any is declared; its mirrored tags,
// when it is shared with them), reachable ones only.
func (e *Engine) receiverViews(ctx context.Context, set *receiverSet) []*receiverView {
	if e.Receivers == nil {
		return nil
	}
	var views []*receiverView
	for _, account := range set.cfg.Receivers {
		mirror := len(set.cfg.MirrorTags) > 0 && slices.Contains(set.ci.Shared, account)
		if len(set.names) == 0 && !mirror {
			continue
		}
		if v := set.get(ctx, account); v.err == nil {
			views = append(views, v)
		}
	}
	return views
}

// receiver opens a session in account for work on imageID and reads its
// parameters; a sweep opens one session per receiver ("amishare-sweep") and
// keeps it, with what it read, for the whole sweep.
func (e *Engine) receiver(ctx context.Context, cfg *config.Config, account, imageID string, names []string) *receiverView {
	open := func() *receiverView {
		session := receiver.SessionName(imageID)
		if e.cache != nil {
			session = receiver.SessionName("sweep")
		}
		v := &receiverView{account: account}
		v.clients, v.err = e.Receivers.Open(ctx, account, cfg.ReceiverRole, e.Region, session)
		if v.err == nil && len(names) > 0 {
			v.current, v.err = parameterValues(ctx, v.clients.SSM, names)
		}
		return v
	}
	return e.cache.receiver(account, e.Region, open)
}

// mirror sets, on the image in the receiver v, the configured tags the
// owner's image holds, and deletes those it does not. In a sweep, the
// owner's image is read again before anything is written.
func (e *Engine) mirror(ctx context.Context, cfg *config.Config, rep *ConsumerReport, ci consumerImage, v *receiverView, dryRun bool) {
	tr := TagResult{Account: v.account}
	fail := func(err error) {
		tr.Error = err.Error()
		rep.Tags = append(rep.Tags, tr)
		e.logger().WarnContext(ctx, "receiver tags not mirrored", "imageId", ci.ID, "account", v.account, "error", err.Error())
		rep.note("tags of %s in %s not mirrored (%s), retried later", ci.ID, v.account, short(err))
	}
	theirs, err := receiverImageTags(ctx, v.clients, ci.ID)
	if dryRun && errors.Is(err, errNotVisible) {
		// Not shared with the receiver yet: the plan shares it, and the
		// receiver has none of its tags so far.
		theirs, err = map[string]string{}, nil
	}
	if err != nil {
		fail(err)
		return
	}
	owner := ci.Tags
	set, del := rules.MirrorTags(cfg.MirrorTags, owner, theirs)
	if len(set)+len(del) > 0 && e.cache != nil && !dryRun {
		img, err := e.read().image(ctx, "", ci.ID)
		if err != nil || img == nil {
			return // gone meanwhile, or unreadable: the next reconcile decides
		}
		set, del = rules.MirrorTags(cfg.MirrorTags, tagMap(img.Tags), theirs)
	}
	if len(set)+len(del) == 0 {
		return
	}
	tr.Set, tr.Deleted = set, del
	log := e.logger().With("imageId", ci.ID, "account", v.account, "set", set, "deleted", del)
	if dryRun {
		rep.Tags = append(rep.Tags, tr)
		log.InfoContext(ctx, "planned receiver tags (dry run)")
		return
	}
	if err := writeReceiverTags(ctx, v.clients, ci.ID, set, del); err != nil {
		fail(err)
		return
	}
	rep.Tags = append(rep.Tags, tr)
	log.InfoContext(ctx, "receiver tags mirrored")
}

// SyncParameters is a sweep's last step: every declared parameter, in this
// account and in each receiver, decided from what the sweep read and, where
// it must change, read again and written as a reconcile writes it. It
// repairs what no image's reconcile reached: a parameter naming an image
// deregistered while no event arrived, one SSM had not taken.
func (e *Engine) SyncParameters(ctx context.Context, opts Options) (*ConsumerReport, error) {
	var res Result
	cfg, invalid, err := e.begin(ctx, &res, opts)
	if err != nil || invalid != nil || len(cfg.Parameters) == 0 || e.SSM == nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(cfg.Parameters))
	rep := &ConsumerReport{}
	owner, err := e.read().ownerParameters(ctx, e.SSM, names)
	if err != nil {
		return rep, err
	}
	views := e.receiverViews(ctx, &receiverSet{e: e, cfg: cfg, names: names, rep: rep})
	images, err := e.read().parameterImages(ctx, cfg, names)
	if err != nil {
		return rep, err
	}
	for _, name := range names {
		if err := e.parameter(ctx, cfg, rep, consumerImage{}, e.SSM, "", name, owner[name], images, res.DryRun); err != nil {
			return rep, err
		}
		for _, v := range views {
			_ = e.parameter(ctx, cfg, rep, consumerImage{}, v.clients.SSM, v.account, name, v.current[name], images, res.DryRun)
		}
	}
	return rep, nil
}

// consumersOf runs the consumer phase of a managed image whose plan is
// applied (or, in a dry run, planned), and records it in res: the image is
// shared by account id with what its launch permissions hold once the plan
// is applied.
func (e *Engine) consumersOf(ctx context.Context, cfg *config.Config, img *ec2types.Image, tags map[string]string, st rules.State, p rules.Plan, res *Result) error {
	shared := slices.DeleteFunc(slices.Clone(st.Image.Accounts), func(a string) bool { return slices.Contains(p.Image.Remove, a) })
	for _, t := range p.Image.Add {
		if rules.KindOf(t) == rules.KindAccount && !slices.Contains(shared, t) {
			shared = append(shared, t)
		}
	}
	slices.Sort(shared)
	ci := consumerImage{ID: aws.ToString(img.ImageId), Name: aws.ToString(img.Name), Owner: st.Owner, Tags: tags, Shared: shared, Keys: keysAfter(st, p, cfg.KMS)}
	rep, err := e.consumers(ctx, cfg, ci, res.DryRun)
	if !rep.empty() {
		res.Consumers = rep
	}
	return err
}

// forget is the consumer phase of an image that is gone or no longer
// managed: it feeds no parameter any more, and its keys (as its release
// leaves them) keep Auto Scaling grants only for the receivers they still
// let in. Receivers are reached only when withReceivers: an image shared by
// account id has its snapshots recorded, so one without a record was never
// in a receiver's parameters.
func (e *Engine) forget(ctx context.Context, cfg *config.Config, imageID string, withReceivers bool, keys []keyAfter, res *Result) error {
	if !withReceivers {
		cfg, keys = cfg.WithoutReceivers(), nil
	}
	rep, err := e.consumers(ctx, cfg, consumerImage{ID: imageID, Keys: keys}, res.DryRun)
	if !rep.empty() {
		res.Consumers = rep
	}
	return err
}

// notes are the report's notes (none for a nil report).
func (r *ConsumerReport) notes() []string {
	if r == nil {
		return nil
	}
	return r.Notes
}

// withNotes appends the consumer phase's notes to a status message.
func withNotes(msg string, rep *ConsumerReport) string {
	if rep == nil || len(rep.Notes) == 0 {
		return msg
	}
	notes := slices.Clone(rep.Notes)
	if msg != "" {
		notes = append([]string{msg}, notes...)
	}
	return rules.TrimMessage(strings.Join(notes, "; "))
}

// short is an error as the 256 characters of amishare:message can hold
// it: its AWS error code when it has one.
func short(err error) string {
	if code := awserr.Code(err); code != "" {
		return code
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

// accountName names the account of a parameter in the log: "self" for this one.
func accountName(account string) string {
	if account == "" {
		return "self"
	}
	return account
}

// inAccount names a receiver in a note: "" for this account.
func inAccount(account string) string {
	if account == "" {
		return ""
	}
	return " in " + account
}
