package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionWithACluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	out, _, err := h.run(newVersionCommand)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Equal(t, "trafficctl v0.0.0-test", lines[0])
	assert.Regexp(t, `^server: Kubernetes v1\.[0-9]+\.[0-9]+\S* at https://127\.0\.0\.1:[0-9]+`, lines[1])
	assert.Equal(t, "crds: trafficctl.io/v1alpha1 is served (alertproviders, canaries, metrictemplates)", lines[2])

	out, _, err = h.run(newVersionCommand, "-o", "json")
	require.NoError(t, err)
	var info versionInfo
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	assert.Equal(t, "v0.0.0-test", info.Client)
	require.NotNil(t, info.Server)
	assert.Empty(t, info.Server.Error)
	require.NotNil(t, info.CRDs)
	assert.True(t, info.CRDs.Served)

	out, _, err = h.run(newVersionCommand, "--client")
	require.NoError(t, err)
	assert.Equal(t, "trafficctl v0.0.0-test\n", out)

	_, _, err = h.run(newVersionCommand, "-o", "xml")
	require.Error(t, err)
	assert.Equal(t, `unknown output format "xml": use json or yaml`, err.Error())
}

// TestVersionWithoutACluster checks that version still answers when the cluster does not: it
// is what a user runs first when nothing else works.
func TestVersionWithoutACluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	out, _, err := h.run(newVersionCommand, "--context", suiteUnreachable)
	require.EqualError(t, err, "the cluster did not answer (trafficctl version --client prints the client's version alone)", "as kubectl version, it exits non-zero")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, "trafficctl v0.0.0-test", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "server: unreachable (cannot reach the cluster at "+suiteUnreachableAddress+": "), lines[1])
	assert.Contains(t, lines[1], "connection refused")
}

// TestVersionCompletion checks cobra's completion command, which the root gets by itself.
func TestVersionCompletion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for shell, want := range map[string]string{
		"bash": "# bash completion V2 for trafficctl", "zsh": "#compdef trafficctl", "fish": "# fish completion for trafficctl",
	} {
		out, _, err := h.runRoot("completion", shell)
		require.NoError(t, err, shell)
		assert.Contains(t, out, want, shell)
	}
}
