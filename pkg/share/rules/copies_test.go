package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/amishare/amishare/pkg/amitag"
)

func TestDecideCopies(t *testing.T) {
	const src, home, eu, ap = "ami-0123456789abcdef0", "us-east-1", "eu-west-1", "ap-southeast-2"
	keys := map[string]string{eu: "alias/eu", home: "alias/home"}
	regions := func(rs ...string) amitag.RegionTargets { return amitag.RegionTargets{Regions: rs} }
	live := func(region, id, state, accounts string) FoundCopy {
		return FoundCopy{ImageID: id, Region: region, State: state, Accounts: accounts, HasAccounts: true, Created: "2026-01-0" + id[len(id)-1:]}
	}
	tests := []struct {
		name      string
		in        CopyInput
		steps     []CopyStep // compared on Action, Region, ImageID, KMSKeyID, Accounts, RetryOf, Reencrypt
		copies    map[string]string
		noKey     []string
		pending   []string
		reencrypt bool
	}{
		{name: "no regions, nothing", in: CopyInput{SourceID: src, Home: home, Accounts: "A"}},
		{
			name:  "new copy with the region's key",
			in:    CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(eu), Keys: keys},
			steps: []CopyStep{{Action: CopyActionCopy, Region: eu, KMSKeyID: "alias/eu", Accounts: "A"}},
		},
		{
			name:  "unencrypted, no key: a plain copy",
			in:    CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(ap), Keys: keys},
			steps: []CopyStep{{Action: CopyActionCopy, Region: ap, Accounts: "A"}},
		},
		{
			name:  "encrypted, no key: not copied",
			in:    CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(ap, eu), Keys: keys, Encrypted: true},
			steps: []CopyStep{{Action: CopyActionCopy, Region: eu, KMSKeyID: "alias/eu", Accounts: "A"}},
			noKey: []string{ap},
		},
		{
			name:   "existing copy in step: nothing",
			in:     CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(eu), Keys: keys, Found: map[string][]FoundCopy{eu: {live(eu, "ami-1", "available", "A")}}},
			copies: map[string]string{eu: "ami-1"},
		},
		{
			name:    "pending copy: reported, not duplicated",
			in:      CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(eu), Keys: keys, Found: map[string][]FoundCopy{eu: {live(eu, "ami-1", "pending", "A")}}},
			copies:  map[string]string{eu: "ami-1"},
			pending: []string{eu},
		},
		{
			name:   "accounts changed: the copy's tag follows",
			in:     CopyInput{SourceID: src, Home: home, Accounts: "A B", Regions: regions(eu), Keys: keys, Found: map[string][]FoundCopy{eu: {live(eu, "ami-1", "available", "A")}}},
			steps:  []CopyStep{{Action: CopyActionSetAccounts, Region: eu, ImageID: "ami-1", Accounts: "A B"}},
			copies: map[string]string{eu: "ami-1"},
		},
		{
			name: "region removed: the copy is unshared, not listed",
			in: CopyInput{SourceID: src, Home: home, Accounts: "A", Keys: keys, Recorded: map[string]string{eu: "ami-1"},
				Found: map[string][]FoundCopy{eu: {live(eu, "ami-1", "available", "A")}}},
			steps: []CopyStep{{Action: CopyActionSetAccounts, Region: eu, ImageID: "ami-1", Accounts: ""}},
		},
		{
			name: "region removed, copy already unshared: nothing",
			in: CopyInput{SourceID: src, Home: home, Accounts: "A", Keys: keys, Recorded: map[string]string{eu: "ami-1"},
				Found: map[string][]FoundCopy{eu: {live(eu, "ami-1", "available", "")}}},
		},
		{
			name: "failed copy: copied again, retrying the latest failure",
			in: CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(eu), Keys: keys,
				Found: map[string][]FoundCopy{eu: {live(eu, "ami-2", "failed", "A"), live(eu, "ami-1", "failed", "A")}}},
			steps: []CopyStep{{Action: CopyActionCopy, Region: eu, KMSKeyID: "alias/eu", Accounts: "A", RetryOf: "ami-2"}},
		},
		{
			name: "recorded copy gone: copied again with a new token",
			in: CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: regions(eu), Keys: keys, Recorded: map[string]string{eu: "ami-9"},
				Found: map[string][]FoundCopy{}},
			steps: []CopyStep{{Action: CopyActionCopy, Region: eu, KMSKeyID: "alias/eu", Accounts: "A", RetryOf: "ami-9"}},
		},
		{
			name:      "AWS managed key with a home key: re-encrypted copy at home",
			in:        CopyInput{SourceID: src, Home: home, Accounts: "A", Keys: keys, Encrypted: true, AWSManaged: true},
			steps:     []CopyStep{{Action: CopyActionCopy, Region: home, KMSKeyID: "alias/home", Accounts: "A", Reencrypt: true}},
			reencrypt: true,
		},
		{
			name: "AWS managed key without a home key: no re-encryption",
			in:   CopyInput{SourceID: src, Home: home, Accounts: "A", Keys: map[string]string{eu: "alias/eu"}, Encrypted: true, AWSManaged: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideCopies(tc.in)
			var got []CopyStep
			for _, s := range d.Steps {
				if s.Action == CopyActionCopy {
					// The failed copy replaced; when several failed, all of them.
					key := s.RetryOf
					var failed []string
					for _, f := range tc.in.Found[s.Region] {
						if f.State == "failed" {
							failed = append(failed, f.ImageID)
						}
					}
					if len(failed) > 1 {
						slices.Sort(failed)
						key = strings.Join(failed, " ")
					}
					if !strings.HasPrefix(s.Token, "amishare-") || len(s.Token) > 64 || s.Token != CopyToken(tc.in.SourceID, s.Region, key) {
						t.Errorf("token %q: want CopyToken(source, region, the failed copies replaced)", s.Token)
					}
					if !strings.Contains(s.Name, tc.in.SourceID) {
						t.Errorf("name %q: want it to name the source", s.Name)
					}
				}
				s.Token, s.Name = "", ""
				got = append(got, s)
			}
			if !slices.Equal(got, tc.steps) {
				t.Errorf("steps: got %+v, want %+v", got, tc.steps)
			}
			if tc.copies == nil {
				tc.copies = map[string]string{}
			}
			if len(d.Copies) != len(tc.copies) {
				t.Errorf("copies: got %v, want %v", d.Copies, tc.copies)
			}
			for r, id := range tc.copies {
				if d.Copies[r] != id {
					t.Errorf("copies: got %v, want %v", d.Copies, tc.copies)
				}
			}
			if !slices.Equal(d.NoKey, tc.noKey) || !slices.Equal(d.Pending, tc.pending) || d.Reencrypt != tc.reencrypt {
				t.Errorf("noKey %v pending %v reencrypt %v, want %v %v %v", d.NoKey, d.Pending, d.Reencrypt, tc.noKey, tc.pending, tc.reencrypt)
			}
		})
	}
}

