package glob

import "testing"

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"golden-al2023-*", "golden-al2023-2024.05.01", true},
		{"golden-al2023-*", "golden-al2022-1", false},
		{"o-a/*/ou-x/*", "o-a/r-1/ou-p/ou-x/ou-c/", true},
		{"o-a/*/ou-x/*", "o-a/r-1/ou-xy/", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
		{"a*b*c", "a*xb*c", true}, // a star in the pattern is always a wildcard
		{"x [copy of *]", "x [copy of us-east-1/ami-0123456789abcdef0]", true},
	} {
		if got := Match(tc.p, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}
