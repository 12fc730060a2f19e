package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

const (
	img1 = "ami-0123456789abcdef0"
	img2 = "ami-0fedcba9876543210"
	img8 = "ami-1a2b3c4d" // the older, 8-digit form
)

// envelope builds an EventBridge event around a detail given as JSON.
func envelope(source, detailType string, resources []string, detail string) []byte {
	res := "[]"
	if len(resources) > 0 {
		res = `["` + strings.Join(resources, `","`) + `"]`
	}
	return fmt.Appendf(nil, `{"version":"0","id":"id-1","detail-type":%q,"source":%q,"account":"123456789012",`+
		`"time":"2024-05-14T09:27:45Z","region":"us-east-1","resources":%s,"detail":%s}`, detailType, source, res, detail)
}

func amiState(detail string) []byte {
	return envelope("aws.ec2", "EC2 AMI State Change", []string{"arn:aws:ec2:us-east-1::image/" + img1}, detail)
}

func tagChange(resources []string, detail string) []byte {
	return envelope("aws.tag", "Tag Change on Resource", resources, detail)
}

func imageARN(id string) string { return "arn:aws:ec2:us-east-1:123456789012:image/" + id }

func apiCall(detail string) []byte {
	return envelope("aws.ec2", "AWS API Call via CloudTrail", nil, detail)
}

// ctDetail builds a CloudTrail detail; extra is spliced in as more fields.
func ctDetail(eventName, extra string) string {
	d := `{"eventSource":"ec2.amazonaws.com","eventName":"` + eventName + `",` +
		`"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice"}`
	if extra != "" {
		d += "," + extra
	}
	return d + "}"
}

// createTags builds CreateTags/DeleteTags requestParameters.
func tagsParams(resources []string, keys ...string) string {
	items := make([]string, len(resources))
	for i, r := range resources {
		items[i] = `{"resourceId":"` + r + `"}`
	}
	p := `"requestParameters":{"resourcesSet":{"items":[` + strings.Join(items, ",") + `]}`
	if len(keys) > 0 {
		tags := make([]string, len(keys))
		for i, k := range keys {
			tags[i] = `{"key":"` + k + `","value":"v"}`
		}
		p += `,"tagSet":{"items":[` + strings.Join(tags, ",") + `]}`
	}
	return p + "}"
}

// asks is an event's work in a shape tests compare: images to reconcile
// (a failed copy's image among them), images to clean up, a sweep, and the
// continuations to resume.
type asks struct {
	ids, deregistered []string
	sweep             bool
	resume            []string
}

func asksOf(ev Event) asks {
	var a asks
	switch w := ev.Work.(type) {
	case Reconcile:
		a.ids = w.ImageIDs
	case CopyFailed:
		a.ids = []string{w.ImageID}
	case Cleanup:
		a.deregistered = w.ImageIDs
	case Sweep:
		a.sweep = true
	case Resume:
		a.sweep, a.resume = true, w.Bodies
	}
	return a
}

type want struct {
	kind    Kind
	ids     []string
	ignored string // substring of Ignored; "" means not ignored
	err     string // substring of the error; "" means no error
	// deregistered lists the images to clean up; sweep asks for a sweep
	// resuming at each of resume.
	deregistered []string
	sweep        bool
	resume       []string
}

func check(t *testing.T, raw []byte, w want) Event {
	t.Helper()
	got, err := Decode(raw)
	if w.err != "" {
		if err == nil {
			t.Fatalf("Decode: got no error (trigger %+v), want error containing %q", got, w.err)
		}
		if !strings.Contains(err.Error(), w.err) {
			t.Fatalf("Decode error: got %q, want it to contain %q", err, w.err)
		}
		if w.kind != "" && got.Kind != w.kind {
			t.Errorf("Kind on error: got %q, want %q", got.Kind, w.kind)
		}
		return got
	}
	if err != nil {
		t.Fatalf("Decode: got error %v, want none", err)
	}
	if got.Kind != w.kind {
		t.Errorf("Kind: got %q, want %q", got.Kind, w.kind)
	}
	a := asksOf(got)
	if !slices.Equal(a.ids, w.ids) {
		t.Errorf("images to reconcile: got %q, want %q", a.ids, w.ids)
	}
	if !slices.Equal(a.deregistered, w.deregistered) {
		t.Errorf("images to clean up: got %q, want %q", a.deregistered, w.deregistered)
	}
	if a.sweep != w.sweep || !slices.Equal(a.resume, w.resume) {
		t.Errorf("sweep, resume: got %v %q, want %v %q", a.sweep, a.resume, w.sweep, w.resume)
	}
	switch {
	case w.ignored == "" && got.Ignored != "":
		t.Errorf("Ignored: got %q, want empty", got.Ignored)
	case w.ignored != "" && !strings.Contains(got.Ignored, w.ignored):
		t.Errorf("Ignored: got %q, want it to contain %q", got.Ignored, w.ignored)
	}
	if got.Detail == "" {
		t.Errorf("Detail: got empty, want a description")
	}
	return got
}