func TestCopyTokenDiffersPerAttempt(t *testing.T) {
	a, b, c := CopyToken("ami-1", "eu-west-1", ""), CopyToken("ami-1", "eu-west-1", "ami-2"), CopyToken("ami-1", "eu-west-2", "")
	if a == b || a == c || b == c {
		t.Errorf("tokens must differ per region and attempt: %s %s %s", a, b, c)
	}
	if a != CopyToken("ami-1", "eu-west-1", "") {
		t.Errorf("token is not deterministic")
	}
}

func TestCopyName(t *testing.T) {
	long := strings.Repeat("n", 200)
	for _, tc := range []struct{ name, want string }{
		{"golden", "golden [copy of us-east-1/ami-1]"},
		{"bad:chars*here", "badcharshere [copy of us-east-1/ami-1]"},
		{long, strings.Repeat("n", 128-len(" [copy of us-east-1/ami-1]")) + " [copy of us-east-1/ami-1]"},
	} {
		if got := copyName(tc.name, "us-east-1", "ami-1", 1); got != tc.want || len(got) > 128 {
			t.Errorf("copyName(%q): got %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := copyName("golden", "us-east-1", "ami-1", 3); got != "golden [copy of us-east-1/ami-1 attempt 3]" {
		t.Errorf("attempt 3: got %q", got)
	}
}

func TestCopiesTag(t *testing.T) {
	v, left := CopiesTag(map[string]string{"eu-west-1": "ami-00000001", "ap-southeast-2": "ami-00000002"}, nil)
	if v != "ap-southeast-2=ami-00000002 eu-west-1=ami-00000001" || left != 0 {
		t.Errorf("got %q %d", v, left)
	}
	// The regions tag's order first, then any other region sorted.
	ordered, _ := CopiesTag(map[string]string{"eu-west-1": "ami-00000001", "ap-southeast-2": "ami-00000002", "us-east-1": "ami-00000003"}, []string{"eu-west-1", "ap-southeast-2", "eu-central-1"})
	if want := "eu-west-1=ami-00000001 ap-southeast-2=ami-00000002 us-east-1=ami-00000003"; ordered != want {
		t.Errorf("ordered: got %q, want %q", ordered, want)
	}
	if got := ParseCopiesTag(v + " junk bad=ami-00000003 eu-west-2=snap-1"); len(got) != 2 || got["eu-west-1"] != "ami-00000001" {
		t.Errorf("ParseCopiesTag: got %v", got)
	}
	many := map[string]string{}
	for _, r := range []string{"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2"} {
		many[r] = "ami-0123456789abcdef0"
	}
	v, left = CopiesTag(many, nil)
	if len(v) > 256 || left == 0 || len(ParseCopiesTag(v))+left != len(many) {
		t.Errorf("overflow: got %d chars, %d left", len(v), left)
	}
}

func TestSummarizeCopies(t *testing.T) {
	tests := []struct {
		name   string
		d      CopyDecision
		status Status
		want   Status
		msg    []string
	}{
		{"nothing to do", CopyDecision{}, StatusShared, StatusShared, nil},
		{"copied", CopyDecision{Listed: true, Copies: map[string]string{"eu-west-1": "ami-1"}}, StatusShared, StatusShared, []string{"copies in eu-west-1"}},
		{"some refused", CopyDecision{Listed: true, Copies: map[string]string{"eu-west-1": "ami-1"}, Refused: []amitag.Refusal{{Token: "xx", Reason: amitag.ReasonNotRegion}}},
			StatusShared, StatusPartial, []string{`refused regions: "xx" (not a region name)`}},
		{"all refused", CopyDecision{Listed: true, Refused: []amitag.Refusal{{Token: "ap-south-1", Reason: amitag.ReasonRegionNotAllowed}}},
			StatusShared, StatusError, []string{`"ap-south-1" (region is not in allowedRegions)`}},
		{"no key", CopyDecision{Listed: true, NoKey: []string{"eu-west-1"}}, StatusUnshared, StatusError, []string{`set copyKeys["eu-west-1"]`}},
		{"re-encrypted", CopyDecision{Listed: true, Reencrypt: true, Home: "us-east-1", Copies: map[string]string{"us-east-1": "ami-7"}},
			StatusUnshared, StatusCopied, []string{"re-encrypted copy ami-7 in us-east-1"}},
		{"retry", CopyDecision{Listed: true, Failed: []FoundCopy{{ImageID: "ami-3", Region: "eu-west-1"}}, Steps: []CopyStep{{Action: CopyActionCopy, Region: "eu-west-1", ImageID: "ami-4"}}},
			StatusShared, StatusShared, []string{"copy ami-3 to eu-west-1 failed, copying again"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := tc.d.Summarize(tc.status, "base", false)
			if got != tc.want {
				t.Errorf("status: got %q (%s), want %q", got, msg, tc.want)
			}
			for _, m := range tc.msg {
				if !strings.Contains(msg, m) {
					t.Errorf("message: got %q, want it to contain %q", msg, m)
				}
			}
			if len([]rune(msg)) > maxMessage {
				t.Errorf("message longer than %d", maxMessage)
			}
		})
	}
}

// TestSummarizeCopiesDryRun: a dry run tells the copies that exist from the
// ones it would make.
func TestSummarizeCopiesDryRun(t *testing.T) {
	d := CopyDecision{Listed: true, Copies: map[string]string{"eu-west-1": "ami-1"},
		Steps: []CopyStep{{Action: CopyActionCopy, Region: "ap-southeast-2"}}}
	_, msg := d.Summarize(StatusShared, "base", true)
	for _, want := range []string{"copies in eu-west-1", "would copy to ap-southeast-2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message: got %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "would copy to eu-west-1") {
		t.Errorf("message: got %q, want eu-west-1 reported as an existing copy", msg)
	}
}

// TestRetryTokenWithFailuresInOneSecond: copies that failed within the same
// second (CreationDate's precision) never make a retry repeat a token.
func TestRetryTokenWithFailuresInOneSecond(t *testing.T) {
	const src, home, eu = "ami-0", "us-east-1", "eu-west-1"
	in := func(failed ...string) CopyInput {
		var found []FoundCopy
		for _, id := range failed {
			found = append(found, FoundCopy{ImageID: id, Region: eu, State: "failed", Accounts: "A", HasAccounts: true, Created: "2024-01-10T10:00:00.000Z"})
		}
		return CopyInput{SourceID: src, Home: home, Accounts: "A", Regions: amitag.RegionTargets{Regions: []string{eu}},
			Keys: map[string]string{eu: "alias/eu"}, Found: map[string][]FoundCopy{eu: found}}
	}
	tokens := map[string]bool{}
	for _, failed := range [][]string{nil, {"ami-b"}, {"ami-b", "ami-a"}} {
		d := DecideCopies(in(failed...))
		if len(d.Steps) != 1 {
			t.Fatalf("%v failed: steps %+v, want one copy", failed, d.Steps)
		}
		if tokens[d.Steps[0].Token] {
			t.Errorf("%v failed: token %s was used by an earlier attempt", failed, d.Steps[0].Token)
		}
		tokens[d.Steps[0].Token] = true
	}
}
