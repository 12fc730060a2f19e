// Package amitag holds the amishare tag contract: the tag keys the engine
// reads and writes on an AMI, and the parsing of the accounts tag.
package amitag

// Tag keys. Accounts is written by people; Status and Message only by the engine.
const (
	Prefix   = "amishare:"
	Accounts = Prefix + "accounts"
	Status   = Prefix + "status"
	Message  = Prefix + "message"
)

// IsStatusKey reports whether key is one of the tags the engine writes itself.
// A change touching only these keys must not trigger a reconcile (no self-loop).
func IsStatusKey(key string) bool {
	return key == Status || key == Message
}
