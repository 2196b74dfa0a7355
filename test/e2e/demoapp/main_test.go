package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// process is the built binary running in the background.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
}

// syncBuffer is the process's stderr, readable while the process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Env = env // nothing inherited: the app sees only what a pod's container would
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// wait returns the exit code, failing the test if the process runs on past the timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-p.exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(timeout):
		t.Fatalf("still running after %s; stderr:\n%s", timeout, p.stderr)
		return -1
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "demoapp")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)

	// No proxy, whatever the environment says: only the loopback address is called.
	client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()

	t.Run("serves until SIGTERM", func(t *testing.T) {
		addr := freeLoopbackAddr(t)
		p := start(t, bin, "LISTEN_ADDR="+addr, "VERSION=1.2.3", "ERROR_RATE=0.1", "LATENCY=1ms",
			"POD_NAME=podinfo-abc-12345", "POD_NAMESPACE=demo")

		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			resp, err := client.Get("http://" + addr + "/healthz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			require.True(t, time.Now().Before(deadline), "not ready in 10s: %v; stderr:\n%s", err, p.stderr)
			select {
			case err := <-p.exited:
				t.Fatalf("exited before it was ready: %v; stderr:\n%s", err, p.stderr)
			case <-tick.C:
			}
		}

		codes := map[int]int{}
		for range 10 {
			resp, err := client.Get("http://" + addr + "/")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			_ = resp.Body.Close()
			codes[resp.StatusCode]++
			assert.Equal(t, "1.2.3", resp.Header.Get("X-Version"))
			if resp.StatusCode == http.StatusOK {
				assert.Equal(t, "version 1.2.3 pod podinfo-abc-12345\n", string(body))
			}
		}
		assert.Equal(t, map[int]int{200: 9, 500: 1}, codes)

		resp, err := client.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		metrics, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Contains(t, string(metrics), `http_requests_total{code="200",method="GET"} 9`+"\n")
		assert.Contains(t, string(metrics), `http_requests_total{code="500",method="GET"} 1`+"\n")

		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, p.wait(t, 10*time.Second), "stderr:\n%s", p.stderr)
		assert.Contains(t, p.stderr.String(), "stopped")
	})

	t.Run("CRASH=true exits 1 at once", func(t *testing.T) {
		p := start(t, bin, "LISTEN_ADDR="+freeLoopbackAddr(t), "VERSION=4.0.0", "CRASH=true")
		assert.Equal(t, 1, p.wait(t, 10*time.Second))
		assert.Contains(t, p.stderr.String(), "CRASH=true")
	})

	t.Run("invalid configuration exits 2", func(t *testing.T) {
		p := start(t, bin, "LISTEN_ADDR="+freeLoopbackAddr(t), "ERROR_RATE=lots")
		assert.Equal(t, 2, p.wait(t, 10*time.Second))
		assert.Contains(t, p.stderr.String(), "ERROR_RATE")
	})
}
