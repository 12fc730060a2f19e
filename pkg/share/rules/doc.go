// Package rules holds amishare's decisions, without any I/O: given what an
// image, its snapshots and keys look like now (State) and whom its tag names
// (amitag.Targets), Decide computes the plan that shares it with exactly
// them, in a safe order, and the status that says so; DecideCopies does the
// same for copies in other regions. The engine (pkg/share) reads AWS into
// these values, calls the rules and applies the plan, for an event, the CLI
// and the sweep alike: a rule fixed here holds everywhere.
package rules
