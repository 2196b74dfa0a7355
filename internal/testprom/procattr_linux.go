package testprom

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startProcess starts cmd so that the kernel kills it if the test binary dies without running
// its cleanups (a `go test -timeout` panic, a SIGKILL). The parent-death signal is tied to the
// thread that forks, so the goroutine stays on one thread while it does.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
