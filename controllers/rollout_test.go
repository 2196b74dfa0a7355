package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

const rolloutTimeout = 90 * time.Second

// canaryBackendWeights reads the primary and canary weights off a route's rule.
func canaryBackendWeights(t *testing.T, rule gatewayv1.HTTPRouteRule) (primary, canary int32) {
	t.Helper()
	for _, b := range rule.BackendRefs {
		switch b.Name {
		case "podinfo-primary":
			primary = ptr.Deref(b.Weight, 1)
		case "podinfo-canary":
			canary = ptr.Deref(b.Weight, 1)
		default:
			t.Fatalf("unexpected backend %s", b.Name)
		}
	}
	return primary, canary
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())

	cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	ready := readyCondition(cn)
	require.NotNil(t, ready)
	assert.Equal(t, metav1.ConditionTrue, ready.Status)
	assert.Equal(t, cn.Generation, ready.ObservedGeneration)
	assert.Equal(t, cn.Generation, cn.Status.ObservedGeneration)
	assert.True(t, meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionPromoted))
	assert.Nil(t, meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReconciling))
	assert.NotEmpty(t, cn.Status.LastPromotedSpec)

	primary := c.deployment("podinfo-primary")
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, primary.Spec.Selector.MatchLabels)
	assert.Equal(t, "podinfo-primary", primary.Spec.Template.Labels["app"])
	assert.Equal(t, "podinfo:1.0", primary.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, int32(2), *primary.Spec.Replicas, "the primary takes the target's replica count")
	assert.True(t, metav1.IsControlledBy(primary, cn))

	c.eventuallyReplicas("podinfo", 0, "the target is scaled to zero between rollouts")

	for name, app := range map[string]string{"podinfo": "podinfo-primary", "podinfo-primary": "podinfo-primary", "podinfo-canary": "podinfo"} {
		svc := &corev1.Service{}
		require.False(t, c.notFound(svc, name), "service %s", name)
		assert.Equal(t, map[string]string{"app": app}, svc.Spec.Selector, "service %s", name)
		assert.Equal(t, int32(9898), svc.Spec.Ports[0].Port)
	}

	route := c.route("podinfo")
	assert.True(t, metav1.IsControlledBy(route, cn))
	require.Len(t, route.Spec.ParentRefs, 1)
	assert.Equal(t, gatewayv1.ObjectName("public-gw"), route.Spec.ParentRefs[0].Name)
	assert.Equal(t, []gatewayv1.Hostname{"podinfo.example.com"}, route.Spec.Hostnames)
	require.Len(t, route.Spec.Rules, 1)
	p, cw := canaryBackendWeights(t, route.Spec.Rules[0])
	assert.Equal(t, [2]int32{100, 0}, [2]int32{p, cw})
	assert.NotEmpty(t, c.eventsEventually(rollout.ReasonInitialized, 1))
	assert.Empty(t, c.events(rollout.ReasonRouteDrift), "trafficctl's own writes are no drift")

	// A route edited by hand is put back, and an event says so.
	for i := range route.Spec.Rules[0].BackendRefs {
		route.Spec.Rules[0].BackendRefs[i].Weight = ptr.To[int32](50)
	}
	require.NoError(t, k8s.Update(context.Background(), route, client.FieldOwner("someone")))
	require.Eventually(t, func() bool {
		p, cw := canaryBackendWeights(t, c.route("podinfo").Spec.Rules[0])
		return p == 100 && cw == 0
	}, 30*time.Second, 50*time.Millisecond, "the route is put back")
	drift := c.eventsEventually(rollout.ReasonRouteDrift, 1)
	require.Len(t, drift, 1)
	assert.Equal(t, "HTTPRoute "+c.ns+"/podinfo was changed outside trafficctl: it carried primary 50% / canary 50% instead of primary 100% / canary 0%, and is written back. If a GitOps tool applies it, see docs/gitops.md.", drift[0])
}

