package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/rollout"
)

// planGolden compares a plan with its golden file; TRAFFICCTL_UPDATE_GOLDEN=1 rewrites it.
func planGolden(t *testing.T, path, got string) {
	t.Helper()
	if os.Getenv("TRAFFICCTL_UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "set TRAFFICCTL_UPDATE_GOLDEN=1 to write it")
	assert.Equal(t, string(want), got)
}

// planHeaders are the diffs' headers in order, "from -> to".
var planHeader = regexp.MustCompile(`(?m)^--- (.*)\n\+\+\+ (.*)$`)

func planHeaders(out string) []string {
	var got []string
	for _, m := range planHeader.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" -> "+m[2])
	}
	return got
}

// planWeights are the weights a diff's lines change, in order, as "-100 +90".
var planWeightLine = regexp.MustCompile(`(?m)^([-+])\s+weight: (\d+)$`)

func planWeights(out string) string {
	var got []string
	for _, m := range planWeightLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+m[2])
	}
	return strings.Join(got, " ")
}

func TestPlanFileGatewayAPI(t *testing.T) {
	stdout, stderr, err := lintOffline(t, "", "plan", "-f", "testdata/plan/gatewayapi.yaml")
	require.NoError(t, err, stderr)
	t.Logf("plan -f gatewayapi.yaml:\n%s", stdout)
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0% -> step 1: primary 90% / canary 10%",
		"step 1: primary 90% / canary 10% -> step 2: primary 50% / canary 50%",
		"step 2: primary 50% / canary 50% -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Equal(t, "-100 +90 -0 +10 -90 +50 -10 +50 -50 +100 -50 +0", planWeights(stdout), "primary then canary, at each step")
	assert.True(t, strings.HasPrefix(stdout, "# Canary shop/podinfo (provider gatewayapi, strategy Canary): HTTPRoute shop/podinfo through 4 stages\n# step 0: primary 100% / canary 0%\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"), stdout)
	planGolden(t, "testdata/plan/gatewayapi.golden", stdout)
}

func TestPlanFileIstio(t *testing.T) {
	stdout, stderr, err := lintOffline(t, "", "plan", "-f", "testdata/plan/istio.yaml")
	require.NoError(t, err, stderr)
	t.Logf("plan -f istio.yaml:\n%s", stdout)
	assert.Contains(t, stdout, "VirtualService shop/storefront through 4 stages\n")
	assert.Contains(t, stdout, "\napiVersion: networking.istio.io/v1\nkind: VirtualService\n")
	assert.Contains(t, stdout, "  gateways:\n  - istio-system/public-gateway\n", "the Canary's gateways")
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0% -> step 1: primary 80% / canary 20%",
		"step 1: primary 80% / canary 20% -> step 2: primary 60% / canary 40%",
		"step 2: primary 60% / canary 40% -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Equal(t, "-100 +80 -0 +20 -80 +60 -20 +40 -60 +100 -40 +0", planWeights(stdout), "a weight of 0 is written, not left out")
	assert.Contains(t, stdout, "kind: DestinationRule\nmetadata:\n  labels:\n    app.kubernetes.io/managed-by: trafficctl\n  name: storefront-primary\n", "the DestinationRules the router writes before the VirtualService")
	planGolden(t, "testdata/plan/istio.golden", stdout)
}

func TestPlanBlueGreenAndABTesting(t *testing.T) {
	stdout, stderr, err := lintOffline(t, "", "plan", "-f", "../../config/samples/blue-green.yaml", "checkout")
	require.NoError(t, err, stderr)
	t.Logf("plan blue/green:\n%s", stdout)
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0% -> steps 1-5: primary 100% / canary 0%, 50% mirrored to the canary",
		"steps 1-5: primary 100% / canary 0%, 50% mirrored to the canary -> switch: primary 0% / canary 100%",
		"switch: primary 0% / canary 100% -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Contains(t, stdout, "+      type: RequestMirror\n")

	stdout, stderr, err = lintOffline(t, "", "plan", "-f", "../../config/samples/ab-testing.yaml")
	require.NoError(t, err, stderr)
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0% -> steps 1-10: primary 100% / canary 0%, A/B cohort to the canary",
		"steps 1-10: primary 100% / canary 0%, A/B cohort to the canary -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Contains(t, stdout, "+    name: trafficctl-cohort-0\n")
	assert.Contains(t, stdout, "+          exact: insider\n")

	// Provider kubernetes: the apex Service's selector switches from the primary's pods to the
	// canary's and back.
	stdout, stderr, err = lintOffline(t, "", "plan", "-f", "../../config/samples/blue-green.yaml", "cart")
	require.NoError(t, err, stderr)
	t.Logf("plan blue/green without a mesh:\n%s", stdout)
	assert.Contains(t, stdout, "# Canary shop/cart (provider kubernetes, strategy BlueGreen): Service shop/cart through 4 stages\n")
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0% -> steps 1-5: primary 100% / canary 0%",
		"steps 1-5: primary 100% / canary 0% -> switch: primary 0% / canary 100%",
		"switch: primary 0% / canary 100% -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Contains(t, stdout, "-    app: cart-primary\n+    app: cart\n", "the switch points the apex Service at the canary's pods")
	_, _, err = lintOffline(t, "", "plan", "-f", "../../config/samples/blue-green.yaml", "nope")
	require.EqualError(t, err, "../../config/samples/blue-green.yaml holds no Canary named nope")
}

