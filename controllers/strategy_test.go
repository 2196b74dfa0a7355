package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/controllers"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/providers/router/istio"
	"github.com/trafficctl/trafficctl/providers/router/kubernetes"
	"github.com/trafficctl/trafficctl/rollout"
)

func abMatch(header string, m v1alpha1.StringMatch) []v1alpha1.HTTPMatch {
	return []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{header: m}}}
}

// abTest turns the suite's Canary into an A/B experiment of two iterations for x-canary: insider.
func abTest(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.StepWeights = nil
	cn.Spec.Analysis.Iterations = ptr.To[int32](2)
	cn.Spec.Analysis.Match = abMatch("x-canary", v1alpha1.StringMatch{Exact: "insider"})
}

// blueGreen turns the suite's Canary into a blue/green rollout of two iterations.
func blueGreen(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.StepWeights = nil
	cn.Spec.Analysis.Iterations = ptr.To[int32](2)
}

// kubernetesProvider routes the suite's Canary through the apex Service's selector alone.
func kubernetesProvider(cn *v1alpha1.Canary) {
	cn.Spec.Provider = v1alpha1.ProviderKubernetes
	cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
}

// sharedLabel gives the target's pods a label outside its selector, which the primary's pods
// copy, so one Service can select both (provider kubernetes, replica ratio).
func sharedLabel(d *appsv1.Deployment) {
	d.Spec.Template.Labels = map[string]string{"app": "podinfo", "app.kubernetes.io/name": "podinfo"}
}

// watchRouting records every routing the Canary's route carries, as its own router reads it.
func (c *cluster) watchRouting(provider v1alpha1.Provider) *testenv.RoutingLog {
	c.t.Helper()
	var rt controllers.Router
	switch provider {
	case v1alpha1.ProviderIstio:
		rt = istio.New(k8s, controllers.FieldManager)
	case v1alpha1.ProviderKubernetes:
		rt = kubernetes.New(k8s, controllers.FieldManager)
	default:
		rt = gatewayapi.New(k8s, controllers.FieldManager)
	}
	log, err := testenv.WatchRouting(env.Config, c.ns, func(ctx context.Context) (rollout.State, error) {
		cn := &v1alpha1.Canary{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: "podinfo"}, cn); err != nil {
			return rollout.State{}, err
		}
		return rt.Observe(ctx, cn)
	})
	require.NoError(c.t, err)
	c.t.Cleanup(log.Stop)
	return log
}

// eventuallyRoutings waits until the route has carried exactly want, in order, after the resting
// routing it carried when the log started.
func eventuallyRoutings(t *testing.T, log *testenv.RoutingLog, want []rollout.Routing, msg string) {
	t.Helper()
	want = append([]rollout.Routing{rollout.Primary()}, want...)
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, log.Routings()) }, 15*time.Second, 50*time.Millisecond,
		"%s: want %v", msg, want)
	assert.Equal(t, want, log.Routings(), msg)
}

// meshes are the providers that route by request, each with what turns the suite's Canary to it.
var meshes = []struct {
	provider v1alpha1.Provider
	mod      func(*v1alpha1.Canary)
}{
	{v1alpha1.ProviderGatewayAPI, func(*v1alpha1.Canary) {}},
	{v1alpha1.ProviderIstio, istioCanary},
}

func TestABTestingSendsTheCohortToTheCanaryOnEveryMesh(t *testing.T) {
	t.Parallel()
	for _, mesh := range meshes {
		t.Run(string(mesh.provider), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.setTraffic(healthy, healthy)
			c.createTarget("podinfo:1.0")
			c.startController()
			c.create(c.newCanary(mesh.mod, abTest))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
			log := c.watchRouting(mesh.provider)

			c.setImage("podinfo:2.0")
			cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
			eventuallyRoutings(t, log, []rollout.Routing{
				{Weights: rollout.ForCanary(0), Cohort: true},
				rollout.Primary(),
			}, "the cohort went to the canary for the experiment, then everyone back to the promoted primary")
			assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
			passed := 0
			for _, d := range cn.Status.Decisions {
				if d.Verdict == v1alpha1.VerdictPass {
					passed++
				}
			}
			assert.Equal(t, 2, passed, "one passing round of checks per iteration")
			c.eventuallyWeights([]int32{0}, "the split itself never gave the canary a share")
		})
	}
}

func TestBlueGreenSwitchesAtOnceOnEveryRouter(t *testing.T) {
	t.Parallel()
	routers := append(meshes[:len(meshes):len(meshes)], struct {
		provider v1alpha1.Provider
		mod      func(*v1alpha1.Canary)
	}{v1alpha1.ProviderKubernetes, kubernetesProvider})
	for _, rt := range routers {
		t.Run(string(rt.provider), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.setTraffic(healthy, healthy)
			c.createTarget("podinfo:1.0")
			c.startController()
			mirror := rt.provider != v1alpha1.ProviderKubernetes
			c.create(c.newCanary(rt.mod, blueGreen, func(cn *v1alpha1.Canary) {
				if mirror {
					cn.Spec.Analysis.Mirror = true
					cn.Spec.Analysis.MirrorWeight = ptr.To[int32](50)
				}
			}))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
			log := c.watchRouting(rt.provider)

			c.setImage("podinfo:2.0")
			c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
			want := []rollout.Routing{{Weights: rollout.ForCanary(100)}, rollout.Primary()}
			if mirror {
				want = append([]rollout.Routing{{Weights: rollout.ForCanary(0), Mirror: 50}}, want...)
			}
			eventuallyRoutings(t, log, want, "iterations (mirrored), one switch to the canary, one switch back to the promoted primary")
			assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
			assert.NotEmpty(t, c.eventsEventually(rollout.ReasonSwitching, 1))
			if rt.provider == v1alpha1.ProviderKubernetes {
				apex := &corev1.Service{}
				require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "podinfo"}, apex))
				assert.Equal(t, map[string]string{"app": "podinfo-primary"}, apex.Spec.Selector, "the apex Service selects the primary's pods again")
			}
		})
	}
}