func TestHealthyRevisionIsPromoted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))

	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the route walked every step, then went back to the primary")
	assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image, "the primary runs the new revision")
	c.eventuallyReplicas("podinfo", 0, "the canary is scaled down")
	assert.Equal(t, cn.Status.LastAppliedSpec, cn.Status.LastPromotedSpec)
	assert.Equal(t, int32(0), cn.Status.FailedChecks)
	assert.True(t, meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionReady))

	// Every step was judged on a real query answered by Prometheus.
	require.GreaterOrEqual(t, len(cn.Status.Decisions), 2)
	for _, d := range cn.Status.Decisions {
		assert.Equal(t, v1alpha1.VerdictPass, d.Verdict, d.Message)
		assert.Equal(t, "100", d.Value)
		assert.Equal(t, ">= 99", d.Bound)
		assert.Contains(t, d.Query, `namespace="`+c.ns+`"`)
	}
	steps := []int32{}
	for _, d := range cn.Status.Decisions {
		steps = append(steps, d.Step)
	}
	assert.Subset(t, steps, []int32{1, 2})
	assert.Len(t, c.eventsEventually(rollout.ReasonStepAdvanced, 2), 2)
	assert.Len(t, c.eventsEventually(rollout.ReasonSucceeded, 1), 1)
}

func TestFailingRevisionIsRolledBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(failing, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))

	assert.Equal(t, int32(2), cn.Status.FailedChecks)
	assert.Equal(t, int32(0), cn.Status.CanaryWeight)
	c.eventuallyWeights([]int32{0, 10, 0}, "the canary never got past the first step")
	p, cw := canaryBackendWeights(t, c.route("podinfo").Spec.Rules[0])
	assert.Equal(t, [2]int32{100, 0}, [2]int32{p, cw}, "all traffic is back on the primary")
	assert.Equal(t, "podinfo:1.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image, "the primary keeps the good revision")
	c.eventuallyReplicas("podinfo", 0, "the canary is scaled down")

	ready := readyCondition(cn)
	require.NotNil(t, ready)
	assert.Equal(t, metav1.ConditionFalse, ready.Status)
	assert.Equal(t, rollout.ReasonCheckFailed, ready.Reason)
	assert.Contains(t, ready.Message, "request-success-rate is 90, outside >= 99")
	assert.True(t, meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled))
	assert.True(t, meta.IsStatusConditionFalse(cn.Status.Conditions, rollout.ConditionPromoted))

	require.NotEmpty(t, cn.Status.Decisions)
	last := cn.Status.Decisions[0]
	assert.Equal(t, v1alpha1.VerdictFail, last.Verdict)
	assert.Equal(t, "90", last.Value)
	assert.Equal(t, int32(10), last.CanaryWeight)
	rolledBack := c.eventsEventually(rollout.ReasonRolledBack, 1)
	require.Len(t, rolledBack, 1)
	assert.Contains(t, rolledBack[0], "request-success-rate is 90")
}