// TestPlanPlansEveryCanary: one Canary that cannot be planned is reported, and the others are
// planned all the same; a file whose Canaries all can be exits 0.
func TestPlanPlansEveryCanary(t *testing.T) {
	stdout, stderr, err := lintOffline(t, "", "plan", "-f", "../../config/samples/blue-green.yaml")
	require.NoError(t, err, stderr)
	for _, name := range []string{"checkout", "cart", "search", "profile"} {
		assert.Contains(t, stdout, "# Canary shop/"+name+" ")
	}
	assert.Contains(t, stdout, "# Canary shop/search (provider kubernetes, strategy ReplicaRatio): Service shop/search through 4 stages\n")
	assert.Contains(t, stdout, "-  replicas: 0\n+  replicas: 1\n", "1 canary pod beside 9 primaries is the first step's 10%")
	assert.Contains(t, stdout, "  selector:\n    app.kubernetes.io/name: search\n", "a replica ratio selects both versions' pods")

	file := filepath.Join(t.TempDir(), "two.yaml")
	sample, err := os.ReadFile("testdata/plan/gatewayapi.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, append([]byte(`apiVersion: trafficctl.io/v1alpha1
kind: Canary
metadata: {name: cart, namespace: shop}
spec:
  provider: kubernetes
  targetRef: {name: cart}
  service: {port: 8080}
  analysis: {interval: 30s, iterations: 2}
---
`), sample...), 0o644))
	stdout, stderr, err = lintOffline(t, "", "plan", "-f", file)
	require.EqualError(t, err, "1 of 2 Canaries could not be planned")
	assert.Contains(t, stderr, "error: plan canary shop/cart: step 0 (primary 100% / canary 0%): provider kubernetes points Service shop/cart at the pods of Deployment shop/cart by their labels: add the Deployment to the file")
	assert.Contains(t, stdout, "# Canary shop/podinfo (provider gatewayapi, strategy Canary): HTTPRoute shop/podinfo through 4 stages\n", "the other Canary is planned")
}

func TestPlanFileWithTheUserRoute(t *testing.T) {
	stdout, stderr, err := lintOffline(t, "", "plan", "-f", "testdata/plan/userroute.yaml")
	require.NoError(t, err, stderr)
	t.Logf("plan of a user's route:\n%s", stdout)
	assert.Equal(t, []string{
		"now: as it stands -> step 0: primary 100% / canary 0%",
		"step 0: primary 100% / canary 0% -> step 1: primary 75% / canary 25%",
		"step 1: primary 75% / canary 25% -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Contains(t, stdout, "+    trafficctl.io/original-backends:", "trafficctl records the backends it replaces")
	assert.Contains(t, stdout, "-    - name: podinfo\n+    - name: podinfo-primary\n", "the apex backend, as the user wrote it, becomes the primary's")
	assert.NotContains(t, stdout, "-      name: admin", "the team's other rule is left alone")
}

func TestPlanRefusesAnInvalidFile(t *testing.T) {
	_, stderr, err := lintOffline(t, "", "plan", "-f", "testdata/lint/broken.yaml")
	require.EqualError(t, err, "testdata/lint/broken.yaml is not valid; the apiserver would refuse it as well (trafficctl lint -f testdata/lint/broken.yaml says the same)")
	assert.Contains(t, stderr, "spec.analysis.stepWeights: analysis.stepWeights must be strictly increasing")
	_, _, err = lintOffline(t, "", "plan")
	require.EqualError(t, err, "plan needs the name of a Canary, or -f FILE")
}

func TestPlanStagesFollowTheController(t *testing.T) {
	cn := func(mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
		c := &v1alpha1.Canary{Spec: v1alpha1.CanarySpec{Analysis: v1alpha1.CanaryAnalysis{StepWeights: []int32{10, 50}}}}
		for _, m := range mods {
			m(c)
		}
		return c
	}
	labels := func(stages []planStage) []string {
		var out []string
		for _, s := range stages {
			out = append(out, s.label+": "+s.routing.String())
		}
		return out
	}
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0%",
		"step 1: primary 100% / canary 0%, 100% mirrored to the canary",
		"step 2: primary 90% / canary 10%",
		"step 3: primary 50% / canary 50%",
		"promoted: primary 100% / canary 0%",
	}, labels(planStages(cn(func(c *v1alpha1.Canary) { c.Spec.Analysis.Mirror = true }), 1)), "a mirrored step comes before the weighted ones")
	sticky := planStages(cn(func(c *v1alpha1.Canary) {
		c.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary"}
	}), 1)
	assert.Equal(t, []string{
		"step 0: primary 100% / canary 0%",
		"step 1: primary 90% / canary 10%, sticky sessions",
		"step 2: primary 50% / canary 50%, sticky sessions",
		"switch: primary 0% / canary 100%",
		"promoted: primary 100% / canary 0%",
	}, labels(sticky), "sticky sessions switch everyone to the canary before the primary is updated")
	assert.Equal(t, planRevision, sticky[1].routing.Sticky)
	assert.Equal(t, rollout.Primary(), planStages(cn(), 1)[0].routing)
}

func TestPlanNameFromTheCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createCanary()
	cn := h.canary()

	stdout, stderr, err := h.run(newPlanCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("plan podinfo:\n%s", stdout)
	assert.Contains(t, stdout, "HTTPRoute "+h.ns+"/podinfo through 4 stages\n")
	assert.Contains(t, stdout, "    uid: "+string(cn.UID)+"\n", "the route belongs to the Canary in the cluster")
	assert.Equal(t, "-100 +90 -0 +10 -90 +50 -10 +50 -50 +100 -50 +0", planWeights(stdout))

	_, _, err = h.run(newPlanCommand, "nope")
	require.EqualError(t, err, "canary "+h.ns+"/nope not found")
}

func TestPlanNameStartsFromTheUserRouteAsItStands(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	route := &gatewayv1.HTTPRoute{}
	route.Name, route.Namespace = "shop", h.ns
	route.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "public-gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}}
	prefix := func(p string) []gatewayv1.HTTPRouteMatch {
		return []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(p)}}}
	}
	backend := func(name string, port int32) []gatewayv1.HTTPBackendRef {
		return []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(port))}}}}
	}
	route.Spec.Rules = []gatewayv1.HTTPRouteRule{
		{Matches: prefix("/admin"), BackendRefs: backend("admin", 8080)},
		{Matches: prefix("/"), BackendRefs: backend("podinfo", 9898)},
	}
	require.NoError(t, k8s.Create(ctx, route))
	h.createCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
		cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: "shop"}
	})

	stdout, stderr, err := h.run(newPlanCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("plan podinfo with the user's route:\n%s", stdout)
	assert.True(t, strings.HasPrefix(stdout, "# Canary "+h.ns+"/podinfo (provider gatewayapi, strategy Canary): HTTPRoute "+h.ns+"/shop through 4 stages\n# now: as it stands\n"), stdout)
	assert.Equal(t, []string{
		"now: as it stands -> step 0: primary 100% / canary 0%",
		"step 0: primary 100% / canary 0% -> step 1: primary 90% / canary 10%",
		"step 1: primary 90% / canary 10% -> step 2: primary 50% / canary 50%",
		"step 2: primary 50% / canary 50% -> promoted: primary 100% / canary 0%",
	}, planHeaders(stdout))
	assert.Contains(t, stdout, "-      name: podinfo\n", "the apex backend is what changes first")
	assert.NotContains(t, stdout, "-      name: admin")

	// The promoted route, as the router writes it over the live one: the team's rule is intact.
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"))
	require.NoError(t, k8s.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "shop"}, live))
	promoted, err := gatewayapi.Build(h.canary(), rollout.Primary(), live)
	require.NoError(t, err)
	rules, _, _ := unstructured.NestedSlice(promoted.Object, "spec", "rules")
	require.Len(t, rules, 2)
	assert.Contains(t, planTestYAML(t, rules[0]), "name: admin")
	assert.Contains(t, planTestYAML(t, rules[1]), "name: podinfo-primary")
}

func planTestYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	require.NoError(t, err)
	return string(data)
}
