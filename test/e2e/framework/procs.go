package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ChildProcesses lists the live processes this process started and has not reaped, as
// "pid name". Every component of the harness is a direct child, so an empty list after Stop
// means nothing was left behind.
func ChildProcesses() []string {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == self {
			out = append(out, fmt.Sprintf("%s %s", strings.Fields(s)[0], s[strings.IndexByte(s, '(')+1:end]))
		}
	}
	return out
}
