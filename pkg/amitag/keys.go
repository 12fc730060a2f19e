// Package amitag holds the amishare tag contract: the tag keys the engine
// reads and writes on an AMI, and the parsing of the accounts and regions tags.
package amitag

// Tag keys. Accounts and Regions are written by people; Status, Message and
// Copies only by the engine. Source is set by the engine when it creates a
// copy, in the same call (CopyImage's TagSpecifications).
const (
	Prefix   = "amishare:"
	Accounts = Prefix + "accounts"
	Status   = Prefix + "status"
	Message  = Prefix + "message"
	// Regions lists the regions a source image is copied to.
	Regions = Prefix + "regions"
	// Copies, on a source image, lists its copies: "eu-west-1=ami-… ap-southeast-2=ami-…".
	Copies = Prefix + "copies"
	// Source, on a copy, names the image it was copied from: "us-east-1/ami-…".
	Source = Prefix + "source"
	// Image is written by the engine on each snapshot it shares, naming the
	// image it shared it for: the record that finds the snapshot again once
	// the image is deregistered. It is the only tag amishare writes on snapshots.
	Image = Prefix + "image"
	// Parameter, written by people on an image, names the SSM parameter
	// (one the configuration declares) that is to name the newest image
	// carrying it.
	Parameter = Prefix + "parameter"
)

// KeyManaged is the tag on a KMS key (not an image) that delegates the key to
// amishare: with the stack parameter DelegatedKeysOnly (the default) the
// function's role may write the policy of, or create grants on, only keys
// tagged KeyManaged = KeyManagedValue. The role enforces it for the function;
// the engine enforces it too (the configuration's delegatedKeysOnly, written
// from the same parameter) for whoever runs it, an operator's CLI included.
const (
	KeyManaged      = Prefix + "managed"
	KeyManagedValue = "true"
)

// IsStatusKey reports whether key is one of the tags the engine writes on
// an image to report (status, message, the list of copies). A change
// touching only these keys must not trigger a reconcile (no self-loop).
func IsStatusKey(key string) bool {
	return key == Status || key == Message || key == Copies
}
