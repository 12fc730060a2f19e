package awsid

import "testing"

func TestIsImageID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"ami-0123456789abcdef0", true},
		{"ami-0123abcd", true},
		{"ami-00000000", true},
		{"ami-", false},
		{"ami-0123456", false},            // 7
		{"ami-012345678", false},          // 9
		{"ami-0123456789abcdef", false},   // 16
		{"ami-0123456789abcdef01", false}, // 18
		{"ami-0123456789abcdeg0", false},
		{"ami-0123456789ABCDEF0", false},
		{"AMI-0123456789abcdef0", false},
		{"snap-0123456789abcdef0", false},
		{" ami-0123456789abcdef0", false},
		{"ami-0123456789abcdef0 ", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := IsImageID(tt.id); got != tt.want {
				t.Errorf("IsImageID(%q): got %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestIsRegion(t *testing.T) {
	for _, r := range []string{"us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1", "il-central-1", "mx-central-1"} {
		if !IsRegion(r) {
			t.Errorf("IsRegion(%q) = false, want true", r)
		}
	}
	for _, r := range []string{"", "us-east", "useast1", "US-EAST-1", "us-east-1a", "us-east-1 ", "x-y-1", "us-east-123"} {
		if IsRegion(r) {
			t.Errorf("IsRegion(%q) = true, want false", r)
		}
	}
}