func TestChangedConfigMapStartsARollout(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config", Namespace: c.ns}, Data: map[string]string{"color": "blue"}})
	d := c.createTarget("podinfo:1.0", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}}}}
	})
	c.startController()
	c.create(c.newCanary())
	before := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	cm := &corev1.ConfigMap{}
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "podinfo-config"}, cm))
	cm.Data["color"] = "green"
	require.NoError(t, k8s.Update(context.Background(), cm))

	cn := c.waitFor("promotion of the new configuration", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.NotEqual(t, before.Status.LastPromotedSpec, cn.Status.LastPromotedSpec, "the ConfigMap's data is part of the revision")
	assert.Equal(t, d.Spec.Template.Spec.Containers[0].Image, c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the new configuration went through every step")
}

func TestStepWaitsForTheGatewayToAcceptTheWeights(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.holdRoutes.Store(true)
	c.setImage("podinfo:2.0")
	c.waitFor("the first step's weights", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		r := readyCondition(cn)
		return cn.Status.Step == 1 && r != nil && r.Reason == rollout.ReasonWaitingForRoute
	})
	// Three analysis intervals pass with the route not accepted: the step must not start.
	held := time.Now()
	for time.Since(held) < 9*time.Second {
		cn := c.canary()
		require.Nil(t, cn.Status.StepStartedAt, "the step started before the Gateway accepted it")
		require.Empty(t, cn.Status.Decisions, "checks ran before the Gateway accepted the step")
		require.Equal(t, int32(1), cn.Status.Step)
		time.Sleep(200 * time.Millisecond)
	}
	assert.Contains(t, readyMessage(c.canary()), "Waiting for the route to accept primary 90% / canary 10%")

	c.holdRoutes.Store(false)
	cn := c.waitFor("promotion once accepted", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.NotEmpty(t, cn.Status.Decisions)
}

func TestProgressDeadlineRollsBackACanaryThatNeverBecomesReady(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.ProgressDeadlineSeconds = ptr.To[int32](3) }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.breakDeployment("podinfo")
	c.setImage("podinfo:crashing")
	c.waitFor("the canary to be scaled up", 10*time.Second, phaseIs(v1alpha1.PhaseProgressing))
	cn := c.waitFor("rollback", 30*time.Second, phaseIs(v1alpha1.PhaseFailed))

	assert.Equal(t, []int32{0}, c.weightsSeen(), "traffic never left the primary")
	ready := readyCondition(cn)
	require.NotNil(t, ready)
	assert.Equal(t, rollout.ReasonProgressDeadline, ready.Reason)
	assert.Contains(t, ready.Message, "did not become ready within 3s")
	assert.Contains(t, ready.Message, "0 of 2 replicas available")
	c.eventuallyReplicas("podinfo", 0, "the canary is scaled down")
}

func TestNewerRevisionMidRolloutRestartsTheAnalysis(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = []int32{10, 30, 50} }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	first := c.waitFor("step 2 of the first revision", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 2 })
	c.setImage("podinfo:3.0")
	cn := c.waitFor("promotion of the newer revision", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))

	assert.NotEqual(t, first.Status.LastAppliedSpec, cn.Status.LastPromotedSpec)
	assert.Equal(t, "podinfo:3.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	c.eventuallyWeights([]int32{0, 10, 30, 0, 10, 30, 50, 0}, "the newer revision started again from the first step")
	superseded := c.eventsEventually(rollout.ReasonNewRevision, 2)
	require.Len(t, superseded, 2)
	assert.Contains(t, superseded[1], "supersedes revision "+first.Status.LastAppliedSpec)
}

func TestRestartedControllerResumesTheSameStep(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stop := c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = []int32{10, 30, 50} }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	c.waitFor("step 2", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 2 })
	stop()
	stopped := c.canary()
	require.Equal(t, int32(2), stopped.Status.Step, "the old manager is gone at step 2")

	c.startController()
	var stepsAfter []int32
	cn := c.waitFor("promotion by the new manager", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		if cn.Status.Phase == v1alpha1.PhaseProgressing {
			stepsAfter = append(stepsAfter, cn.Status.Step)
		}
		return cn.Status.Phase == v1alpha1.PhaseSucceeded
	})

	assert.Equal(t, stopped.Status.LastAppliedSpec, cn.Status.LastPromotedSpec, "the same revision was promoted")
	for _, s := range stepsAfter {
		assert.GreaterOrEqual(t, s, int32(2), "no step before 2 after the restart")
	}
	c.eventuallyWeights([]int32{0, 10, 30, 50, 0}, "no weight was written twice or skipped")
	var judgedAfter []int32
	for _, d := range cn.Status.Decisions[:len(cn.Status.Decisions)-len(stopped.Status.Decisions)] {
		judgedAfter = append(judgedAfter, d.Step)
	}
	assert.Equal(t, stopped.Status.Decisions, cn.Status.Decisions[len(cn.Status.Decisions)-len(stopped.Status.Decisions):], "the old decisions are kept as they were")
	assert.Contains(t, judgedAfter, int32(2), "step 2 was judged by the new manager")
	assert.NotContains(t, judgedAfter, int32(1), "step 1 was not judged again")
	assert.Len(t, c.eventsEventually(rollout.ReasonNewRevision, 1), 1, "the rollout was not started again")
}

