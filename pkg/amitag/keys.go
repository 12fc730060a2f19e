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

// KeyManaged is the tag on a KMS key (not an image) that delegates the key to
// amishare: with the stack parameter DelegatedKeysOnly (the default) the
// function's role may write the policy of, or create grants on, only keys
// tagged KeyManaged = KeyManagedValue. The role enforces it; the engine reads
// no key tags.
const (
	KeyManaged      = Prefix + "managed"
	KeyManagedValue = "true"
)

// IsStatusKey reports whether key is one of the tags the engine writes itself.
// A change touching only these keys must not trigger a reconcile (no self-loop).
func IsStatusKey(key string) bool {
	return key == Status || key == Message
}