func TestBlueGreenThatFailsNeverSwitches(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(failing, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(kubernetesProvider, blueGreen))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	log := c.watchRouting(v1alpha1.ProviderKubernetes)

	c.setImage("podinfo:2.0")
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	assert.Equal(t, int32(2), cn.Status.FailedChecks)
	eventuallyRoutings(t, log, nil, "users never left the primary")
	c.eventuallyReplicas("podinfo", 0, "the canary is scaled down")
}

func TestStickySessionsOnEveryMesh(t *testing.T) {
	t.Parallel()
	for _, mesh := range meshes {
		t.Run(string(mesh.provider), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.setTraffic(healthy, healthy)
			c.createTarget("podinfo:1.0")
			c.startController()
			c.create(c.newCanary(mesh.mod, func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "primary"}
			}))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
			log := c.watchRouting(mesh.provider)

			c.setImage("podinfo:2.0")
			cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
			rev := cn.Status.LastPromotedSpec
			eventuallyRoutings(t, log, []rollout.Routing{
				{Weights: rollout.ForCanary(10), Sticky: rev},
				{Weights: rollout.ForCanary(50), Sticky: rev},
				{Weights: rollout.ForCanary(100)},
				rollout.Primary(),
			}, "every step pinned users with this rollout's cookie; everyone on the canary while the primary was updated; then the promoted primary")
		})
	}
}

func TestMirrorBeforeTheFirstWeightedStepOnEveryMesh(t *testing.T) {
	t.Parallel()
	for _, mesh := range meshes {
		t.Run(string(mesh.provider), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.setTraffic(healthy, healthy)
			c.createTarget("podinfo:1.0")
			c.startController()
			c.create(c.newCanary(mesh.mod, func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Mirror = true }))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
			log := c.watchRouting(mesh.provider)

			c.setImage("podinfo:2.0")
			c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
			eventuallyRoutings(t, log, []rollout.Routing{
				{Weights: rollout.ForCanary(0), Mirror: 100},
				{Weights: rollout.ForCanary(10)},
				{Weights: rollout.ForCanary(50)},
				rollout.Primary(),
			}, "a mirrored step, then the weighted ones")
		})
	}
}

func TestReplicaRatioWithoutAMesh(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0", sharedLabel, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](9) })
	c.startController()
	c.create(c.newCanary(kubernetesProvider))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	apex := &corev1.Service{}
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "podinfo"}, apex))
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "podinfo"}, apex.Spec.Selector, "one Service selects the pods of both")
	log := c.watchRouting(v1alpha1.ProviderKubernetes)

	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 && cn.Status.StepStartedAt != nil })
	assert.Equal(t, int32(1), ptr.Deref(c.deployment("podinfo").Spec.Replicas, -1), "9 primaries and 1 canary pod make 10%")
	assert.Equal(t, int32(9), ptr.Deref(c.deployment("podinfo-primary").Spec.Replicas, -1))
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	eventuallyRoutings(t, log, []rollout.Routing{
		{Weights: rollout.ForCanary(10)},
		{Weights: rollout.ForCanary(50)},
		rollout.Primary(),
	}, "the shares the ready pods made")
	c.eventuallyReplicas("podinfo", 0, "the canary is scaled down after promotion")
}

func TestReplicaRatioNeedsASharedLabel(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(kubernetesProvider))
	cn := c.waitFor("Stalled", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled)
	})
	stalled := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionStalled)
	assert.Equal(t, rollout.ReasonInvalidRoute, stalled.Reason)
	assert.Contains(t, stalled.Message, "app.kubernetes.io/name")
	assert.True(t, c.notFound(&corev1.Service{}, "podinfo"), "no apex Service was written")
}

func TestInvalidMatchRegexStalls(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(abTest, func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Match = abMatch("x-canary", v1alpha1.StringMatch{Regex: "insider(["})
	}))
	cn := c.waitFor("Stalled", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled)
	})
	stalled := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionStalled)
	assert.Equal(t, rollout.ReasonInvalidSpec, stalled.Reason)
	assert.Contains(t, stalled.Message, "analysis.match[0].headers[x-canary].regex")
	assert.True(t, c.notFound(&appsv1.Deployment{}, "podinfo-primary"), "nothing was created")
	assert.NotEmpty(t, c.eventsEventually(rollout.ReasonInvalidSpec, 1))
}
