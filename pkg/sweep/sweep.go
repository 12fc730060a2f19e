// Package sweep re-checks every managed image of the account and region on
// a schedule, with exactly the engine's single-reconcile rules: it repairs
// drift (shares made or removed by hand), shares what a lost event never
// shared, and revokes what amishare shared for images that are gone or no
// longer managed (every amishare tag deleted).
//
// A sweep is polite: every AWS call it makes (retries included) waits for
// one limiter set to the configuration's sweepRate, and a few workers keep
// it close to that rate. Reads are shared through one share.Cache: the
// configuration once, snapshots in batches, each key once, and its own list
// of managed images. What it cannot finish within the invocation's time it
// hands over to the next invocation through an SQS message naming where to
// resume; images are taken in the order of their ids, so none is skipped or
// repeated.
package sweep

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/pacing"
	"github.com/amishare/amishare/pkg/share"
	"github.com/amishare/amishare/pkg/share/rules"
	"github.com/amishare/amishare/pkg/throttling"
)

// QueueAPI is the part of *sqs.Client the sweep uses to hand over.
type QueueAPI interface {
	SendMessage(ctx context.Context, params *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ QueueAPI = (*sqs.Client)(nil)

// Defaults for a Sweeper's zero fields.
const (
	// DefaultWorkers reconcile images at once: enough to keep the limiter
	// busy while calls are in flight, few enough to stay polite.
	DefaultWorkers = 4
	// DefaultMargin is kept free at the end of an invocation: images in
	// flight finish and the continuation is sent.
	DefaultMargin = 30 * time.Second
	// maxListed bounds the results and failures a summary lists (the counts
	// stay exact): the Lambda returns the summary, and a response must stay
	// far below Lambda's payload limit however many images a sweep changes.
	maxListed = 100
	// batch is how many images are prefetched (their snapshots read) at
	// once: as many as one DescribeSnapshots reads when each has one
	// snapshot (the engine names 200 ids per call), so a batch never costs
	// more calls than its snapshots need.
	batch = 200
)

// Phases of a sweep, in order: first what amishare shared for images that
// are gone, then every managed image.
const (
	PhaseGone   = "gone"
	PhaseImages = "images"
)

// Cursor says where a sweep stands: the phase, and the last image id done
// in it (ids are taken in sorted order). It is the continuation message.
type Cursor struct {
	SweepID     string    `json:"sweepId"`
	Started     time.Time `json:"started"`
	Phase       string    `json:"phase"`
	After       string    `json:"after,omitempty"`
	Invocations int       `json:"invocations"` // how many invocations ran before this one
}

// message is the body of a continuation message.
type message struct {
	Sweep *Cursor `json:"amishareSweep"`
}

// ParseContinuation reads a continuation message body. A body that is not
// one is an error: it changes nothing, and SQS's redrive keeps it for a look.
func ParseContinuation(body string) (Cursor, error) {
	var m message
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return Cursor{}, fmt.Errorf("sweep continuation: not valid JSON: %w", err)
	}
	c := m.Sweep
	switch {
	case c == nil:
		return Cursor{}, errors.New("sweep continuation: no amishareSweep object")
	case c.SweepID == "":
		return Cursor{}, errors.New("sweep continuation: no sweepId")
	case c.Phase != PhaseGone && c.Phase != PhaseImages:
		return Cursor{}, fmt.Errorf("sweep continuation: phase %q is not %q or %q", c.Phase, PhaseGone, PhaseImages)
	case c.After != "" && !awsid.IsImageID(c.After):
		return Cursor{}, fmt.Errorf("sweep continuation: after %q is not an AMI id", c.After)
	}
	return *c, nil
}

// Body returns the continuation message for c.
func (c Cursor) Body() string {
	b, _ := json.Marshal(message{Sweep: &c}) // a struct of strings, a time and an int
	return string(b)
}

// Engine is what a sweep needs of the engine (*share.Engine in production).
type Engine interface {
	LoadConfig(ctx context.Context) (*config.Config, error)
	ManagedImages(ctx context.Context) ([]ec2types.Image, error)
	RecordedSnapshots(ctx context.Context, imageID string) ([]ec2types.Snapshot, error)
	ImageStates(ctx context.Context, ids []string) (map[string]ec2types.ImageState, error)
	Prefetch(ctx context.Context, images []ec2types.Image) error
	ReconcileImage(ctx context.Context, img *ec2types.Image, opts share.Options) (share.Result, error)
	Release(ctx context.Context, imageID string, exists bool, snaps []ec2types.Snapshot, opts share.Options) (share.Result, error)
	SyncParameters(ctx context.Context, opts share.Options) (*share.ConsumerReport, error)
}

var _ Engine = (*share.Engine)(nil)

// Sweeper runs sweeps. Build one per process.
type Sweeper struct {
	// Engine returns the engine a sweep runs through, its reads shared
	// through cache (share.Engine.WithCache). Its AWS clients must carry the
	// Pacer's middleware: a sweep whose calls its limiter never sees fails
	// rather than run unpaced.
	Engine func(cache *share.Cache) Engine
	// Queue and QueueURL receive the continuation; without them a sweep
	// that runs out of time fails.
	Queue    QueueAPI
	QueueURL string
	Log      *slog.Logger
	// Pacer is the middleware of the clients the engine uses; when set, a
	// sweep first lets their unpaced calls out of its one-second windows.
	Pacer *pacing.Pacer
	// Lease, when set, makes sure one sweep runs at a time and accepts a
	// continuation only for the sweep in progress; without it a new sweep
	// runs unguarded (the CLI) and a continuation is refused.
	Lease *Lease
	// Workers reconcile images at once; 0 means DefaultWorkers.
	Workers int
	// Margin is left of the invocation's deadline when the sweep stops
	// starting images; 0 means DefaultMargin. Without a deadline (the CLI)
	// a sweep runs to the end.
	Margin time.Duration
}

// RunOptions adjust one run of a sweep.
type RunOptions struct {
	// Resume is where a continuation resumes; nil starts a new sweep.
	Resume *Cursor
	// DryRun plans and logs every change and makes none.
	DryRun bool
	// OnResult, when set, receives each image's result as it is done (the
	// handler logs the decision there). It is called from several goroutines.
	OnResult func(ctx context.Context, res share.Result, err error)
	// OnProgress, when set, is told after each image how many images this
	// invocation has done, of how many it has (gone ones, then managed
	// ones): the CLI's progress bar. It is called from several goroutines.
	OnProgress func(done, total int)
}

// Failure is one image the sweep could not complete.
type Failure struct {
	ImageID string `json:"imageId,omitempty"`
	Error   string `json:"error"`
}

// Summary is what one invocation of a sweep did.
type Summary struct {
	SweepID       string  `json:"sweepId"`
	ResumedAt     *Cursor `json:"resumedAt,omitempty"`
	ManagedImages int     `json:"managedImages"`
	// ImagesChecked counts managed images reconciled (whatever the outcome).
	ImagesChecked int `json:"imagesChecked"`
	// DriftRepaired counts images whose permissions the sweep changed.
	DriftRepaired int `json:"driftRepaired"`
	// GoneImages counts images found gone, or left without any amishare tag,
	// whose recorded snapshots (and launch permissions) were released.
	GoneImages int `json:"goneImages"`
	// SnapshotsCleaned counts snapshots of gone images whose permissions were revoked.
	SnapshotsCleaned int `json:"snapshotsCleaned"`
	// ParametersChanged counts the newest-image parameters (this account's
	// and the receivers') the sweep changed or planned to change: through
	// its images' reconciles and its last step.
	ParametersChanged int `json:"parametersChanged,omitempty"`
	// Errors counts images that failed or are in status error, and failed listings.
	Errors int `json:"errors"`
	// Deferred counts images left for the next invocation: AWS throttled
	// them until their time ran out. They are no error.
	Deferred int       `json:"deferred,omitempty"`
	Failures []Failure `json:"failures,omitempty"`
	// Changed holds the results of images the sweep changed or planned to
	// change, or that failed. Both lists hold at most 100 entries; Omitted
	// counts the entries left out of them (every one is in the log).
	Changed []share.Result `json:"changed,omitempty"`
	Omitted int            `json:"omitted,omitempty"`
	// Calls counts the AWS calls (attempts) the sweep made in this invocation.
	Calls int `json:"calls"`
	// Throttled counts the attempts AWS answered with throttling (the SDK
	// retried them).
	Throttled int     `json:"throttled"`
	Seconds   float64 `json:"seconds"`
	DryRun    bool    `json:"dryRun,omitempty"`
	// Continuation is where the next invocation resumes; nil when the sweep is complete.
	Continuation *Cursor `json:"continuation,omitempty"`
}

// Run sweeps from the start (resume nil) or from a continuation. It
// returns an error only when the sweep as a whole failed: the configuration
// or the image list could not be read, or it ran out of time and could not
// hand over. One image failing is in the summary, not an error.
func (s *Sweeper) Run(ctx context.Context, ro RunOptions) (Summary, error) {
	resume, dryRun := ro.Resume, ro.DryRun
	var done, total atomic.Int64
	report := func(ctx context.Context, res share.Result, err error) {
		if ro.OnResult != nil {
			ro.OnResult(ctx, res, err)
		}
		if ro.OnProgress != nil {
			ro.OnProgress(int(done.Add(1)), int(total.Load()))
		}
	}
	started := time.Now()
	lim := pacing.NewLimiter(config.DefaultSweepRate)
	ctx = pacing.WithLimiter(ctx, lim)
	var throttled throttling.Counter
	ctx = throttling.WithCounter(ctx, &throttled)
	cur := Cursor{SweepID: newSweepID(), Started: started.UTC(), Phase: PhaseGone}
	sum := Summary{DryRun: dryRun}
	if resume != nil {
		cur = *resume
		cur.Invocations++
		sum.ResumedAt = resume
	}
	sum.SweepID = cur.SweepID
	var hold *held
	runCtx := ctx // the lease is released with it: acquire's may be cancelled
	finish := func(err error) (Summary, error) {
		if herr := hold.finish(runCtx, err); herr != nil {
			err = errors.Join(err, herr)
		}
		sum.Calls, sum.Throttled, sum.Seconds = lim.Calls(), throttled.Count(), time.Since(started).Seconds()
		return sum, err
	}

	if err := s.Pacer.Quiet(ctx); err != nil {
		return finish(fmt.Errorf("sweep: %w", err))
	}
	// One sweep at a time: before any other call, the lease.
	ctx, hold, err := s.acquire(ctx, cur, resume)
	if err != nil {
		return finish(err)
	}
	cache := &share.Cache{}
	eng := s.Engine(cache)
	cfg, err := eng.LoadConfig(ctx)
	if err != nil {
		return finish(fmt.Errorf("sweep: reading the configuration: %w", err))
	}
	lim.SetRate(cfg.SweepRate)
	sum.DryRun = dryRun || cfg.DryRun
	images, err := eng.ManagedImages(ctx)
	if err != nil {
		return finish(fmt.Errorf("sweep: %w", err))
	}
	if lim.Calls() == 0 {
		// Listing the images is a call: the limiter would have seen it.
		return finish(errors.New("sweep: the engine's AWS clients are not paced (their middleware lacks pacing.Pacer.APIOption)"))
	}
	sum.ManagedImages = len(images)
	cache.Config, cache.Managed = cfg, images
	opts := share.Options{DryRun: dryRun}
	st := &state{sum: &sum}
	stop, imagesEnd := s.stopAt(ctx)
	// Images started before stop get until imagesEnd, throttling retries
	// included; what is left of the invocation is for the hand-over.
	imagesCtx := ctx
	if !imagesEnd.IsZero() {
		var cancel context.CancelFunc
		imagesCtx, cancel = context.WithDeadline(ctx, imagesEnd)
		defer cancel()
	}

	if cur.Phase == PhaseGone {
		gone, exists, err := goneImages(ctx, eng, images)
		if err != nil {
			st.mu.Lock()
			st.fail("", err)
			st.mu.Unlock()
		}
		ids := after(sortedKeys(gone), cur.After)
		total.Store(int64(len(ids) + len(images)))
		last, stopped := s.each(imagesCtx, ids, stop, nil, func(ctx context.Context, id string) bool {
			res, err := eng.Release(ctx, id, exists[id], gone[id], opts)
			if s.deferred(ctx, st, id, err) {
				return false
			}
			report(ctx, res, err)
			st.cleaned(res, err)
			return true
		})
		if stopped {
			cur.After = cmp.Or(last, cur.After)
			return finish(s.handOver(runCtx, hold, &sum, cur))
		}
		cur.Phase, cur.After = PhaseImages, ""
	}

	byID := map[string]*ec2types.Image{}
	var ids []string
	for i := range images {
		id := aws.ToString(images[i].ImageId)
		byID[id] = &images[i]
		ids = append(ids, id)
	}
	ids = after(ids, cur.After) // images are sorted by id
	total.Store(done.Load() + int64(len(ids)))
	prefetch := func(ctx context.Context, chunk []string) {
		imgs := make([]ec2types.Image, 0, len(chunk))
		for _, id := range chunk {
			imgs = append(imgs, *byID[id])
		}
		if err := eng.Prefetch(ctx, imgs); err != nil {
			s.logger().WarnContext(ctx, "sweep: batched snapshot read failed; images read their own", "error", err.Error())
		}
	}
	last, stopped := s.each(imagesCtx, ids, stop, prefetch, func(ctx context.Context, id string) bool {
		res, err := eng.ReconcileImage(ctx, byID[id], opts)
		if s.deferred(ctx, st, id, err) {
			return false
		}
		report(ctx, res, err)
		st.checked(res, err)
		return true
	})
	if stopped {
		cur.After = cmp.Or(last, cur.After)
		return finish(s.handOver(runCtx, hold, &sum, cur))
	}
	if err := context.Cause(ctx); errors.Is(err, errLeaseLost) {
		return finish(err) // another invocation runs the sweep now
	}
	// Last, every parameter naming the newest image, whatever image's
	// reconcile reached it or not.
	rep, err := eng.SyncParameters(ctx, opts)
	st.mu.Lock()
	if err != nil {
		st.fail("", fmt.Errorf("sweep: the newest-image parameters: %w", err))
	}
	sum.ParametersChanged += parametersChanged(rep)
	st.mu.Unlock()
	return finish(nil)
}

// state gathers the summary from concurrent workers.
type state struct {
	mu  sync.Mutex
	sum *Summary
}

// fail records a failure; st.mu must be held.
func (st *state) fail(imageID string, err error) {
	st.sum.Errors++
	st.addFailure(Failure{ImageID: imageID, Error: err.Error()})
}

func (st *state) addFailure(f Failure) {
	if len(st.sum.Failures) < maxListed {
		st.sum.Failures = append(st.sum.Failures, f)
	} else {
		st.sum.Omitted++
	}
}

func (st *state) checked(res share.Result, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sum.ImagesChecked++
	st.tally(res, err)
	if res.Outcome == share.OutcomeApplied && len(res.Changes) > 0 {
		st.sum.DriftRepaired++
	}
}

func (st *state) cleaned(res share.Result, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.tally(res, err)
	if res.Outcome != share.OutcomeCleaned {
		return
	}
	st.sum.GoneImages++
	st.sum.SnapshotsCleaned += res.SnapshotsChanged()
}

// parametersChanged counts the parameters a report changed (or planned to).
func parametersChanged(rep *share.ConsumerReport) int {
	n := 0
	for _, p := range rep.Changed() {
		if p.Error == "" {
			n++
		}
	}
	return n
}

func (st *state) tally(res share.Result, err error) {
	st.sum.ParametersChanged += parametersChanged(res.Consumers)
	switch {
	case err != nil:
		st.fail(res.ImageID, err)
	case res.Outcome == share.OutcomeFailed || res.Status == rules.StatusError:
		st.sum.Errors++
		st.addFailure(Failure{ImageID: res.ImageID, Error: cmp.Or(res.Message, res.Reason)})
	}
	if len(res.Changes) > 0 || err != nil || res.Status == rules.StatusError {
		if len(st.sum.Changed) < maxListed {
			st.sum.Changed = append(st.sum.Changed, res)
		} else {
			st.sum.Omitted++
		}
	}
}

// stopAt is when the sweep stops starting images, the deadline minus the
// margin, and when the images started must end, the deadline minus a third
// of the margin: the rest is for the hand-over. Both are zero without a
// deadline (the CLI).
func (s *Sweeper) stopAt(ctx context.Context) (stop, imagesEnd time.Time) {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Time{}, time.Time{}
	}
	margin := cmp.Or(s.Margin, DefaultMargin)
	return d.Add(-margin), d.Add(-margin / 3)
}

