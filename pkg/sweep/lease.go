package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// LeaseAPI is the part of *dynamodb.Client the sweep's lease uses.
type LeaseAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ LeaseAPI = (*dynamodb.Client)(nil)

// Defaults for a Lease's zero fields.
const (
	// DefaultLeaseHold is how long a running sweep holds the lease without
	// renewing it (it renews every third of that): a sweep whose invocation
	// died (a timeout, a crash) frees it that long after.
	DefaultLeaseHold = 2 * time.Minute
	// DefaultLeaseHandOver is how long a sweep that handed over keeps the
	// lease for its continuation: the event source mapping delivers it in
	// seconds, and a failed run hands the lease back for SQS's retry.
	DefaultLeaseHandOver = time.Hour
)

// The lease's one item: its partition key (a string attribute, the table's
// only key) and value. One sweep per table; the stack has one table per
// account and region.
const (
	LeaseKeyAttribute = "scope"
	LeaseKey          = "sweep"
)

// Lease is the record of the sweep in progress, one item in a DynamoDB table
// of the stack, only ever written with a condition, so that one sweep runs
// at a time in the account and region, whatever starts sweeps (the schedule,
// anyone who may invoke the function, a sweep resumed twice) and whichever
// container runs them:
//
//   - a new sweep starts only when no sweep holds the lease, or its hold
//     expired (its invocation died);
//   - a continuation is accepted only when it names the sweep in progress,
//     is the very continuation that sweep handed over (or the one it was
//     running when it failed), and no invocation runs the sweep;
//   - a running invocation renews its hold; handing over releases the hold
//     and names the next continuation; a complete sweep deletes the item.
type Lease struct {
	API   LeaseAPI
	Table string
	// Hold and HandOver tune the lease (tests); 0 means the defaults.
	Hold     time.Duration
	HandOver time.Duration
}

// RefusedError says why a sweep did not start or resume: another sweep is
// in progress, or the continuation is not the one of the sweep in progress.
// It is no failure: no retry would change it.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "sweep refused: " + e.Reason }

// errLeaseLost ends a run whose hold another invocation took over (it held
// it past its expiry without renewing).
var errLeaseLost = errors.New("sweep: the lease was taken over: another invocation runs the sweep")

// The item's attributes.
const (
	attrKey     = LeaseKeyAttribute
	attrSweep   = "sweepId"
	attrNext    = "next"    // the continuation body the sweep resumes from next (or is running)
	attrHolder  = "holder"  // the running invocation's token, "" once handed over
	attrExpires = "expires" // Unix milliseconds
)

// leaseState is the item as read.
type leaseState struct {
	sweepID, next, holder string
	expires               time.Time
}

func (l *Lease) key() map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{attrKey: str(LeaseKey)}
}

func str(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

func millis(t time.Time) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

var names = map[string]string{"#k": attrKey, "#id": attrSweep, "#n": attrNext, "#h": attrHolder, "#e": attrExpires}

// only the names an expression uses: DynamoDB refuses unused ones.
func namesFor(keys ...string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = names[k]
	}
	return out
}

func conditionFailed(err error) bool {
	var ccf *ddbtypes.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// begin takes the lease for a new sweep, run by holder.
func (l *Lease) begin(ctx context.Context, sweepID, holder string, now time.Time) error {
	_, err := l.API.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.Table),
		Item: map[string]ddbtypes.AttributeValue{
			attrKey: str(LeaseKey), attrSweep: str(sweepID), attrNext: str(""), attrHolder: str(holder),
			attrExpires: millis(now.Add(l.hold())),
		},
		ConditionExpression:       aws.String("attribute_not_exists(#k) OR #e < :now"),
		ExpressionAttributeNames:  namesFor("#k", "#e"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":now": millis(now)},
	})
	if conditionFailed(err) {
		st, err := l.read(ctx)
		if err != nil {
			return err
		}
		return &RefusedError{Reason: fmt.Sprintf("sweep %s is in progress (its lease runs until %s)", st.sweepID, st.expires.UTC().Format(time.RFC3339))}
	}
	if err != nil {
		return fmt.Errorf("sweep: taking the lease: %w", err)
	}
	return nil
}