func TestMissingTargetCreatesNothing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.startController()
	c.create(c.newCanary())

	cn := c.waitFor("TargetNotFound", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		r := readyCondition(cn)
		return r != nil && r.Reason == rollout.ReasonTargetNotFound
	})
	assert.Equal(t, metav1.ConditionFalse, readyCondition(cn).Status)
	assert.Contains(t, readyCondition(cn).Message, "Deployment "+c.ns+"/podinfo, the Canary's target, does not exist")
	assert.True(t, c.notFound(&appsv1.Deployment{}, "podinfo-primary"))
	assert.True(t, c.notFound(&corev1.Service{}, "podinfo"))
	assert.True(t, c.notFound(&gatewayv1.HTTPRoute{}, "podinfo"))

	c.createTarget("podinfo:1.0")
	c.waitFor("initialization once the target exists", 60*time.Second, phaseIs(v1alpha1.PhaseInitialized))
}

// analysisHolds runs a rollout whose only check cannot be judged, and asserts that the step
// holds with the given reason and that nothing counts as a failed check.
func analysisHolds(t *testing.T, c *cluster, reason string, verdict v1alpha1.Verdict, messagePart string) {
	t.Helper()
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	cn := c.waitFor(reason, rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		r := readyCondition(cn)
		return r != nil && r.Reason == reason
	})
	firstCheck := cn.Status.LastCheckedAt.Time
	cn = c.waitFor("a second round of checks", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return cn.Status.LastCheckedAt != nil && cn.Status.LastCheckedAt.After(firstCheck)
	})
	assert.Equal(t, v1alpha1.PhaseProgressing, cn.Status.Phase)
	assert.Equal(t, int32(1), cn.Status.Step, "the step holds")
	assert.Equal(t, int32(10), cn.Status.CanaryWeight)
	assert.Equal(t, int32(0), cn.Status.FailedChecks, "not a failed check")
	assert.Equal(t, reason, readyCondition(cn).Reason)
	assert.Contains(t, readyCondition(cn).Message, messagePart)
	require.NotEmpty(t, cn.Status.Decisions)
	assert.Equal(t, verdict, cn.Status.Decisions[0].Verdict)
	assert.Contains(t, cn.Status.Decisions[0].Message, messagePart)
}

func TestUnreachablePrometheusHoldsTheStep(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	metric := c.unreachableMetric()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric}
		// Within the grace the step holds where it is; past it see TestAnalysisOutage...
		cn.Spec.Analysis.UnavailableGrace = "1m"
	}))
	analysisHolds(t, c, rollout.ReasonAnalysisUnavailable, v1alpha1.VerdictError, "connection refused")
}

func TestQueryWithoutDataHoldsTheStep(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	metric := c.absentMetric()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric} }))
	analysisHolds(t, c, rollout.ReasonNoData, v1alpha1.VerdictNoData, "no data")
}

