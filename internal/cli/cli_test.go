package cli

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
)

func TestRootCommandNamesItselfAsAKubectlPlugin(t *testing.T) {
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	root := NewRootCommand(NewFactory(streams, "test"), "kubectl trafficctl")
	status, _, err := root.Find([]string{"status"})
	require.NoError(t, err)
	assert.Contains(t, status.UsageString(), "kubectl trafficctl status NAME")
	plain := NewRootCommand(NewFactory(streams, "test"), "trafficctl")
	status, _, err = plain.Find([]string{"status"})
	require.NoError(t, err)
	assert.Contains(t, status.UsageString(), "trafficctl status NAME")
	assert.NotContains(t, status.UsageString(), "kubectl trafficctl")
}

// TestTheCLIWithNoOrABrokenCluster: each way of having no cluster, or a broken one, says so in
// its own words, and nothing waits for ever.
func TestTheCLIWithNoOrABrokenCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	run := func(kubeconfig string, args ...string) error {
		f, _, _ := h.factory("")
		f.Flags.KubeConfig = ptr.To(kubeconfig)
		return h.execute(NewRootCommand(f, "trafficctl"), f, args)
	}

	err := run("/nonexistent/kubeconfig", "get", "podinfo")
	require.EqualError(t, err, "kubeconfig /nonexistent/kubeconfig: no such file or directory", "the missing file is named")

	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	err = run(empty, "get", "podinfo")
	require.ErrorContains(t, err, "no cluster is configured", "not localhost:8080: connection refused")

	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	f, _, _ := h.factory("")
	f.Flags.KubeConfig = ptr.To(empty)
	f.Flags.APIServer = ptr.To("https://" + l.Addr().String())
	f.Flags.Insecure = ptr.To(true)
	cfg, err := f.RESTConfig()
	require.NoError(t, err)
	assert.Equal(t, defaultRequestTimeout, cfg.Timeout, "every request is bounded without --request-timeout")
	err = h.execute(NewRootCommand(f, "trafficctl"), f, []string{"get", "podinfo", "--request-timeout", "1s"})
	require.EqualError(t, err, "the cluster at "+l.Addr().String()+" did not answer in time (raise --request-timeout, 30s by default)")

	// lint's own flag does not shadow the global --server.
	_, _, err = h.run(newLintCommand, "-f", "../../config/samples/podinfo.yaml", "--server", "https://"+suiteUnreachableAddress)
	require.NoError(t, err, "offline, the address is not used")
}
