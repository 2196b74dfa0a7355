package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/controllers"
	"github.com/trafficctl/trafficctl/rollout"
)

// deleteAndWaitGone deletes the Canary, records the phases it went through, and waits until it is
// gone.
func (c *cluster) deleteAndWaitGone(timeout time.Duration) []v1alpha1.CanaryPhase {
	c.t.Helper()
	require.NoError(c.t, k8s.Delete(context.Background(), c.canary()))
	var phases []v1alpha1.CanaryPhase
	require.Eventually(c.t, func() bool {
		cn := &v1alpha1.Canary{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "podinfo"}, cn); err != nil {
			return c.notFound(&v1alpha1.Canary{}, "podinfo")
		}
		if n := len(phases); n == 0 || phases[n-1] != cn.Status.Phase {
			phases = append(phases, cn.Status.Phase)
		}
		return false
	}, timeout, 50*time.Millisecond, "the Canary is gone once it handed the app back")
	return phases
}

func ownedBy(obj metav1.Object, uid string) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if string(ref.UID) == uid {
			return true
		}
	}
	return false
}

// TestDeletionHandsTheAppBack: deleting a promoted Canary scales the target back up to the
// primary's replicas, points the apex Service at its pods and the route at the apex Service, and
// only then lets the Canary go; the apex Service and the route stay, as the user's.
func TestDeletionHandsTheAppBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) })
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	uid := string(cn.UID)
	c.eventuallyReplicas("podinfo", 0, "the canary rests at 0 between rollouts")

	phases := c.deleteAndWaitGone(60 * time.Second)
	assert.Contains(t, phases, v1alpha1.PhaseTerminating, "the deletion shows as Terminating while it hands back")

	target := c.deployment("podinfo")
	assert.Equal(t, int32(3), *target.Spec.Replicas, "the target runs the primary's replicas again")
	assert.Equal(t, "podinfo:2.0", target.Spec.Template.Spec.Containers[0].Image)

	apex := &corev1.Service{}
	require.False(t, c.notFound(apex, "podinfo"))
	assert.Equal(t, map[string]string{"app": "podinfo"}, apex.Spec.Selector, "the apex Service selects the target's own pods")
	assert.False(t, ownedBy(apex, uid), "and outlives the Canary")
	assert.NotContains(t, apex.Labels, "app.kubernetes.io/managed-by")

	route := c.route("podinfo")
	assert.False(t, ownedBy(route, uid), "the route trafficctl created stays, as the user's")
	require.Len(t, route.Spec.Rules, 1)
	require.Len(t, route.Spec.Rules[0].BackendRefs, 1)
	assert.Equal(t, gatewayv1.ObjectName("podinfo"), route.Spec.Rules[0].BackendRefs[0].Name, "all traffic to the apex Service")
	assert.Equal(t, []gatewayv1.Hostname{"podinfo.example.com"}, route.Spec.Hostnames)

	// What the Canary still owned goes with it, through garbage collection (which envtest lacks;
	// the e2e suite runs the real one).
	assert.True(t, ownedBy(c.deployment("podinfo-primary"), uid))
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		svc := &corev1.Service{}
		require.False(t, c.notFound(svc, name))
		assert.True(t, ownedBy(svc, uid), "service %s", name)
	}
}

// TestDeletionMidRolloutHandsBackTheNewRevision: a Canary deleted mid-rollout hands the app back
// to the target as it stands, the revision being rolled out.
func TestDeletionMidRolloutHandsBackTheNewRevision(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "1m" }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })

	c.deleteAndWaitGone(60 * time.Second)
	apex := &corev1.Service{}
	require.False(t, c.notFound(apex, "podinfo"))
	assert.Equal(t, map[string]string{"app": "podinfo"}, apex.Spec.Selector)
	route := c.route("podinfo")
	require.Len(t, route.Spec.Rules, 1)
	assert.Equal(t, gatewayv1.ObjectName("podinfo"), route.Spec.Rules[0].BackendRefs[0].Name)
	assert.Equal(t, int32(2), *c.deployment("podinfo").Spec.Replicas)
}

// TestDeletionOrphanLeavesThePrimaryServing: with deletionPolicy Orphan the Canary goes at once,
// and everything it made stays serving, no longer owned by it.
func TestDeletionOrphanLeavesThePrimaryServing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.DeletionPolicy = v1alpha1.DeletionOrphan }))
	cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	uid := string(cn.UID)

	c.deleteAndWaitGone(30 * time.Second)
	assert.False(t, ownedBy(c.deployment("podinfo-primary"), uid), "the primary is no longer the Canary's")
	assert.Equal(t, int32(0), *c.deployment("podinfo").Spec.Replicas, "the target is left as it was")
	for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
		svc := &corev1.Service{}
		require.False(t, c.notFound(svc, name))
		assert.False(t, ownedBy(svc, uid), "service %s", name)
	}
	apex := &corev1.Service{}
	require.False(t, c.notFound(apex, "podinfo"))
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, apex.Spec.Selector, "the primary keeps serving")
	assert.False(t, ownedBy(c.route("podinfo"), uid))
}

