package controllers_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/controllers"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/rollout"
)

// The suite shares one control plane, one Prometheus and one exporter; each test has its own
// namespace, its own controller manager and its own series in the exporter.
var (
	env      *testenv.Env
	k8s      client.Client
	prom     *testprom.Prometheus
	exporter *testprom.Exporter
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	if exporter, err = testprom.NewExporter(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer exporter.Close()
	if prom, err = testprom.StartProcess(exporter.Addr()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer prom.Stop()
	return m.Run()
}

// zapLevel keeps the controllers' logs out of the test output unless TEST_LOG=debug: the
// tests assert on conditions and events, which is where users look.
func zapLevel() zapcore.Level {
	if os.Getenv("TEST_LOG") == "debug" {
		return zapcore.DebugLevel
	}
	return zapcore.DPanicLevel
}

// cluster plays the parts envtest lacks for one namespace: the Deployment controller and
// kubelet (Deployments become ready unless marked broken) and a Gateway controller
// (HTTPRoutes are accepted unless told otherwise).
type cluster struct {
	t      *testing.T
	ns     string
	mu     sync.Mutex
	broken map[string]bool
	// holdRoutes stops the stand-in Gateway from accepting route changes.
	holdRoutes atomic.Bool
	// weights is every canary weight the namespace's routes carried, in order.
	weights *testenv.WeightLog
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, ns: env.Namespace(t), broken: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	standIns := testenv.StandIns{
		Client: k8s, Namespace: c.ns, HoldRoutes: c.holdRoutes.Load,
		Broken: func(name string) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.broken[name]
		},
	}
	go func() {
		defer close(done)
		standIns.Run(ctx)
	}()
	weights, err := testenv.WatchCanaryWeights(env.Config, c.ns, "podinfo-canary")
	require.NoError(t, err)
	c.weights = weights
	t.Cleanup(func() { cancel(); <-done; weights.Stop() })
	return c
}

// breakDeployment keeps a Deployment from ever having available replicas, like a crashing pod.
func (c *cluster) breakDeployment(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.broken[name] = true
}

// eventuallyWeights waits until the route has gone through exactly the given canary weights:
// the route is written after the status that asks for it, so it may trail by a moment.
func (c *cluster) eventuallyWeights(want []int32, msg string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(c.weightsSeen(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(c.t, want, c.weightsSeen(), msg)
}

// eventuallyReplicas waits for the target's replica count, which follows the status.
func (c *cluster) eventuallyReplicas(name string, want int32, msg string) {
	c.t.Helper()
	assert.Eventually(c.t, func() bool { return ptr.Deref(c.deployment(name).Spec.Replicas, -1) == want }, 10*time.Second, 50*time.Millisecond, msg)
}

func (c *cluster) weightsSeen() []int32 { return c.weights.Weights() }

// startController runs a controller manager that watches only this test's namespace, and
// returns the function that stops it.
func (c *cluster) startController(mods ...func(*controllers.Options)) (stop func()) {
	c.t.Helper()
	return testenv.StartController(c.t, env.Config, c.ns, prom.URL(), mods...)
}

// Pod names the exporter reports for the canary's and the primary's pods.
const (
	canaryPod  = "podinfo-7d9c8b6f4-abcde"
	primaryPod = "podinfo-primary-5f6b7c8d9-xyz12"
)

var (
	healthy = testprom.Traffic{RequestsPerScrape: 100, Latency: 20 * time.Millisecond}
	failing = testprom.Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 20 * time.Millisecond}
)

// setTraffic sets what the exporter reports for the canary's and the primary's pods.
func (c *cluster) setTraffic(canary, primary testprom.Traffic) {
	exporter.SetTraffic(c.ns, canaryPod, canary)
	exporter.SetTraffic(c.ns, primaryPod, primary)
	c.t.Cleanup(func() {
		exporter.RemoveTraffic(c.ns, canaryPod)
		exporter.RemoveTraffic(c.ns, primaryPod)
	})
}

func (c *cluster) createTarget(image string, mods ...func(*appsv1.Deployment)) *appsv1.Deployment {
	c.t.Helper()
	return c.createNamedTarget("podinfo", image, mods...)
}

// createNamedTarget creates a target Deployment of another name, for a second Canary.
func (c *cluster) createNamedTarget(name, image string, mods ...func(*appsv1.Deployment)) *appsv1.Deployment {
	c.t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns, Labels: map[string]string{"team": "shop"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 9898}}}}},
			},
		},
	}
	for _, m := range mods {
		m(d)
	}
	require.NoError(c.t, k8s.Create(context.Background(), d))
	return d
}

