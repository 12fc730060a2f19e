package main

import "syscall"

// endWithTest has Linux send the emulator SIGTERM when the test binary dies
// without its cleanup (a -timeout panic, a kill): the emulator then stops the
// bootstrap it started, and nothing outlives the test.
func endWithTest(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGTERM
}
