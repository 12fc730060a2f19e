package amitag

import "strings"

// IsImageID reports whether s has the shape of an EC2 image id: "ami-"
// followed by 8 (older ids) or 17 lowercase hex digits. It says nothing
// about whether the image exists.
func IsImageID(s string) bool {
	hex, ok := strings.CutPrefix(s, "ami-")
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	for _, c := range []byte(hex) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