// TestInvalidDeletionPolicyIsRefused: the CRD knows only Revert and Orphan.
func TestInvalidDeletionPolicyIsRefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	err := k8s.Create(context.Background(), c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.DeletionPolicy = "Keep" }))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `spec.deletionPolicy: Unsupported value: "Keep": supported values: "Revert", "Orphan"`)
}

// TestAnalysisOutageSendsTrafficBackAndResumes: checks that cannot reach their Prometheus past
// the grace send the step's traffic back to the primary, without a failed check; once they can,
// the step starts over and the rollout finishes.
func TestAnalysisOutageSendsTrafficBackAndResumes(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	metric := c.unreachableMetric()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric}
		cn.Spec.Analysis.UnavailableGrace = "5s"
	}))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")

	cn := c.waitFor("the outage hold", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Outage != nil && cn.Status.Outage.Held
	})
	assert.Equal(t, int32(1), cn.Status.Step, "the step is kept, to start over")
	assert.Equal(t, int32(0), cn.Status.CanaryWeight, "its traffic is back on the primary")
	assert.Zero(t, cn.Status.FailedChecks, "an outage is no failed check")
	assert.Equal(t, rollout.ReasonAnalysisUnavailable, readyCondition(cn).Reason)
	assert.Contains(t, readyCondition(cn).Message, "connection refused")
	c.eventuallyWeights([]int32{0, 10, 0}, "the canary's share went back to the primary")

	// Hold a few more check intervals: one event at the start, one at the hold, no more.
	time.Sleep(8 * time.Second)
	assert.Len(t, c.events(rollout.ReasonAnalysisUnavailable), 2, "an outage is told once when it starts and once at the hold")

	// Prometheus answers again.
	mt := &v1alpha1.MetricTemplate{}
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "unreachable"}, mt))
	mt.Spec.Provider.Address = prom.URL()
	require.NoError(t, k8s.Update(context.Background(), mt))
	cn = c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.Zero(t, cn.Status.History[0].WeightReached-50, "the rollout went on to its last step")
	c.eventuallyWeights([]int32{0, 10, 0, 10, 50, 0}, "step 1 started over, then the rollout finished")
	assert.NotEmpty(t, c.eventsEventually(rollout.ReasonAnalysisRestored, 1))
}

// scaleDeployment sets a Deployment's replicas as kubectl scale would, as a user, not as trafficctl.
func (c *cluster) scaleDeployment(name string, replicas int32) {
	c.t.Helper()
	require.NoError(c.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := c.deployment(name)
		d.Spec.Replicas = ptr.To(replicas)
		return k8s.Update(context.Background(), d)
	}))
}

// TestScalingTheTargetScalesThePrimary: without an autoscaler, a user who scales their Deployment
// scales the version that serves, between rollouts and during one.
func TestScalingTheTargetScalesThePrimary(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "1m" }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.eventuallyReplicas("podinfo", 0, "the canary rests at 0")

	c.scaleDeployment("podinfo", 5)
	c.eventuallyReplicas("podinfo-primary", 5, "the primary follows the user's count")
	c.eventuallyReplicas("podinfo", 0, "and the canary goes back to rest")
	assert.NotEmpty(t, c.eventsEventually(rollout.ReasonPrimaryScaled, 1))

	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })
	c.eventuallyReplicas("podinfo", 5, "a full canary runs as many pods as the primary")
	c.scaleDeployment("podinfo", 3)
	c.eventuallyReplicas("podinfo-primary", 3, "mid-rollout, the primary follows too")
	c.eventuallyReplicas("podinfo", 3, "and the canary with it")
}

// TestAnAutoscalerOwnsTheCanaryReplicas: with an autoscalerRef, trafficctl brings the canary up at
// the start and takes it to 0 at the end, and leaves its count to the autoscaler in between.
func TestAnAutoscalerOwnsTheCanaryReplicas(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.createHPA("podinfo")
	c.startController()
	c.create(c.newCanary(withAutoscaler, func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "5s" }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })
	c.scaleDeployment("podinfo", 4) // the autoscaler's doing
	assert.Never(t, func() bool { return *c.deployment("podinfo").Spec.Replicas != 4 }, 4*time.Second, 100*time.Millisecond,
		"trafficctl does not undo the autoscaler's count")
	assert.Equal(t, int32(2), *c.deployment("podinfo-primary").Spec.Replicas, "nor does the primary follow it: its own autoscaler sizes it")
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	c.eventuallyReplicas("podinfo", 0, "the canary goes to 0 at the end")
}