// setImage changes the target's pod template, which makes a new revision.
func (c *cluster) setImage(image string) {
	c.t.Helper()
	c.setNamedImage("podinfo", image)
}

func (c *cluster) setNamedImage(name, image string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, d); err != nil {
			return false
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		return k8s.Update(context.Background(), d) == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// newCanary is the Canary the tests start from: two steps of 3s, two failed checks roll back.
func (c *cluster) newCanary(mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	return gen.Canary(c.ns, append([]gen.CanaryMod{gen.Analysed("3s")}, mods...)...)
}

func (c *cluster) create(obj client.Object) {
	c.t.Helper()
	require.NoError(c.t, k8s.Create(context.Background(), obj))
}

func (c *cluster) canary() *v1alpha1.Canary {
	c.t.Helper()
	cn := &v1alpha1.Canary{}
	require.NoError(c.t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: "podinfo"}, cn))
	return cn
}

// waitFor polls the Canary until cond holds, and fails with its last status otherwise.
func (c *cluster) waitFor(what string, timeout time.Duration, cond func(*v1alpha1.Canary) bool) *v1alpha1.Canary {
	c.t.Helper()
	return c.waitForNamed("podinfo", what, timeout, cond)
}

// waitForNamed is waitFor for another Canary of the namespace.
func (c *cluster) waitForNamed(name, what string, timeout time.Duration, cond func(*v1alpha1.Canary) bool) *v1alpha1.Canary {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cn := &v1alpha1.Canary{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, cn)
		if err == nil && cond(cn) {
			return cn
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s; status: phase=%s step=%d weight=%d failed=%d ready=%q", timeout, what,
				cn.Status.Phase, cn.Status.Step, cn.Status.CanaryWeight, cn.Status.FailedChecks, readyMessage(cn))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func phaseIs(p v1alpha1.CanaryPhase) func(*v1alpha1.Canary) bool {
	return func(cn *v1alpha1.Canary) bool { return cn.Status.Phase == p }
}

func readyCondition(cn *v1alpha1.Canary) *metav1.Condition {
	return meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReady)
}

func readyMessage(cn *v1alpha1.Canary) string {
	if c := readyCondition(cn); c != nil {
		return c.Reason + ": " + c.Message
	}
	return ""
}

func (c *cluster) deployment(name string) *appsv1.Deployment {
	c.t.Helper()
	d := &appsv1.Deployment{}
	require.NoError(c.t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, d))
	return d
}

func (c *cluster) route(name string) *gatewayv1.HTTPRoute {
	c.t.Helper()
	r := &gatewayv1.HTTPRoute{}
	require.NoError(c.t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, r))
	return r
}

// events are the messages of the Canary's events with the given reason, oldest first.
func (c *cluster) events(reason string) []string {
	c.t.Helper()
	var list eventsv1.EventList
	require.NoError(c.t, k8s.List(context.Background(), &list, client.InNamespace(c.ns)))
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Canary" && e.Reason == reason {
			out = append(out, e.Note)
		}
	}
	return out
}

// eventsEventually waits until the Canary has at least n events with the reason, and returns
// them: the recorder sends events after the status that tells the same news, and on its own
// goroutine.
func (c *cluster) eventsEventually(reason string, n int) []string {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	events := c.events(reason)
	for len(events) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		events = c.events(reason)
	}
	return events
}

func (c *cluster) notFound(obj client.Object, name string) bool {
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, obj)
	return apierrors.IsNotFound(err)
}