// resume takes the lease for the continuation body of sweep sweepID.
func (l *Lease) resume(ctx context.Context, sweepID, body, holder string, now time.Time) error {
	_, err := l.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       l.key(),
		UpdateExpression:          aws.String("SET #h = :holder, #e = :until"),
		ConditionExpression:       aws.String("#id = :id AND #n = :body AND (#h = :none OR #e < :now)"),
		ExpressionAttributeNames:  namesFor("#id", "#n", "#h", "#e"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":holder": str(holder), ":until": millis(now.Add(l.hold())), ":id": str(sweepID), ":body": str(body), ":none": str(""), ":now": millis(now)},
	})
	if conditionFailed(err) {
		st, err := l.read(ctx)
		if err != nil {
			return err
		}
		switch {
		case st.sweepID == "":
			return &RefusedError{Reason: fmt.Sprintf("a continuation of sweep %s, and no sweep is in progress", sweepID)}
		case st.sweepID != sweepID:
			return &RefusedError{Reason: fmt.Sprintf("a continuation of sweep %s, and the sweep in progress is %s", sweepID, st.sweepID)}
		case st.next != body:
			return &RefusedError{Reason: fmt.Sprintf("not the continuation sweep %s handed over", sweepID)}
		default:
			return &RefusedError{Reason: fmt.Sprintf("sweep %s is running in another invocation (until %s)", sweepID, st.expires.UTC().Format(time.RFC3339))}
		}
	}
	if err != nil {
		return fmt.Errorf("sweep: taking the lease: %w", err)
	}
	return nil
}

// renew extends holder's hold; lost reports that holder no longer holds it.
func (l *Lease) renew(ctx context.Context, holder string, now time.Time) (lost bool, err error) {
	_, err = l.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       l.key(),
		UpdateExpression:          aws.String("SET #e = :until"),
		ConditionExpression:       aws.String("#h = :holder"),
		ExpressionAttributeNames:  namesFor("#h", "#e"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":holder": str(holder), ":until": millis(now.Add(l.hold()))},
	})
	if conditionFailed(err) {
		return true, nil
	}
	return false, err
}

// handOver releases holder's hold and names body as the continuation to
// accept next (also the one it ran, when a resumed run failed: SQS retries
// that message).
func (l *Lease) handOver(ctx context.Context, holder, body string, now time.Time) error {
	_, err := l.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       l.key(),
		UpdateExpression:          aws.String("SET #h = :none, #n = :body, #e = :until"),
		ConditionExpression:       aws.String("#h = :holder"),
		ExpressionAttributeNames:  namesFor("#h", "#n", "#e"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":holder": str(holder), ":none": str(""), ":body": str(body), ":until": millis(now.Add(cmp.Or(l.HandOver, DefaultLeaseHandOver)))},
	})
	if conditionFailed(err) {
		return errLeaseLost
	}
	if err != nil {
		return fmt.Errorf("sweep: handing the lease over: %w", err)
	}
	return nil
}

// end deletes holder's lease: the sweep is complete, or it failed before it
// could hand over (the scheduled event's retry starts it again).
func (l *Lease) end(ctx context.Context, holder string) error {
	_, err := l.API.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       l.key(),
		ConditionExpression:       aws.String("#h = :holder"),
		ExpressionAttributeNames:  namesFor("#h"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":holder": str(holder)},
	})
	if conditionFailed(err) {
		return errLeaseLost
	}
	if err != nil {
		return fmt.Errorf("sweep: ending the lease: %w", err)
	}
	return nil
}

// undo takes back a hand-over to handed whose message could not be sent:
// the lease names resumed again (the continuation the run resumed from,
// which SQS retries), or, for a new sweep (resumed ""), is deleted. Nothing
// changes if the lease moved on meanwhile.
func (l *Lease) undo(ctx context.Context, sweepID, handed, resumed string, now time.Time) error {
	cond := aws.String("#id = :id AND #h = :none AND #n = :handed")
	vals := map[string]ddbtypes.AttributeValue{":id": str(sweepID), ":none": str(""), ":handed": str(handed)}
	var err error
	if resumed == "" {
		_, err = l.API.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(l.Table), Key: l.key(), ConditionExpression: cond,
			ExpressionAttributeNames: namesFor("#id", "#h", "#n"), ExpressionAttributeValues: vals,
		})
	} else {
		vals[":resumed"], vals[":until"] = str(resumed), millis(now.Add(cmp.Or(l.HandOver, DefaultLeaseHandOver)))
		_, err = l.API.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(l.Table), Key: l.key(), ConditionExpression: cond,
			UpdateExpression:         aws.String("SET #n = :resumed, #e = :until"),
			ExpressionAttributeNames: namesFor("#id", "#h", "#n", "#e"), ExpressionAttributeValues: vals,
		})
	}
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("sweep: taking the hand-over back: %w", err)
	}
	return nil
}