func TestDecodeAMIState(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want want
	}{
		{"available", amiState(`{"RequestId":"r","ImageId":"` + img1 + `","State":"available","ErrorMessage":""}`),
			want{kind: KindAMIState, ids: []string{img1}}},
		{"available 8-digit id", amiState(`{"ImageId":"` + img8 + `","State":"available"}`),
			want{kind: KindAMIState, ids: []string{img8}}},
		{"pending", amiState(`{"ImageId":"` + img1 + `","State":"pending"}`),
			want{kind: KindAMIState, ignored: `"pending"`}},
		{"failed", amiState(`{"ImageId":"` + img1 + `","State":"failed","ErrorMessage":"boom"}`),
			want{kind: KindAMIState, ids: []string{img1}}},
		{"deregistered", amiState(`{"ImageId":"` + img1 + `","State":"deregistered"}`),
			want{kind: KindAMIState, deregistered: []string{img1}}},
		{"disabled", amiState(`{"ImageId":"` + img1 + `","State":"disabled"}`),
			want{kind: KindAMIState, ignored: `"disabled"`}},
		{"unknown state", amiState(`{"ImageId":"` + img1 + `","State":"transient"}`),
			want{kind: KindAMIState, ignored: `"transient"`}},
		{"state is case sensitive", amiState(`{"ImageId":"` + img1 + `","State":"Available"}`),
			want{kind: KindAMIState, ignored: `"Available"`}},
		{"missing ImageId", amiState(`{"State":"available"}`),
			want{kind: KindAMIState, err: "no ImageId"}},
		{"missing State", amiState(`{"ImageId":"` + img1 + `"}`),
			want{kind: KindAMIState, err: "no State"}},
		// AWS's documentation samples use a placeholder id: nothing to do, not a failure.
		{"placeholder ImageId is ignored", amiState(`{"ImageId":"ami-0123456789example","State":"available"}`),
			want{kind: KindAMIState, ignored: `ImageId "ami-0123456789example" is not an AMI id`}},
		{"invalid ImageId in another state is ignored", amiState(`{"ImageId":"i-0123456789abcdef0","State":"failed"}`),
			want{kind: KindAMIState, ignored: `ImageId "i-0123456789abcdef0" is not an AMI id`}},
		{"ImageId wrong type", amiState(`{"ImageId":42,"State":"available"}`),
			want{kind: KindAMIState, err: "malformed detail"}},
		{"detail not an object", amiState(`"available"`),
			want{kind: KindAMIState, err: "malformed detail"}},
		{"detail null", amiState(`null`),
			want{kind: KindAMIState, err: "no detail"}},
		{"detail missing", []byte(`{"source":"aws.ec2","detail-type":"EC2 AMI State Change","id":"x"}`),
			want{kind: KindAMIState, err: "no detail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.raw, tt.want) })
	}
}

func TestDecodeAMIStateFields(t *testing.T) {
	got := check(t, amiState(`{"ImageId":"`+img1+`","State":"available"}`), want{kind: KindAMIState, ids: []string{img1}})
	if got.ID != "id-1" {
		t.Errorf("ID: got %q, want %q", got.ID, "id-1")
	}
	if got.Source != "aws.ec2" {
		t.Errorf("Source: got %q, want %q", got.Source, "aws.ec2")
	}
	if got.DetailType != "EC2 AMI State Change" {
		t.Errorf("DetailType: got %q, want %q", got.DetailType, "EC2 AMI State Change")
	}
	if wantDetail := "AMI " + img1 + " state available"; got.Detail != wantDetail {
		t.Errorf("Detail: got %q, want %q", got.Detail, wantDetail)
	}
}

func TestDecodeTagChange(t *testing.T) {
	// detail changes (adds or updates) keys: the tags after the change hold them.
	detail := func(service, resourceType string, keys ...string) string {
		tags := []string{`"amishare:accounts":"111122223333"`}
		for _, k := range keys {
			if k != "amishare:accounts" {
				tags = append(tags, `"`+k+`":"v"`)
			}
		}
		return `{"changed-tag-keys":["` + strings.Join(keys, `","`) + `"],"service":"` + service +
			`","resource-type":"` + resourceType + `","version":3,"tags":{` + strings.Join(tags, ",") + `}}`
	}
	// deletion deletes keys: the tags after the change (left) lack them.
	deletion := func(left string, keys ...string) string {
		return `{"changed-tag-keys":["` + strings.Join(keys, `","`) + `"],"service":"ec2","resource-type":"image","version":3,"tags":{` + left + `}}`
	}
	one := []string{imageARN(img1)}
	tests := []struct {
		name string
		raw  []byte
		want want
	}{
		{"accounts changed", tagChange(one, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"accounts and status changed", tagChange(one, detail("ec2", "image", "amishare:status", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"another amishare key", tagChange(one, detail("ec2", "image", "amishare:regions")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"the parameter tag (which parameter the image may feed)", tagChange(one, detail("ec2", "image", "amishare:parameter")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"amishare key among foreign keys", tagChange(one, detail("ec2", "image", "Name", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"several images, repeats dropped, order kept",
			tagChange([]string{imageARN(img2), imageARN(img1), imageARN(img2)}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img2, img1}}},
		{"ARN without account", tagChange([]string{"arn:aws:ec2:us-east-1::image/" + img1}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"other partition", tagChange([]string{"arn:aws-cn:ec2:cn-north-1:123456789012:image/" + img1}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"non-image ARNs skipped",
			tagChange([]string{"arn:aws:ec2:us-east-1:123456789012:snapshot/snap-0123456789abcdef0", imageARN(img1)}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"version as float", tagChange(one, `{"changed-tag-keys":["amishare:accounts"],"service":"ec2","resource-type":"image","version":4.0}`),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"only status keys", tagChange(one, detail("ec2", "image", "amishare:status", "amishare:message")),
			want{kind: KindTagChange, ignored: "only amishare status tags changed"}},
		{"only status key", tagChange(one, detail("ec2", "image", "amishare:status")),
			want{kind: KindTagChange, ignored: "only amishare status tags changed"}},
		{"status and foreign keys", tagChange(one, detail("ec2", "image", "amishare:status", "Name")),
			want{kind: KindTagChange, ignored: "non-amishare"}},
		{"status deleted: the image may have lost every amishare tag", tagChange(one, deletion(`"Name":"x"`, "amishare:status")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"every amishare tag deleted", tagChange(one, deletion("", "amishare:accounts", "amishare:status", "amishare:message")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"message deleted", tagChange(one, deletion(`"amishare:status":"shared"`, "amishare:message")),
			want{kind: KindTagChange, ignored: "only amishare status tags changed"}},
		{"only foreign keys", tagChange(one, detail("ec2", "image", "Name", "Owner")),
			want{kind: KindTagChange, ignored: "no amishare tag changed"}},
		{"prefix is case sensitive", tagChange(one, detail("ec2", "image", "AMIShare:accounts")),
			want{kind: KindTagChange, ignored: "no amishare tag changed"}},
		{"no changed keys", tagChange(one, `{"changed-tag-keys":[],"service":"ec2","resource-type":"image"}`),
			want{kind: KindTagChange, ignored: "no tag keys changed"}},
		{"snapshot", tagChange([]string{"arn:aws:ec2:us-east-1:123456789012:snapshot/snap-0123456789abcdef0"}, detail("ec2", "snapshot", "amishare:accounts")),
			want{kind: KindTagChange, ignored: "not on an ec2 image"}},
		{"other service", tagChange([]string{"arn:aws:s3:::bucket"}, detail("s3", "bucket", "amishare:accounts")),
			want{kind: KindTagChange, ignored: "not on an ec2 image"}},
		{"no resources", tagChange(nil, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ignored: "no image ARN"}},
		{"resources without image ARN", tagChange([]string{"ami-0123456789abcdef0", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, ignored: "no image ARN"}},
		{"instance tagged (the rule does not filter resource-type)", tagChange([]string{"arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"}, detail("ec2", "instance", "amishare:accounts")),
			want{kind: KindTagChange, ignored: "not on an ec2 image"}},
		// Images are told by ARN: an unexpected resource-type does not hide one.
		{"image ARN with another resource-type", tagChange(one, detail("ec2", "ami", "amishare:accounts")),
			want{kind: KindTagChange, ids: []string{img1}}},
		{"invalid image id in ARN", tagChange([]string{imageARN("ami-XYZ")}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, err: `"ami-XYZ"`}},
		{"uppercase hex in ARN", tagChange([]string{imageARN("ami-0123456789ABCDEF0")}, detail("ec2", "image", "amishare:accounts")),
			want{kind: KindTagChange, err: `"ami-0123456789ABCDEF0"`}},
		{"changed keys wrong type", tagChange(one, `{"changed-tag-keys":"amishare:accounts","service":"ec2","resource-type":"image"}`),
			want{kind: KindTagChange, err: "malformed detail"}},
		{"resources wrong type", []byte(`{"source":"aws.tag","detail-type":"Tag Change on Resource","resources":"arn","detail":{}}`),
			want{kind: KindTagChange, err: "event: Tag Change on Resource: malformed envelope"}},
		{"detail null", tagChange(one, `null`),
			want{kind: KindTagChange, err: "no detail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.raw, tt.want) })
	}
}

func TestDecodeAPICall(t *testing.T) {
	imageResp := func(id string) string {
		return `"responseElements":{"requestId":"r-1","imageId":"` + id + `"}`
	}
	tests := []struct {
		name string
		raw  []byte
		want want
	}{
		{"CreateImage", apiCall(ctDetail("CreateImage", `"requestParameters":{"instanceId":"i-0123456789abcdef0"},`+imageResp(img1))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"RegisterImage", apiCall(ctDetail("RegisterImage", imageResp(img1))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"CopyImage", apiCall(ctDetail("CopyImage", `"requestParameters":{"sourceImageId":"`+img2+`","sourceRegion":"eu-west-1"},`+imageResp(img1))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"CreateImage failed", apiCall(ctDetail("CreateImage", `"errorCode":"Client.UnauthorizedOperation","errorMessage":"no","responseElements":null`)),
			want{kind: KindAPICall, ignored: "Client.UnauthorizedOperation"}},
		{"CreateImage without responseElements", apiCall(ctDetail("CreateImage", `"responseElements":null`)),
			want{kind: KindAPICall, err: "no responseElements"}},
		{"CreateImage without imageId", apiCall(ctDetail("CreateImage", `"responseElements":{"requestId":"r"}`)),
			want{kind: KindAPICall, err: "no imageId"}},
		{"CreateImage invalid imageId", apiCall(ctDetail("CreateImage", imageResp("ami-123"))),
			want{kind: KindAPICall, err: `"ami-123"`}},
		{"CreateImage responseElements wrong type", apiCall(ctDetail("CreateImage", `"responseElements":{"imageId":["`+img1+`"]}`)),
			want{kind: KindAPICall, err: "malformed responseElements"}},
		{"CreateTags on image and instance", apiCall(ctDetail("CreateTags", tagsParams([]string{img1, "i-0123456789abcdef0"}, "amishare:accounts"))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"CreateTags on several images", apiCall(ctDetail("CreateTags", tagsParams([]string{img2, img1, img2}, "amishare:accounts"))),
			want{kind: KindAPICall, ids: []string{img2, img1}}},
		{"CreateTags status keys and accounts", apiCall(ctDetail("CreateTags", tagsParams([]string{img1}, "amishare:status", "amishare:accounts"))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"CreateTags only status keys", apiCall(ctDetail("CreateTags", tagsParams([]string{img1}, "amishare:status", "amishare:message"))),
			want{kind: KindAPICall, ignored: "only amishare status tags changed"}},
		{"DeleteTags of the status", apiCall(ctDetail("DeleteTags", tagsParams([]string{img1}, "amishare:status"))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"CreateTags only foreign keys", apiCall(ctDetail("CreateTags", tagsParams([]string{img1}, "Name"))),
			want{kind: KindAPICall, ignored: "no amishare tag changed"}},
		{"CreateTags without tagSet", apiCall(ctDetail("CreateTags", tagsParams([]string{img1}))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"CreateTags on no image", apiCall(ctDetail("CreateTags", tagsParams([]string{"i-0123456789abcdef0", "snap-0123456789abcdef0"}, "amishare:accounts"))),
			want{kind: KindAPICall, ignored: "no image"}},
		{"CreateTags invalid image id", apiCall(ctDetail("CreateTags", tagsParams([]string{"ami-nothex00"}, "amishare:accounts"))),
			want{kind: KindAPICall, err: `"ami-nothex00"`}},
		{"CreateTags failed", apiCall(ctDetail("CreateTags", `"errorCode":"Client.InvalidAMIID.NotFound",`+tagsParams([]string{img1}, "amishare:accounts"))),
			want{kind: KindAPICall, ignored: "Client.InvalidAMIID.NotFound"}},
		{"CreateTags without requestParameters", apiCall(ctDetail("CreateTags", `"requestParameters":null`)),
			want{kind: KindAPICall, err: "no requestParameters"}},
		{"CreateTags resourcesSet wrong type", apiCall(ctDetail("CreateTags", `"requestParameters":{"resourcesSet":["`+img1+`"]}`)),
			want{kind: KindAPICall, err: "malformed requestParameters"}},
		{"DeleteTags of accounts", apiCall(ctDetail("DeleteTags", tagsParams([]string{img1}, "amishare:accounts"))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"DeleteTags of every tag", apiCall(ctDetail("DeleteTags", tagsParams([]string{img1}))),
			want{kind: KindAPICall, ids: []string{img1}}},
		{"DeleteTags of status keys", apiCall(ctDetail("DeleteTags", tagsParams([]string{img1}, "amishare:message"))),
			want{kind: KindAPICall, ignored: "only amishare status tags changed"}},
		{"other eventName", apiCall(ctDetail("DeregisterImage", `"requestParameters":{"imageId":"`+img1+`"}`)),
			want{kind: KindAPICall, ignored: `"DeregisterImage"`}},
		{"other eventName with odd parameters", apiCall(ctDetail("RunInstances", `"requestParameters":{"resourcesSet":42}`)),
			want{kind: KindAPICall, ignored: `"RunInstances"`}},
		{"other eventSource", apiCall(`{"eventSource":"s3.amazonaws.com","eventName":"CreateImage"}`),
			want{kind: KindAPICall, ignored: "s3.amazonaws.com"}},
		{"detail wrong type", apiCall(`[]`),
			want{kind: KindAPICall, err: "malformed detail"}},
		{"detail null", apiCall(`null`),
			want{kind: KindAPICall, err: "no detail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.raw, tt.want) })
	}
}

func TestDecodeAPICallDetail(t *testing.T) {
	got := check(t, apiCall(ctDetail("CreateTags", tagsParams([]string{img1}, "amishare:accounts"))),
		want{kind: KindAPICall, ids: []string{img1}})
	if wantPrefix := "CreateTags by arn:aws:iam::123456789012:user/alice"; !strings.HasPrefix(got.Detail, wantPrefix) {
		t.Errorf("Detail: got %q, want it to start with %q", got.Detail, wantPrefix)
	}
}

func TestDecodeOther(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want want
	}{
		{"instance state change", `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"state":"running"}}`,
			want{kind: KindOther, ignored: "unhandled event"}},
		{"AMI detail-type from another source", `{"source":"my.app","detail-type":"EC2 AMI State Change","detail":{"ImageId":"` + img1 + `","State":"available"}}`,
			want{kind: KindOther, ignored: "unhandled event"}},
		{"tag change from aws.ec2", `{"source":"aws.ec2","detail-type":"Tag Change on Resource","detail":{}}`,
			want{kind: KindOther, ignored: "unhandled event"}},
		{"missing detail-type", `{"source":"aws.ec2","detail":{"ImageId":"` + img1 + `","State":"available"}}`,
			want{kind: KindOther, ignored: "unhandled event"}},
		{"empty object", `{}`,
			want{kind: KindOther, ignored: "not an EventBridge event"}},
		{"null", `null`,
			want{kind: KindOther, ignored: "not an EventBridge event"}},
		{"array", `[1,2]`,
			want{kind: KindOther, ignored: "not an EventBridge event"}},
		{"string", `"hello"`,
			want{kind: KindOther, ignored: "not an EventBridge event"}},
		{"unknown event with bad time", `{"source":"my.app","detail-type":"Thing","time":"yyyy-mm-ddThh:mm:ssZ"}`,
			want{kind: KindOther, ignored: "unhandled event"}},
		{"unknown event with source of wrong type", `{"source":7,"detail-type":"Thing"}`,
			want{kind: KindOther, ignored: "unhandled event"}},
		{"malformed detail of an unknown event is fine", `{"source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","detail":"x"}`,
			want{kind: KindOther, ignored: "unhandled event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, []byte(tt.raw), tt.want) })
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"empty input", ``, "event: not valid JSON"},
		{"truncated", `{"source":"aws.ec2"`, "event: not valid JSON"},
		{"not JSON", `source=aws.ec2`, "event: not valid JSON"},
		{"trailing garbage", `{} {}`, "event: not valid JSON"},
		{"byte order mark", "\xef\xbb\xbf{}", "event: not valid JSON: starts with a UTF-8 byte order mark"},
		{"error names detail-type and id", `{"id":"abc-1","source":"aws.ec2","detail-type":"EC2 AMI State Change","detail":{"State":"available"}}`,
			`event: EC2 AMI State Change "abc-1": detail has no ImageId`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.raw))
			if err == nil {
				t.Fatalf("Decode: got no error (trigger %+v), want error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error: got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestShort(t *testing.T) {
	long := strings.Repeat("é", 150) // 300 bytes, 2 per rune
	got := short(long)
	if !strings.HasSuffix(got, "...") || len(got) > 203 {
		t.Errorf("short: got %d bytes ending %q, want at most 203 ending in ...", len(got), got[len(got)-3:])
	}
	if s := strings.TrimSuffix(got, "..."); !strings.HasPrefix(long, s) || len(s)%2 != 0 {
		t.Errorf("short: got a cut inside a rune (%d bytes kept)", len(s))
	}
	if got := short("abc"); got != "abc" {
		t.Errorf("short(abc): got %q, want %q", got, "abc")
	}
}

// TestUnusedEnvelopeFields: fields amishare does not read never fail an
// event, whatever they hold. AWS's documentation samples carry
// "time": "yyyy-mm-ddThh:mm:ssZ".
func TestUnusedEnvelopeFields(t *testing.T) {
	detail := `{"ImageId":"` + img1 + `","State":"available"}`
	tests := []struct {
		name   string
		fields string
	}{
		{"documentation placeholder time", `"time":"yyyy-mm-ddThh:mm:ssZ"`},
		{"time of another type", `"time":1715678864`},
		{"time null", `"time":null`},
		{"account and region of other types", `"account":12345678901,"region":["us-east-1"]`},
		{"version as a number", `"version":0`},
		{"resources not a list (unused by this shape)", `"resources":"arn:aws:ec2:us-east-1::image/` + img1 + `"`},
		{"unknown extra fields", `"replay-name":"x","extra":{"a":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := `{"id":"id-1","source":"aws.ec2","detail-type":"EC2 AMI State Change",` + tt.fields + `,"detail":` + detail + `}`
			got := check(t, []byte(raw), want{kind: KindAMIState, ids: []string{img1}})
			if got.ID != "id-1" {
				t.Errorf("ID: got %q, want %q", got.ID, "id-1")
			}
		})
	}
}

// TestAWSDocumentationSample decodes the EC2 User Guide's EC2 AMI State
// Change example, verbatim in events/, with its placeholder image id put
// back to a real one: the placeholder time must not matter.
func TestAWSDocumentationSample(t *testing.T) {
	raw, err := os.ReadFile("../../events/aws-doc-ami-available.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"time": "yyyy-mm-ddThh:mm:ssZ"`)) {
		t.Fatal("events/aws-doc-ami-available.json is no longer AWS's sample with the placeholder time")
	}
	check(t, raw, want{kind: KindAMIState, ignored: "is not an AMI id"})
	real := bytes.ReplaceAll(raw, []byte("ami-0123456789example"), []byte(img1))
	got := check(t, real, want{kind: KindAMIState, ids: []string{img1}})
	if got.ID != "example-9f07-51db-246b-d8b8441bcdf0" {
		t.Errorf("ID: got %q, want the sample's", got.ID)
	}
}

func TestDecodeRegionAndState(t *testing.T) {
	tests := []struct {
		name, raw     string
		region, state string
		err           string
	}{
		{"available in eu-west-1", `{"source":"aws.ec2","detail-type":"EC2 AMI State Change","id":"x","region":"eu-west-1","detail":{"ImageId":"` + img1 + `","State":"available"}}`, "eu-west-1", "available", ""},
		{"failed", `{"source":"aws.ec2","detail-type":"EC2 AMI State Change","id":"x","region":"ap-southeast-2","detail":{"ImageId":"` + img1 + `","State":"failed"}}`, "ap-southeast-2", "failed", ""},
		{"no region", `{"source":"aws.ec2","detail-type":"EC2 AMI State Change","id":"x","detail":{"ImageId":"` + img1 + `","State":"available"}}`, "", "available", ""},
		{"bad region", `{"source":"aws.ec2","detail-type":"EC2 AMI State Change","id":"x","region":"../us-east-1","detail":{"ImageId":"` + img1 + `","State":"available"}}`, "", "", "not a region name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.raw))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Decode: got error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			state := "available"
			if _, failed := got.Work.(CopyFailed); failed {
				state = "failed"
			}
			if got.Region != tt.region || state != tt.state {
				t.Errorf("got region %q state %q, want %q %q", got.Region, state, tt.region, tt.state)
			}
		})
	}
}

func TestDecodeSweepTriggers(t *testing.T) {
	const body = `{"amishareSweep":{"sweepId":"s1","phase":"images","after":"ami-0123456789abcdef0"}}`
	sqs := func(records string) []byte { return []byte(`{"Records":[` + records + `]}`) }
	rec := func(source, b string) string {
		q, _ := json.Marshal(b)
		return `{"messageId":"m-1","receiptHandle":"r","body":` + string(q) + `,"eventSource":"` + source + `","awsRegion":"us-east-1"}`
	}
	tests := []struct {
		name string
		raw  []byte
		want want
	}{
		{"scheduled event", []byte(`{"version":"0","id":"e-1","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012",` +
			`"time":"2015-10-08T16:53:06Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/r"],"detail":{}}`),
			want{kind: KindScheduled, sweep: true}},
		{"scheduled detail-type under another source is not ours", []byte(`{"id":"e-1","detail-type":"Scheduled Event","source":"my.app","detail":{}}`),
			want{kind: KindOther, ignored: "unhandled"}},
		{"one continuation", sqs(rec("aws:sqs", body)), want{kind: KindSweepContinuation, sweep: true, resume: []string{body}}},
		{"two continuations", sqs(rec("aws:sqs", body) + "," + rec("aws:sqs", "{}")), want{kind: KindSweepContinuation, sweep: true, resume: []string{body, "{}"}}},
		{"record from another source", sqs(rec("aws:sns", body)), want{kind: KindSweepContinuation, err: `"aws:sns"`}},
		{"empty body", sqs(rec("aws:sqs", "")), want{kind: KindSweepContinuation, err: "empty body"}},
		{"no records", sqs(""), want{kind: KindSweepContinuation, err: "no records"}},
		{"Records not a list", []byte(`{"Records":{}}`), want{kind: KindSweepContinuation, err: "malformed Records"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.raw, tt.want) })
	}
}
