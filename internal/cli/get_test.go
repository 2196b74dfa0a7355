package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// getRow is the table row of a Canary in get's output, split into its cells.
func getRow(t *testing.T, out, name string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row for %s in:\n%s", name, out)
	return nil
}

func TestGetTableAndObjects(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.initialized("podinfo:1.0")
	cn := h.canary()

	out, _, err := h.run(newGetCommand)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, []string{"NAME", "STATUS", "WEIGHT", "STEP", "FAILED", "LAST", "TRANSITION"}, strings.Fields(lines[0]))
	row := getRow(t, out, "podinfo")
	assert.Equal(t, []string{"podinfo", "Initialized", "0%", "-", "0"}, row[:5])
	assert.NotContains(t, out, cn.Status.LastAppliedSpec, "the revision is a wide column")

	out, _, err = h.run(newGetCommand, "podinfo", "-o", "wide")
	require.NoError(t, err)
	assert.Contains(t, out, "MESSAGE")
	assert.Contains(t, out, "REVISION")
	assert.Contains(t, out, readyMessageOf(cn))
	assert.Contains(t, out, cn.Status.LastAppliedSpec)

	// The alias works too.
	out, _, err = h.runRoot("list", "--no-headers")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "podinfo "), out)

	out, _, err = h.run(newGetCommand, "podinfo", "-o", "yaml")
	require.NoError(t, err)
	var back v1alpha1.Canary
	require.NoError(t, yaml.UnmarshalStrict([]byte(out), &back), out)
	assert.Equal(t, "trafficctl.io/v1alpha1", back.APIVersion)
	assert.Equal(t, "Canary", back.Kind)
	assert.Equal(t, "podinfo", back.Name)
	assert.Equal(t, h.ns, back.Namespace)
	assert.Equal(t, cn.Spec, back.Spec)
	assert.Equal(t, v1alpha1.PhaseInitialized, back.Status.Phase)
	assert.Empty(t, back.ManagedFields, "managed fields are left out, as kubectl does")

	out, _, err = h.run(newGetCommand, "-o", "json")
	require.NoError(t, err)
	var list v1alpha1.CanaryList
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	assert.Equal(t, "CanaryList", list.Kind)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "Canary", list.Items[0].Kind, "every item is typed, so the list applies back")

	out, _, err = h.run(newGetCommand, "-o", "name")
	require.NoError(t, err)
	assert.Equal(t, "canary.trafficctl.io/podinfo\n", out)
}

func TestGetAllNamespacesAndNamespaceFlag(t *testing.T) {
	t.Parallel()
	a, b := newHarness(t), newHarness(t)
	a.createCanary()
	b.createCanary(func(cn *v1alpha1.Canary) { cn.Name = "shop"; cn.Labels = map[string]string{"team": "shop"} })

	out, _, err := a.run(newGetCommand, "-A")
	require.NoError(t, err)
	assert.Equal(t, "NAMESPACE", strings.Fields(out)[0], out)
	assert.Equal(t, []string{a.ns, "podinfo", "-"}, getRow(t, out, a.ns)[:3], "a Canary the controller has not seen has no phase yet")
	assert.Equal(t, []string{b.ns, "shop"}, getRow(t, out, b.ns)[:2])

	// -n picks another namespace than the context's, as with kubectl.
	out, _, err = a.run(newGetCommand, "-n", b.ns)
	require.NoError(t, err)
	getRow(t, out, "shop")
	assert.NotContains(t, out, "podinfo")

	out, _, err = a.run(newGetCommand, "-A", "-l", "team=shop")
	require.NoError(t, err)
	getRow(t, out, b.ns)
	assert.NotContains(t, out, a.ns)

	_, _, err = a.run(newGetCommand, "podinfo", "-A")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot be retrieved by name across all namespaces")
}

func TestGetUnknownNameAndEmptyNamespace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	out, stderr, err := h.run(newGetCommand)
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.Equal(t, "No Canaries found in namespace "+h.ns+".\n", stderr)

	_, _, err = h.run(newGetCommand, "nope")
	require.Error(t, err)
	assert.Equal(t, "canary "+h.ns+"/nope not found", err.Error())

	_, _, err = h.run(newGetCommand, "-o", "table")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown output format "table"`)
	assert.Contains(t, err.Error(), "wide, json, yaml")
}

// TestGetBadClusters covers what users meet first when their kubeconfig is wrong: each error is
// one line that says what to do, never a stack trace.
func TestGetBadClusters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createCanary()

	_, _, err := h.run(newGetCommand, "--context", suiteUnreachable)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach the cluster at "+suiteUnreachableAddress)
	assert.NotContains(t, err.Error(), "\n")
	assert.NotContains(t, err.Error(), "goroutine")

	_, _, err = h.run(newGetCommand, "--context", "nowhere")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `context "nowhere" does not exist`)

	nobody := h.addUserContext("nobody-" + h.ns)
	_, _, err = h.run(newGetCommand, "podinfo", "--context", nobody)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "permission denied: "), err.Error())
	assert.Contains(t, err.Error(), `cannot get resource "canaries"`)
	assert.Contains(t, err.Error(), h.ns)
}

// TestGetCompletesNames checks the shell completion of NAME, which reads the namespace's
// Canaries.
func TestGetCompletesNames(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createCanary()
	h.createCanary(func(cn *v1alpha1.Canary) { cn.Name = "checkout" })
	out, _, err := h.runRoot("__complete", "status", "po")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Equal(t, []string{"podinfo", ":4"}, lines, "the names, then the directive not to complete files")
}

// Once any Canary is labelled for a shard, the table says which shard acts on each. Not in
// parallel, and the label is taken off at the end: the tests that list every namespace would see
// the column too.
func TestGetShowsShards(t *testing.T) {
	h := newHarness(t)
	h.createCanary()
	out, _, err := h.run(newGetCommand)
	require.NoError(t, err)
	assert.NotContains(t, out, "SHARD", "no Canary is sharded: no column")

	h.createCanary(func(cn *v1alpha1.Canary) {
		cn.Name = "shop"
		cn.Labels = map[string]string{v1alpha1.LabelShard: "east"}
	})
	t.Cleanup(func() {
		cn := &v1alpha1.Canary{}
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "shop"}, cn))
		cn.Labels = nil
		require.NoError(t, k8s.Update(context.Background(), cn))
	})
	out, _, err = h.run(newGetCommand)
	require.NoError(t, err)
	assert.Equal(t, []string{"NAME", "SHARD", "STATUS"}, strings.Fields(out)[:3], out)
	assert.Equal(t, []string{"podinfo", "default"}, getRow(t, out, "podinfo")[:2])
	assert.Equal(t, []string{"shop", "east"}, getRow(t, out, "shop")[:2])
}