// read returns the item (zero when there is none).
func (l *Lease) read(ctx context.Context) (leaseState, error) {
	out, err := l.API.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.Table), Key: l.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return leaseState{}, fmt.Errorf("sweep: reading the lease: %w", err)
	}
	get := func(name string) string {
		if v, ok := out.Item[name].(*ddbtypes.AttributeValueMemberS); ok {
			return v.Value
		}
		if v, ok := out.Item[name].(*ddbtypes.AttributeValueMemberN); ok {
			return v.Value
		}
		return ""
	}
	st := leaseState{sweepID: get(attrSweep), next: get(attrNext), holder: get(attrHolder)}
	if ms, err := strconv.ParseInt(get(attrExpires), 10, 64); err == nil {
		st.expires = time.UnixMilli(ms)
	}
	return st, nil
}

func (l *Lease) hold() time.Duration { return cmp.Or(l.Hold, DefaultLeaseHold) }

// held is one run's hold on the lease; nil when the Sweeper has no Lease.
type held struct {
	lease   *Lease
	sweepID string
	holder  string
	resumed string // the continuation body the run resumed from; "" for a new sweep
	handed  string // the continuation body it handed over; "" until it does
	stop    func() // ends the renewals
}

// acquire takes the lease for a new sweep (resume nil) or for the
// continuation resume, and renews it while ctx lasts; the returned context
// is cancelled if another invocation takes the lease over. Without a Lease
// a new sweep runs unguarded (the CLI), and a continuation is refused: no
// sweep is known to be in progress.
func (s *Sweeper) acquire(ctx context.Context, cur Cursor, resume *Cursor) (context.Context, *held, error) {
	if s.Lease == nil {
		if resume != nil {
			return ctx, nil, &RefusedError{Reason: fmt.Sprintf("a continuation of sweep %s, and no sweep lease is configured to say which sweep is in progress", resume.SweepID)}
		}
		return ctx, nil, nil
	}
	l := s.Lease
	h := &held{lease: l, sweepID: cur.SweepID, holder: newSweepID()}
	var err error
	if resume == nil {
		err = l.begin(ctx, cur.SweepID, h.holder, time.Now())
	} else {
		h.resumed = resume.Body()
		err = l.resume(ctx, resume.SweepID, h.resumed, h.holder, time.Now())
	}
	if err != nil {
		return ctx, nil, err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(l.hold() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				// A failed renewal is tried again at the next tick; only
				// losing the lease ends the run.
				if lost, _ := l.renew(runCtx, h.holder, time.Now()); lost {
					cancel(errLeaseLost)
					return
				}
			}
		}
	}()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			close(done)
			<-stopped
			cancel(nil)
		})
	}
	return runCtx, h, nil
}

// handOver hands the lease over to the continuation body, before it is sent.
func (h *held) handOver(ctx context.Context, body string) error {
	if h == nil {
		return nil
	}
	h.stop()
	if err := h.lease.handOver(ctx, h.holder, body, time.Now()); err != nil {
		return err
	}
	h.handed = body
	return nil
}

// finish releases the lease as the run ended: deleted when the sweep is
// complete or a new sweep failed (the scheduled event's retry starts it
// again), handed back with the continuation it ran when a resumed run failed
// (SQS's retry of that message is then accepted); a hand-over whose message
// could not be sent is taken back. ctx must be the run's own, not the one
// acquire returned (which may be cancelled).
func (h *held) finish(ctx context.Context, runErr error) error {
	if h == nil {
		return nil
	}
	h.stop()
	switch {
	case h.handed != "" && runErr == nil:
		return nil // the continuation has it
	case h.handed != "":
		return h.lease.undo(ctx, h.sweepID, h.handed, h.resumed, time.Now())
	case runErr == nil || h.resumed == "":
		return h.lease.end(ctx, h.holder)
	default:
		return h.lease.handOver(ctx, h.holder, h.resumed, time.Now())
	}
}
