package throttling_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/amishare/amishare/internal/testing/faultinject"
	"github.com/amishare/amishare/pkg/throttling"
)

// ec2Client is an EC2 client whose calls reach an endpoint answering every
// DescribeImages with no image, through faults, with the counting installed.
func ec2Client(t *testing.T, faults *faultinject.Transport) *ec2.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><imagesSet/></DescribeImagesResponse>`))
	}))
	t.Cleanup(srv.Close)
	return ec2.New(ec2.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   faults.Client(),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = time.Millisecond
		}),
		APIOptions: []func(*middleware.Stack) error{throttling.APIOption},
	})
}

func TestCounter(t *testing.T) {
	tests := []struct {
		name    string
		rule    faultinject.Rule
		wantErr bool
		want    int
	}{
		{"no fault", faultinject.Rule{Action: "DescribeInstances"}, false, 0},
		{"throttled twice, then answered", faultinject.Rule{Action: "DescribeImages", Times: 2, Kind: faultinject.Throttle}, false, 2},
		{"throttled until the attempts run out", faultinject.Rule{Action: "DescribeImages", Kind: faultinject.Throttle}, true, 5},
		{"server errors are no throttling", faultinject.Rule{Action: "DescribeImages", Times: 2, Kind: faultinject.ServerError}, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := ec2Client(t, faultinject.New(tc.rule))
			var c throttling.Counter
			_, err := client.DescribeImages(throttling.WithCounter(context.Background(), &c), &ec2.DescribeImagesInput{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("DescribeImages: got error %v, want error %v", err, tc.wantErr)
			}
			if got := c.Count(); got != tc.want {
				t.Errorf("throttled attempts counted: got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCounterPerContext: only calls whose context carries a counter are
// counted, each in its own.
func TestCounterPerContext(t *testing.T) {
	client := ec2Client(t, faultinject.New(faultinject.Rule{Action: "DescribeImages", Times: 3, Kind: faultinject.Throttle}))
	if _, err := client.DescribeImages(context.Background(), &ec2.DescribeImagesInput{}); err != nil {
		t.Fatal(err) // 3 throttled attempts, no counter
	}
	var a, b throttling.Counter
	for _, c := range []*throttling.Counter{&a, &b} {
		if _, err := client.DescribeImages(throttling.WithCounter(context.Background(), c), &ec2.DescribeImagesInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if a.Count() != 0 || b.Count() != 0 {
		t.Errorf("counters after calls that were not throttled: got %d and %d, want 0 and 0", a.Count(), b.Count())
	}
	var nilCounter *throttling.Counter
	if nilCounter.Count() != 0 {
		t.Errorf("a nil counter: got %d, want 0", nilCounter.Count())
	}
}
