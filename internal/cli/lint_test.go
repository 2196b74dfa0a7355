package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// lintOffline runs a verb as someone without a cluster would: an empty kubeconfig, namespace
// shop. Nothing it does may need the apiserver.
func lintOffline(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	f := NewFactory(streams, "v0.0.0-test")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, nil, 0o600))
	f.Flags.KubeConfig = ptr.To(kubeconfig)
	f.Flags.Namespace = ptr.To("shop")
	root := NewRootCommand(f, "trafficctl")
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestLintSamplesAreValid(t *testing.T) {
	samples, err := filepath.Glob("../../config/samples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, samples)
	args := []string{"lint"}
	for _, s := range samples {
		stdout, stderr, err := lintOffline(t, "", "lint", "-f", s)
		require.NoError(t, err, "%s:\n%s%s", s, stdout, stderr)
		assert.Regexp(t, `(?m)^\d+ objects? valid( \(\d+ warnings?\))?\n$`, stdout, s)
		assert.NotContains(t, stdout, ": warning: "+"unknown", s)
		args = append(args, "-f", s)
	}
	stdout, _, err := lintOffline(t, "", args...)
	require.NoError(t, err, stdout)
	t.Logf("lint of every sample:\n%s", stdout)
	assert.Contains(t, stdout, "12 objects valid")
}

func TestLintValidFileWithItsReferences(t *testing.T) {
	stdout, stderr, err := lintOffline(t, "", "lint", "-f", "testdata/lint/valid.yaml")
	require.NoError(t, err, stderr)
	assert.Equal(t, "3 objects valid\n", stdout, "the Deployment and the Secret satisfy the references and are not counted")

	// The same from standard input, as a pipeline feeds it.
	data, err := os.ReadFile("testdata/lint/valid.yaml")
	require.NoError(t, err)
	stdout, _, err = lintOffline(t, string(data), "lint", "-f", "-")
	require.NoError(t, err)
	assert.Equal(t, "3 objects valid\n", stdout)
}

func TestLintBrokenFileListsEveryProblem(t *testing.T) {
	stdout, _, err := lintOffline(t, "", "lint", "-f", "testdata/lint/broken.yaml")
	require.EqualError(t, err, "5 errors in testdata/lint/broken.yaml")
	t.Logf("lint of a broken file:\n%s", stdout)
	want := []string{
		"testdata/lint/broken.yaml: Canary shop/podinfo: spec.analysis.metrics[0].thresholdRange: thresholdRange needs min, max or both",
		"testdata/lint/broken.yaml: Canary shop/podinfo: spec.analysis.stepWeights: analysis.stepWeights must be strictly increasing, such as [5, 10, 25, 50]",
		"testdata/lint/broken.yaml: Canary shop/podinfo: spec.analysis.stepWieghts: unknown field",
		`testdata/lint/broken.yaml: Canary shop/podinfo: spec.analysis.webhooks[0].url: Invalid value: "ftp://loadtester.shop/": webhooks[].url must be an http or https URL`,
		"testdata/lint/broken.yaml: Canary shop/podinfo: spec.targetRef: warning: Deployment shop/podinfo is not in the given files; it must exist in the cluster (check with --cluster)",
		"testdata/lint/broken.yaml: AlertProvider shop/on-call: spec: an AlertProvider needs secretRef (a Secret with key address) or address",
	}
	assert.Equal(t, strings.Join(want, "\n")+"\n", stdout)
}

func TestLintSchemaErrorsSkipTheRulesLikeTheAPIServer(t *testing.T) {
	manifest := `apiVersion: trafficctl.io/v1alpha1
kind: Canary
metadata: {name: podinfo}
spec:
  provider: linkerd
  targetRef: {name: podinfo}
  service: {port: 0, parentRefs: [{name: gw}]}
  analysis: {stepWeights: [50, 10]}
---
apiVersion: trafficctl.io/v1beta1
kind: MetricTemplate
metadata: {name: old}
spec: {query: up}
---
apiVersion: trafficctl.io/v1alpha1
kind: Rollout
metadata: {name: what}
`
	stdout, _, err := lintOffline(t, manifest, "lint", "-f", "-")
	require.EqualError(t, err, "4 errors in -", "the note on the rules not checked is no error of its own")
	want := []string{
		`<stdin>: Canary shop/podinfo: spec.provider: Unsupported value: "linkerd": supported values: "gatewayapi", "istio", "kubernetes"`,
		"<stdin>: Canary shop/podinfo: spec.service.port: Invalid value: 0: spec.service.port in body should be greater than or equal to 1",
		"<stdin>: Canary shop/podinfo: warning: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
		"<stdin>: Canary shop/podinfo: spec.targetRef: warning: Deployment shop/podinfo is not in the given files; it must exist in the cluster (check with --cluster)",
		`<stdin>: MetricTemplate shop/old: apiVersion: Unsupported value: "trafficctl.io/v1beta1": supported values: "trafficctl.io/v1alpha1"`,
		"<stdin>: Rollout what: kind: trafficctl.io has no kind Rollout; it serves AlertProvider, Canary, MetricTemplate",
	}
	assert.Equal(t, strings.Join(want, "\n")+"\n", stdout)
}

// TestLintRunsTheControllersChecks: what the controller would find only at a rollout (a regex RE2
// cannot compile, a query that is not PromQL, a variable the Canary does not give) lint finds
// offline, with the rollout core's own functions.
func TestLintRunsTheControllersChecks(t *testing.T) {
	stdout, _, err := lintOffline(t, "", "lint", "-f", "testdata/lint/rules.yaml")
	require.EqualError(t, err, "3 errors in testdata/lint/rules.yaml")
	t.Logf("lint of checks that cannot run:\n%s", stdout)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 4, stdout)
	assert.True(t, strings.HasPrefix(lines[0], `testdata/lint/rules.yaml: Canary shop/podinfo: spec.analysis.match: invalid A/B match: analysis.match[0].headers[x-canary].regex "(insider" is not an RE2 regular expression`), lines[0])
	assert.Equal(t, "testdata/lint/rules.yaml: Canary shop/podinfo: spec.analysis.metrics[0]: check latency cannot run: the query is not PromQL: 1:46: parse error: unclosed left parenthesis", lines[1])
	assert.Contains(t, lines[2], `spec.analysis.metrics[1]: check vars cannot run: query template references unknown variable "variables.path"`)
	assert.Contains(t, lines[2], "templateVariables: route")
}