// userRoute is a route a user wrote before adopting trafficctl: the apex rule carries a match,
// a header filter and timeouts; other rules go elsewhere or redirect.
func userRoute(ns string) *gatewayv1.HTTPRoute {
	pathPrefix := gatewayv1.PathMatchPathPrefix
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "storefront", Namespace: ns, Labels: map[string]string{"owner": "shop-team"}, Annotations: map[string]string{"note": "hand written"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public-gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}}},
			Hostnames:       []gatewayv1.Hostname{"shop.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{
				{
					Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &pathPrefix, Value: ptr.To("/api")}}},
					Filters: []gatewayv1.HTTPRouteFilter{{
						Type:                  gatewayv1.HTTPRouteFilterRequestHeaderModifier,
						RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "x-team", Value: "shop"}}},
					}},
					Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("10s"))},
					BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "podinfo", Port: ptr.To(gatewayv1.PortNumber(9898))}}}},
				},
				{
					Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &pathPrefix, Value: ptr.To("/cart")}}},
					BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "cart", Port: ptr.To(gatewayv1.PortNumber(8080))}}}},
				},
				{
					Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: &pathPrefix, Value: ptr.To("/old")}}},
					Filters: []gatewayv1.HTTPRouteFilter{{
						Type:            gatewayv1.HTTPRouteFilterRequestRedirect,
						RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/api")}, StatusCode: ptr.To(301)},
					}},
				},
			},
		},
	}
}

func TestUserOwnedRouteKeepsEverythingButTheApexBackends(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.create(userRoute(c.ns))
	original := c.route("storefront")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
		cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: "storefront"}
	}))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	assertUntouched := func(r *gatewayv1.HTTPRoute) {
		t.Helper()
		assert.Equal(t, original.Spec.ParentRefs, r.Spec.ParentRefs)
		assert.Equal(t, original.Spec.Hostnames, r.Spec.Hostnames)
		assert.Equal(t, original.Labels, r.Labels)
		assert.Equal(t, original.Spec.Rules[1:], r.Spec.Rules[1:], "the other rules are the user's")
		assert.Equal(t, original.Spec.Rules[0].Matches, r.Spec.Rules[0].Matches)
		assert.Equal(t, original.Spec.Rules[0].Filters, r.Spec.Rules[0].Filters)
		assert.Equal(t, original.Spec.Rules[0].Timeouts, r.Spec.Rules[0].Timeouts)
	}
	r := c.route("storefront")
	assertUntouched(r)
	p, cw := canaryBackendWeights(t, r.Spec.Rules[0])
	assert.Equal(t, [2]int32{100, 0}, [2]int32{p, cw})

	c.setImage("podinfo:2.0")
	sawMidway := false
	c.waitFor("promotion", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		if cn.Status.Step == 2 && cn.Status.Phase == v1alpha1.PhaseProgressing && !sawMidway {
			r := c.route("storefront")
			assertUntouched(r)
			sawMidway = true
		}
		return cn.Status.Phase == v1alpha1.PhaseSucceeded
	})
	assert.True(t, sawMidway, "the route was inspected mid-rollout")
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the route walked every step")
	assertUntouched(c.route("storefront"))

	require.NoError(t, k8s.Delete(context.Background(), c.canary()))
	require.Eventually(t, func() bool { return c.notFound(&v1alpha1.Canary{}, "podinfo") }, 30*time.Second, 100*time.Millisecond)
	restored := c.route("storefront")
	assert.Equal(t, original.Spec, restored.Spec, "the route is exactly what the user wrote")
	assert.Equal(t, original.Annotations, restored.Annotations)
	assert.Equal(t, original.Labels, restored.Labels)
}

func TestUserOwnedRouteWithoutTheApexServiceStalls(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	route := userRoute(c.ns)
	route.Spec.Rules = route.Spec.Rules[1:]
	c.create(route)
	original := c.route("storefront")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
		cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: "storefront"}
	}))

	cn := c.waitFor("Stalled", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled)
	})
	stalled := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionStalled)
	assert.Equal(t, rollout.ReasonInvalidRoute, stalled.Reason)
	assert.Contains(t, stalled.Message, "HTTPRoute "+c.ns+"/storefront")
	assert.Contains(t, stalled.Message, "podinfo")
	assert.Equal(t, original.Spec, c.route("storefront").Spec, "nothing was written to the route")
	assert.NotEmpty(t, c.eventsEventually(rollout.ReasonInvalidRoute, 1))
}