// deferred reports whether an image is left for the next invocation
// rather than done or failed: its time ran out (ctx ended, or a call would
// have outlasted it; what it read or wrote since is not to be trusted),
// typically because AWS throttled it that long (a burst shares the
// account's EC2 buckets with the sweep), or it ended throttled. It is logged and counted in the summary's Deferred,
// not in Errors.
func (s *Sweeper) deferred(ctx context.Context, st *state, id string, err error) bool {
	if ctx.Err() == nil && !awserr.IsThrottle(err) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	st.mu.Lock()
	st.sum.Deferred++
	st.mu.Unlock()
	reason := context.Cause(ctx)
	if err != nil {
		reason = err
	}
	s.logger().WarnContext(ctx, "sweep: image left for the next invocation", "imageId", id, "error", reason.Error())
	return true
}

// each runs do on ids, in order, by a few workers, prefetching each batch
// first. It stops starting ids once stop has passed, but always starts at
// least one, so that an invocation makes progress unless AWS throttles it
// throughout. do reports whether its id is done; one that is not (deferred)
// is left for the next invocation. Every id started has ended when each
// returns, so the ids done up to the first one not done are a prefix: last
// is the last of that prefix ("" when it is empty), and stopped says the
// prefix is not all of ids. Ids done after the first one not done are done
// again by the next invocation, which changes nothing.
func (s *Sweeper) each(ctx context.Context, ids []string, stop time.Time, prefetch func(context.Context, []string), do func(context.Context, string) bool) (last string, stopped bool) {
	workers := cmp.Or(s.Workers, DefaultWorkers)
	type job struct {
		i  int
		id string
	}
	work := make(chan job)
	done := make([]bool, len(ids))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range work {
				done[j.i] = do(ctx, j.id) // each worker writes its own indexes
			}
		})
	}
	started := 0
	for i, id := range ids {
		if i > 0 && !stop.IsZero() && !time.Now().Before(stop) {
			break
		}
		if prefetch != nil && i%batch == 0 {
			prefetch(ctx, ids[i:min(i+batch, len(ids))])
		}
		work <- job{i, id}
		started++
	}
	close(work)
	wg.Wait()
	prefix := 0
	for prefix < started && done[prefix] {
		prefix++
	}
	if prefix > 0 {
		last = ids[prefix-1]
	}
	return last, prefix < len(ids)
}

