package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
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
