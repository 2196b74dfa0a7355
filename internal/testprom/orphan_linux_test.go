package testprom

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const orphanModeEnv = "TESTPROM_ORPHAN_MODE"

// TestNoProcessSurvives runs this test binary again as a child that starts Prometheus and then
// ends badly, and checks that the Prometheus process is gone afterwards.
func TestNoProcessSurvives(t *testing.T) {
	switch os.Getenv(orphanModeEnv) {
	case "fail":
		// A failing test: the cleanup kills the server and prints its log.
		p := Start(t)
		fmt.Printf("PID %d\n", p.cmd.Process.Pid)
		t.Fatal("failing on purpose")
	case "exit":
		// A test binary that dies without running cleanups, as on a -timeout panic.
		p, err := StartProcess()
		if err != nil {
			fmt.Println("start:", err)
			os.Exit(2)
		}
		fmt.Printf("PID %d\n", p.cmd.Process.Pid)
		os.Exit(3)
	}

	for _, mode := range []string{"fail", "exit"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNoProcessSurvives$", "-test.v")
			cmd.Env = append(os.Environ(), orphanModeEnv+"="+mode, "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			require.True(t, errors.As(err, &exitErr), "child should fail, got %v:\n%s", err, out)

			m := regexp.MustCompile(`PID (\d+)`).FindSubmatch(out)
			require.NotNil(t, m, "child printed no pid:\n%s", out)
			pid, err := strconv.Atoi(string(m[1]))
			require.NoError(t, err)
			assert.Eventually(t, func() bool { return !processAlive(pid) }, 5*time.Second, 50*time.Millisecond,
				"prometheus (pid %d) survived the %s child", pid, mode)
			if !processAlive(pid) {
				return
			}
			_ = syscall.Kill(pid, syscall.SIGKILL) // do not leave it behind ourselves
		})
	}
	t.Run("fail prints the log tail", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNoProcessSurvives$", "-test.v")
		cmd.Env = append(os.Environ(), orphanModeEnv+"=fail")
		out, _ := cmd.CombinedOutput()
		assert.Contains(t, string(out), "prometheus log")
		assert.Contains(t, string(out), "Server is ready to receive web requests.")
	})
}

// processAlive reports whether pid is a running process; a zombie that no init reaps counts
// as dead.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	fields := strings.Fields(rest)
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}
