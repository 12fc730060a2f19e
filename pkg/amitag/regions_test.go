package amitag

import (
	"slices"
	"testing"
)

type regionDir []string

func (d regionDir) RegionAllowed(r string) bool { return slices.Contains(d, r) }

func TestResolveRegions(t *testing.T) {
	dir := regionDir{"eu-west-1", "ap-southeast-2", "us-gov-west-1"}
	tests := []struct {
		value   string
		regions []string
		refused []Refusal
	}{
		{"", nil, nil},
		{"eu-west-1 ap-southeast-2", []string{"eu-west-1", "ap-southeast-2"}, nil},
		{"ap-southeast-2,eu-west-1, ap-southeast-2", []string{"ap-southeast-2", "eu-west-1"}, nil},
		{"us-east-1 eu-west-1", []string{"eu-west-1"}, nil}, // the image's own region: skipped
		{"us-gov-west-1", []string{"us-gov-west-1"}, nil},
		{"ap-south-1 EU-WEST-1 eu_west_1 ../x", nil, []Refusal{
			{"ap-south-1", ReasonRegionNotAllowed}, {"EU-WEST-1", ReasonNotRegion}, {"eu_west_1", ReasonNotRegion}, {"../x", ReasonNotRegion}}},
	}
	for _, tc := range tests {
		got := ResolveRegions(tc.value, "us-east-1", dir)
		if !slices.Equal(got.Regions, tc.regions) || !slices.Equal(got.Refused, tc.refused) {
			t.Errorf("ResolveRegions(%q): got %v %v, want %v %v", tc.value, got.Regions, got.Refused, tc.regions, tc.refused)
		}
	}
}

func TestCopiesIsStatusKey(t *testing.T) {
	if !IsStatusKey(Copies) || IsStatusKey(Regions) || IsStatusKey(Source) {
		t.Errorf("IsStatusKey: copies is written by the engine; regions and source are not status tags")
	}
}
