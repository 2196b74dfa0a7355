//go:build !linux

package testprom

import "os/exec"

// startProcess starts cmd. Outside Linux there is no parent-death signal, so a test binary
// killed before its cleanups run can leave the process behind.
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
