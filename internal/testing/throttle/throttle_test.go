package throttle_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/amishare/amishare/internal/testing/throttle"
	"github.com/amishare/amishare/pkg/awserr"
)

// backend answers every EC2 request with an empty success, every JSON
// request with {}, and counts them.
func backend(t *testing.T, seen *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			io.WriteString(w, `{}`)
			return
		}
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<`+action+`Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>ok</requestId><return>true</return></`+action+`Response>`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func start(t *testing.T, target string, b throttle.Bucket) *throttle.Proxy {
	t.Helper()
	p, err := throttle.Start(target, b, throttle.Mutating)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// clients without retries, so that each call is one request.
func clients(endpoint string) (*ec2.Client, *ssm.Client) {
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	noRetry := func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) }
	return ec2.New(ec2.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint), Retryer: noRetry()}),
		ssm.New(ssm.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint), Retryer: noRetry()})
}

func TestMutating(t *testing.T) {
	for action, want := range map[string]bool{
		"ModifyImageAttribute": true, "CreateTags": true, "ModifySnapshotAttribute": true, "CopyImage": true,
		"DescribeImages": false, "DescribeSnapshotAttribute": false, "GetImageBlockPublicAccessState": false, "ListImagesInRecycleBin": false, "": false,
	} {
		if got := throttle.Mutating(action); got != want {
			t.Errorf("Mutating(%q): got %v, want %v", action, got, want)
		}
	}
}

// TestBucket: a bucket of 3 lets 3 calls of an action through and throttles
// the next as EC2 does; each action has its own bucket; reads and other
// services pass; the bound time counts the calls beyond the bucket.
func TestBucket(t *testing.T) {
	var seen atomic.Int64
	p := start(t, backend(t, &seen), throttle.Bucket{Capacity: 3, Refill: 0.5})
	ec2c, ssmc := clients(p.Endpoint)
	ctx := context.Background()
	modify := func() error {
		_, err := ec2c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String("ami-0123456789abcdef0")})
		return err
	}
	for i := range 3 {
		if err := modify(); err != nil {
			t.Fatalf("call %d: got %v, want it through", i+1, err)
		}
	}
	err := modify()
	if !awserr.IsThrottle(err) || awserr.Code(err) != "RequestLimitExceeded" {
		t.Fatalf("call 4: got %v, want RequestLimitExceeded", err)
	}
	if _, err := ec2c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"ami-0123456789abcdef0"}, Tags: []ec2types.Tag{{Key: aws.String("k")}}}); err != nil {
		t.Errorf("CreateTags, another bucket: got %v, want it through", err)
	}
	for range 5 {
		if _, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{}); err != nil {
			t.Errorf("DescribeImages: got %v, want reads never throttled", err)
		}
		if _, err := ssmc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/p")}); err != nil {
			t.Errorf("SSM GetParameter: got %v, want other services never throttled", err)
		}
	}
	if got := seen.Load(); got != 3+1+10 {
		t.Errorf("requests that reached the emulator: got %d, want 14 (the throttled one never does)", got)
	}
	want := []throttle.Count{{Action: "CreateTags", Passed: 1}, {Action: "ModifyImageAttribute", Passed: 3, Throttled: 1}}
	got := p.Counts()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("counts: got %+v, want %+v", got, want)
	}
	if p.Throttled() != 1 {
		t.Errorf("throttled: got %d, want 1", p.Throttled())
	}
	if got := p.BoundTime(); got != 0 {
		t.Errorf("bound time: got %s, want 0 (every call fit in the buckets)", got)
	}
}

// TestRefill: an empty bucket gains Refill tokens per second, up to its
// capacity; the bound time is what the calls beyond the capacity needed.
func TestRefill(t *testing.T) {
	var seen atomic.Int64
	p := start(t, backend(t, &seen), throttle.Bucket{Capacity: 2, Refill: 20})
	ec2c, _ := clients(p.Endpoint)
	ctx := context.Background()
	modify := func() error {
		_, err := ec2c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String("snap-0123456789abcdef0")})
		return err
	}
	passed := 0
	for passed < 6 {
		if err := modify(); err == nil {
			passed++
		} else if !awserr.IsThrottle(err) {
			t.Fatal(err)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if c := p.Counts(); len(c) != 1 || c[0].Passed != 6 {
		t.Fatalf("counts: got %+v, want 6 passed", c)
	}
	if got, want := p.BoundTime(), 200*time.Millisecond; got != want {
		t.Errorf("bound time: got %s, want (6-2)/20 s = %s", got, want)
	}
	// Idle long enough to refill far beyond the capacity: still 2 tokens
	// (the third call comes a millisecond or so later: 0.02 of a token).
	time.Sleep(300 * time.Millisecond)
	for range 2 {
		if err := modify(); err != nil {
			t.Fatalf("after a rest: got %v, want a full bucket", err)
		}
	}
	if err := modify(); !awserr.IsThrottle(err) {
		t.Errorf("a bucket refilled past its capacity: got %v, want throttling", err)
	}
}