// TestProportionalCanary: a proportional canary runs the pods its next share needs, not as many as
// the primary.
func TestProportionalCanary(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](10) })
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.CanaryReplicas = v1alpha1.CanaryReplicasProportional
		cn.Spec.Analysis.StepWeights = []int32{5, 20, 50}
	}))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.eventuallyReplicas("podinfo", 0, "the canary rests at 0")
	var mu sync.Mutex
	var seen []int32
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d := &appsv1.Deployment{}
			if k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "podinfo"}, d) == nil {
				mu.Lock()
				if n := len(seen); n == 0 || seen[n-1] != *d.Spec.Replicas {
					seen = append(seen, *d.Spec.Replicas)
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	c.setImage("podinfo:2.0")
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 1 && seen[len(seen)-1] == 0
	}, 30*time.Second, 50*time.Millisecond, "the canary goes to 0 at the end")
	close(stop)
	<-done
	assert.Equal(t, []int32{0, 1, 2, 5, 0}, seen, "sized for the next share: 5% and 20% of 10 pods need 1 and 2, 50% needs 5")
}

// TestHangingWebhooksOfMoreCanariesThanWorkers: six Canaries whose gate webhooks hang, beside the
// default four reconcile workers, cost another Canary's rollout nothing: the calls are made off
// the workers. Its rollout is timed alone, then beside them; the times are logged.
func TestHangingWebhooksOfMoreCanariesThanWorkers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stuck := newReceiver(t, http.StatusOK)
	stuck.hangUp()
	c.startController() // --concurrent-canaries at its default, 4
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = nil }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	alone := c.timedRollout("podinfo:2.0")

	const hanging = 6
	for i := range hanging {
		name := fmt.Sprintf("hang-%d", i)
		c.createNamedTarget(name, name+":1.0")
		hook := webhook("approve", v1alpha1.WebhookConfirmRollout, stuck)
		hook.Timeout, hook.Retries = "5m", nil
		c.create(c.newCanary(withWebhooks(hook), func(cn *v1alpha1.Canary) {
			cn.Name, cn.Spec.TargetRef.Name = name, name
			cn.Spec.Service.Hostnames = []string{name + ".example.com"}
		}))
		c.waitForNamed(name, "initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
		c.setNamedImage(name, name+":2.0")
	}
	require.Eventually(t, func() bool { return stuck.holding() >= hanging }, 30*time.Second, 50*time.Millisecond, "every hanging Canary's webhook is held")

	beside := c.timedRollout("podinfo:3.0")
	t.Logf("podinfo's rollout took %s alone and %s beside %d Canaries whose webhooks hang (%+.0f%%)",
		alone.Round(time.Millisecond), beside.Round(time.Millisecond), hanging, 100*(beside.Seconds()/alone.Seconds()-1))
	assert.Less(t, beside, time.Minute, "it finished long before the hanging webhooks' 5m timeout")
	assert.GreaterOrEqual(t, stuck.holding(), hanging, "the hanging calls were still held meanwhile")
	for i := range hanging {
		cn := &v1alpha1.Canary{}
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: fmt.Sprintf("hang-%d", i)}, cn))
		assert.NotEqual(t, v1alpha1.PhaseProgressing, cn.Status.Phase, "hang-%d still waits for its approval", i)
	}
}

// timedRollout sets the target's image and waits for its promotion; it returns how long it took.
func (c *cluster) timedRollout(image string) time.Duration {
	c.t.Helper()
	started := time.Now()
	c.setImage(image)
	c.waitFor("the promotion of "+image, rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseSucceeded && cn.Status.History[0].Images[0] == "app="+image
	})
	return time.Since(started)
}

