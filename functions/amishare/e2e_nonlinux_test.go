//go:build !linux

package main

import "syscall"

// endWithTest does nothing where there is no parent-death signal: the
// emulator's cleanup in the test is then the only way it ends.
func endWithTest(*syscall.SysProcAttr) {}