// handOver sends the continuation: the next invocation resumes after
// cur.After. The lease names it first, so that its invocation finds it
// handed over.
func (s *Sweeper) handOver(ctx context.Context, hold *held, sum *Summary, cur Cursor) error {
	sum.Continuation = &cur
	if s.Queue == nil || s.QueueURL == "" {
		return fmt.Errorf("sweep: stopped after %s %s (out of time, or images throttled until their time ran out) and no continuation queue is configured", cur.Phase, cur.After)
	}
	if err := hold.handOver(ctx, cur.Body()); err != nil {
		return err
	}
	if _, err := s.Queue.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURL), MessageBody: aws.String(cur.Body())}); err != nil {
		return fmt.Errorf("sweep: sending the continuation (%s after %s): %w", cur.Phase, cur.After, err)
	}
	s.logger().InfoContext(ctx, "sweep continues in the next invocation", "sweepId", cur.SweepID, "phase", cur.Phase, "after", cur.After)
	return nil
}

// goneImages finds the snapshots recorded (tag amishare:image) for images
// that are not managed: gone (deregistered), or existing without any
// amishare tag (exists[id]), whose access amishare revokes. A managed image
// is its own reconcile's business.
func goneImages(ctx context.Context, eng Engine, managed []ec2types.Image) (byImage map[string][]ec2types.Snapshot, exists map[string]bool, err error) {
	recorded, err := eng.RecordedSnapshots(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	byImage = map[string][]ec2types.Snapshot{}
	for _, snap := range recorded {
		// A value that is no image id is no record amishare wrote: the
		// snapshot is not amishare's to touch.
		for _, id := range amitag.RecordImages(tagValue(snap.Tags, amitag.Image)) {
			byImage[id] = append(byImage[id], snap)
		}
	}
	for _, img := range managed {
		if img.State != ec2types.ImageStateDeregistered {
			delete(byImage, aws.ToString(img.ImageId))
		}
	}
	// The rest are gone, or exist without amishare's tags.
	states, err := eng.ImageStates(ctx, sortedKeys(byImage))
	if err != nil {
		return nil, nil, fmt.Errorf("checking which recorded images still exist: %w", err)
	}
	exists = map[string]bool{}
	for id, st := range states {
		exists[id] = st != ec2types.ImageStateDeregistered
	}
	return byImage, exists, nil
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// after returns the ids (sorted) that come after cursor.
func after(ids []string, cursor string) []string {
	if cursor == "" {
		return ids
	}
	i, found := slices.BinarySearch(ids, cursor)
	if found {
		i++
	}
	return ids[i:]
}

func newSweepID() string {
	return rand.Text()[:16]
}

func (s *Sweeper) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