// TestHangingPrometheusOfMoreCanariesThanWorkers: six Canaries whose metric provider hangs (their
// MetricTemplate's address never answers, each query until a 30 s timeout), beside the default
// four reconcile workers, cost another Canary's rollout little: check rounds run off the workers,
// which wait for one only briefly. Its rollout is timed alone, then beside them; the times are
// logged.
func TestHangingPrometheusOfMoreCanariesThanWorkers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stuck := newReceiver(t, http.StatusOK)
	stuck.hangUp()
	c.startController(func(o *controllers.Options) { o.QueryTimeout = 30 * time.Second }) // 4 workers
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	alone := c.timedRollout("podinfo:2.0")

	c.create(&v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "hanging", Namespace: c.ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus, Address: stuck.URL("")},
			Query:    `sum(rate(http_requests_total{namespace="{{ namespace }}"}[{{ interval }}]))`,
		},
	})
	const hanging = 6
	for i := range hanging {
		name := fmt.Sprintf("hang-%d", i)
		c.createNamedTarget(name, name+":1.0")
		c.create(c.newCanary(func(cn *v1alpha1.Canary) {
			cn.Name, cn.Spec.TargetRef.Name = name, name
			cn.Spec.Service.Hostnames = []string{name + ".example.com"}
			cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{{
				Name: "rps", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "hanging"},
				ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(1.0)},
			}}
		}))
		c.waitForNamed(name, "initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
		c.setNamedImage(name, name+":2.0")
	}
	require.Eventually(t, func() bool { return stuck.holding() >= hanging }, 30*time.Second, 50*time.Millisecond, "every hanging Canary's query is held")

	beside := c.timedRollout("podinfo:3.0")
	t.Logf("podinfo's rollout took %s alone and %s beside %d Canaries whose Prometheus hangs (%+.0f%%)",
		alone.Round(time.Millisecond), beside.Round(time.Millisecond), hanging, 100*(beside.Seconds()/alone.Seconds()-1))
	assert.Less(t, beside, alone+15*time.Second, "the hanging queries held no worker for long: %s alone, %s beside them", alone, beside)
	assert.GreaterOrEqual(t, stuck.holding(), 1, "hanging queries were still held meanwhile")
}

// TestTenancy: a Canary cannot name another namespace's MetricTemplate or AlertProvider unless the
// controller allows it, nor have the controller call a link-local address.
func TestTenancy(t *testing.T) {
	t.Parallel()
	other := env.Namespace(t)
	require.NoError(t, k8s.Create(context.Background(), &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: other},
		Spec:       v1alpha1.MetricTemplateSpec{Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus}, Query: "vector(1)"},
	}))
	crossRef := func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{{Name: "shared", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "shared", Namespace: other},
			ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(0.5)}}}
	}
	stalledWith := func(c *cluster, reason string) *v1alpha1.Canary {
		t.Helper()
		return c.waitFor(reason, 30*time.Second, func(cn *v1alpha1.Canary) bool {
			r := readyCondition(cn)
			return r != nil && r.Reason == reason && meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled)
		})
	}

	t.Run("cross-namespace MetricTemplate refused by default", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		c.createTarget("podinfo:1.0")
		c.startController()
		c.create(c.newCanary(crossRef))
		cn := stalledWith(c, rollout.ReasonCrossNamespaceRef)
		assert.Contains(t, readyCondition(cn).Message, "spec.analysis.metrics[0].templateRef names MetricTemplate "+other+"/shared in another namespace")
		assert.Contains(t, readyCondition(cn).Message, "--allow-cross-namespace-refs")
		assert.True(t, c.notFound(&appsv1.Deployment{}, "podinfo-primary"), "nothing is made for it")
	})
	t.Run("allowed with the flag", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		c.createTarget("podinfo:1.0")
		c.startController(func(o *controllers.Options) { o.AllowCrossNamespaceRefs = true })
		c.create(c.newCanary(crossRef))
		c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	})
	t.Run("a webhook to a link-local address", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		c.createTarget("podinfo:1.0")
		c.startController()
		c.create(c.newCanary(func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Webhooks = []v1alpha1.CanaryWebhook{{Name: "steal", Type: v1alpha1.WebhookConfirmRollout, URL: "http://169.254.169.254/latest/meta-data/iam/"}}
		}))
		cn := stalledWith(c, rollout.ReasonURLRefused)
		assert.Contains(t, readyCondition(cn).Message, `Webhook "steal" (spec.analysis.webhooks[0].url) has an address the controller does not call: 169.254.169.254 is link-local`)
	})
	t.Run("an AlertProvider of another namespace", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		c.createTarget("podinfo:1.0")
		c.startController()
		c.create(c.newCanary(func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Alerts = []v1alpha1.CanaryAlert{{Name: "ops", ProviderRef: v1alpha1.CrossNamespaceObjectReference{Name: "slack", Namespace: other}}}
		}))
		cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
		alerts := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionAlertsReady)
		require.NotNil(t, alerts)
		assert.Equal(t, metav1.ConditionFalse, alerts.Status)
		assert.Contains(t, alerts.Message, "providerRef names AlertProvider "+other+"/slack in another namespace")
	})
}