// TestLintNeedsObjects: an empty file or standard input is not "0 objects valid".
func TestLintNeedsObjects(t *testing.T) {
	_, _, err := lintOffline(t, "", "lint", "-f", "-")
	require.EqualError(t, err, "<stdin> holds no objects to check")
	_, _, err = lintOffline(t, "# nothing but a comment\n---\n", "lint", "-f", "-")
	require.EqualError(t, err, "<stdin> holds no objects to check")
}

func TestLintYAMLSyntaxErrorNamesTheLine(t *testing.T) {
	stdout, _, err := lintOffline(t, "", "lint", "-f", "testdata/lint/syntax.yaml")
	require.EqualError(t, err, "1 error in testdata/lint/syntax.yaml")
	assert.Equal(t, "testdata/lint/syntax.yaml: line 17: mapping values are not allowed in this context\n", stdout,
		"the line is counted from the top of the file, not of its document")

	_, _, err = lintOffline(t, "", "lint", "-f", "testdata/lint/no-such-file.yaml")
	require.EqualError(t, err, "1 error in testdata/lint/no-such-file.yaml")
	_, _, err = lintOffline(t, "", "lint")
	require.EqualError(t, err, "lint needs at least one file: -f FILE (or -f - for standard input)")
}

func TestLintServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	h.createTarget("podinfo:1.0")
	existing := &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "errors", Namespace: h.ns},
		Spec:       v1alpha1.MetricTemplateSpec{Query: "vector(0)"},
	}
	require.NoError(t, k8s.Create(ctx, existing))
	require.NoError(t, k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hmac", Namespace: h.ns},
		StringData: map[string]string{"wrong-key": "x"},
	}))

	// Offline, what is not in the file is only a warning.
	stdout, _, err := h.run(newLintCommand, "-f", "testdata/lint/server.yaml")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "testdata/lint/server.yaml: Canary "+h.ns+"/podinfo: spec.targetRef: warning: Deployment "+h.ns+"/podinfo is not in the given files")
	assert.Contains(t, stdout, "4 objects valid (3 warnings)\n")

	stdout, _, err = h.run(newLintCommand, "-f", "testdata/lint/server.yaml", "--cluster")
	t.Logf("lint --cluster:\n%s", stdout)
	want := []string{
		"testdata/lint/server.yaml: Canary " + h.ns + "/podinfo: spec.analysis.alerts[0].providerRef: AlertProvider " + h.ns + "/missing is neither in the given files nor in the cluster",
		"testdata/lint/server.yaml: Canary " + h.ns + "/podinfo: spec.analysis.webhooks[0].secretRef: Secret " + h.ns + "/hmac in the cluster has no key hmac-key (the HMAC key)",
		`testdata/lint/server.yaml: AlertProvider lint-no-such-namespace/on-call: the apiserver refused it: namespaces "lint-no-such-namespace" not found`,
	}
	assert.Equal(t, strings.Join(want, "\n")+"\n", stdout, "the Deployment podinfo is found in the cluster")
	require.EqualError(t, err, "3 errors in testdata/lint/server.yaml")

	// A dry run writes nothing: the new template is not created, the existing one not changed.
	err = k8s.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "latency"}, &v1alpha1.MetricTemplate{})
	assert.True(t, apierrors.IsNotFound(err), "got %v", err)
	got := &v1alpha1.MetricTemplate{}
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(existing), got))
	assert.Equal(t, "vector(0)", got.Spec.Query)
	assert.Equal(t, existing.ResourceVersion, got.ResourceVersion)
}

func TestLintServerReportsEachProblemOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	data, err := os.ReadFile("testdata/lint/broken.yaml")
	require.NoError(t, err)
	manifest := strings.ReplaceAll(string(data), "  namespace: shop\n", "")
	// Offline and the apiserver both refuse these objects, for the same reasons: each is listed
	// once, the apiserver's wording (strict decoding of an unknown field, a CEL rule's message)
	// read like lint's.
	stdout, _, err := h.runIn(manifest, newLintCommand, "-f", "-", "--cluster")
	t.Logf("lint --cluster of a broken file:\n%s", stdout)
	require.EqualError(t, err, "6 errors in -")
	for _, line := range []string{
		"Canary " + h.ns + "/podinfo: spec.analysis.stepWeights: analysis.stepWeights must be strictly increasing",
		"Canary " + h.ns + "/podinfo: spec.analysis.metrics[0].thresholdRange: thresholdRange needs min, max or both",
		"Canary " + h.ns + "/podinfo: spec.analysis.stepWieghts: unknown field",
		"Canary " + h.ns + "/podinfo: spec.targetRef: Deployment " + h.ns + "/podinfo is neither in the given files nor in the cluster",
		"AlertProvider " + h.ns + "/on-call: spec: an AlertProvider needs secretRef (a Secret with key address) or address",
	} {
		assert.Equal(t, 1, strings.Count(stdout, line), "%q once", line)
	}
}