func TestInvalidSpecIsRejectedByTheAPIServer(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	c := &cluster{t: t, ns: ns}
	tests := []struct {
		name    string
		mod     func(*v1alpha1.Canary)
		message string
	}{
		{"both stepWeight and stepWeights", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeight = ptr.To[int32](10) }, "set exactly one of analysis.stepWeight, analysis.stepWeights (a weighted canary) or analysis.iterations"},
		{"neither stepWeight nor stepWeights", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = nil }, "set exactly one of analysis.stepWeight, analysis.stepWeights (a weighted canary) or analysis.iterations"},
		{"a weight over 100", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = []int32{10, 101} }, "should be less than or equal to 100"},
		{"steps not increasing", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = []int32{50, 10} }, "analysis.stepWeights must be strictly increasing"},
		{"maxWeight below a step", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.MaxWeight = ptr.To[int32](5) }, "every analysis.stepWeights entry must be at most analysis.maxWeight"},
		{"maxWeight below stepWeight", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.StepWeights, cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.MaxWeight = nil, ptr.To[int32](20), ptr.To[int32](10)
		}, "analysis.maxWeight must be at least analysis.stepWeight"},
		{"an interval under a second", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "500ms" }, "analysis.interval must be a duration of at least 1s"},
		{"an interval that does not parse", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "often" }, "analysis.interval must be a duration of at least 1s"},
		{"an unknown built-in metric", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics[0].Name = "latency" }, "a metric is either a built-in"},
		{"a threshold range with no bound", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics[0].ThresholdRange = &v1alpha1.ThresholdRange{} }, "thresholdRange needs min, max or both"},
		{"no route at all", func(cn *v1alpha1.Canary) { cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil }, "provider gatewayapi needs service.parentRefs"},
		{"both a route of one's own and parentRefs", func(cn *v1alpha1.Canary) {
			cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: "mine"}
		}, "with service.httpRouteRef your route keeps its own"},
		{"iterations with weights", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Iterations = ptr.To[int32](3) }, "set exactly one of analysis.stepWeight, analysis.stepWeights (a weighted canary) or analysis.iterations"},
		{"a match without iterations", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Match = abMatch("x-canary", v1alpha1.StringMatch{Exact: "insider"})
		}, "analysis.match selects the A/B cohort"},
		{"an empty regex", func(cn *v1alpha1.Canary) {
			abTest(cn)
			cn.Spec.Analysis.Match = abMatch("x-canary", v1alpha1.StringMatch{Regex: ""})
		}, "set exactly one of exact, prefix or regex"},
		{"two conditions on one header", func(cn *v1alpha1.Canary) {
			abTest(cn)
			cn.Spec.Analysis.Match = abMatch("x-canary", v1alpha1.StringMatch{Exact: "a", Prefix: "b"})
		}, "set exactly one of exact, prefix or regex"},
		{"a match entry with no condition", func(cn *v1alpha1.Canary) {
			abTest(cn)
			cn.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{}}
		}, "an analysis.match entry needs headers, cookies or queryParams"},
		{"a header name with a space", func(cn *v1alpha1.Canary) {
			abTest(cn)
			cn.Spec.Analysis.Match = abMatch("x canary", v1alpha1.StringMatch{Exact: "a"})
		}, "analysis.match headers must be HTTP header names"},
		{"a metric with no judge", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics[0].ThresholdRange = nil }, "a metric needs exactly one judge"},
		{"a metric with two judges", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0].Sequential = &v1alpha1.SequentialTest{}
		}, "a metric needs exactly one judge"},
		{"a sequential test of the request rate", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0] = v1alpha1.CanaryMetric{Name: "request-rate", Sequential: &v1alpha1.SequentialTest{}}
		}, "the sequential test judges request outcomes"},
		{"a sequential request-duration without slowerThan", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0] = v1alpha1.CanaryMetric{Name: "request-duration", Sequential: &v1alpha1.SequentialTest{}}
		}, "needs sequential.slowerThan"},
		{"a tolerance below 1", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0] = v1alpha1.CanaryMetric{Name: "request-success-rate", Sequential: &v1alpha1.SequentialTest{Tolerance: ptr.To(0.5)}}
		}, "should be greater than or equal to 1"},
		{"a comparison of a template without a direction", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0] = v1alpha1.CanaryMetric{Name: "mine", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "t"}, Compare: &v1alpha1.MetricComparison{Tolerance: 1}}
		}, "compare.direction is needed with templateRef"},
		{"a confidence for a ratio", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0] = v1alpha1.CanaryMetric{Name: "request-duration", Compare: &v1alpha1.MetricComparison{Tolerance: 1, Confidence: ptr.To(0.9)}}
		}, "compare.confidence belongs to method mann-whitney"},
		{"templateVariables without a template", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Metrics[0].TemplateVariables = map[string]string{"a": "b"}
		}, "templateVariables are for the MetricTemplate in templateRef"},
		{"a check interval under a second", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.CheckInterval = "500ms" }, "analysis.checkInterval must be a duration of at least 1s"},
		{"minRequests of zero", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.MinRequests = ptr.To[int64](0) }, "should be greater than or equal to 1"},
		{"an unknown metric set", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.MetricSet = "linkerd" }, "supported values: \"app\", \"istio\", \"envoy\""},
		{"mirror with an A/B match", func(cn *v1alpha1.Canary) { abTest(cn); cn.Spec.Analysis.Mirror = true }, "analysis.mirror cannot be combined with analysis.match"},
		{"mirrorWeight without mirror", func(cn *v1alpha1.Canary) { cn.Spec.Analysis.MirrorWeight = ptr.To[int32](20) }, "analysis.mirrorWeight needs analysis.mirror: true"},
		{"session affinity with blue/green", func(cn *v1alpha1.Canary) {
			blueGreen(cn)
			cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary"}
		}, "analysis.sessionAffinity keeps users on a weighted canary"},
		{"the same cookie for both versions", func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "v", PrimaryCookieName: "v"}
		}, "primaryCookieName must differ from cookieName"},
		{"blue/green without a mesh combined with weights", func(cn *v1alpha1.Canary) {
			kubernetesProvider(cn)
			cn.Spec.Analysis.Iterations = ptr.To[int32](3)
		}, "set exactly one of analysis.stepWeight, analysis.stepWeights (a weighted canary) or analysis.iterations"},
		{"mirroring without a mesh", func(cn *v1alpha1.Canary) {
			kubernetesProvider(cn)
			blueGreen(cn)
			cn.Spec.Analysis.Mirror = true
		}, "provider kubernetes switches a Service's selector and cannot select requests by header, mirror them or pin sessions"},
		{"a replica-ratio canary at 100%", func(cn *v1alpha1.Canary) {
			kubernetesProvider(cn)
			cn.Spec.Analysis.StepWeights = []int32{50, 100}
		}, "with provider kubernetes a canary's share comes from replica counts"},
		{"a replica-ratio stepWeight without maxWeight", func(cn *v1alpha1.Canary) {
			kubernetesProvider(cn)
			cn.Spec.Analysis.StepWeights, cn.Spec.Analysis.StepWeight = nil, ptr.To[int32](25)
		}, "with provider kubernetes a canary's share comes from replica counts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn := c.newCanary(tt.mod)
			cn.Name = strings.ReplaceAll(strings.ToLower(tt.name), " ", "-")
			err := k8s.Create(context.Background(), cn)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
	require.NoError(t, k8s.Create(context.Background(), c.newCanary()), "the base Canary is valid")
}
