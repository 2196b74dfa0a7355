package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/rollout"
	"github.com/trafficctl/trafficctl/test/e2e/framework"
)

// deletionRate is the users' load while a Canary is deleted.
const deletionRate = 50

// afterDeletion is how long users are watched once the Canary is gone.
const afterDeletion = 60 * time.Second

// deleteCanary deletes the Canary and waits until it is gone.
func deleteCanary(t *testing.T, ctx context.Context, app *framework.App) {
	t.Helper()
	cn, err := app.Canary(ctx)
	require.NoError(t, err)
	require.NoError(t, app.Client().Delete(ctx, cn))
	require.Eventually(t, func() bool {
		_, err := app.Canary(ctx)
		return apierrors.IsNotFound(err)
	}, 2*time.Minute, 100*time.Millisecond, "the Canary goes once it has handed the app back")
}

// watchUsers returns what users saw from now until the Canary is gone and afterDeletion more.
func watchUsers(t *testing.T, ctx context.Context, app *framework.App, deleteIt func()) (during, after int, seen map[string]int) {
	t.Helper()
	before := app.Load.Counts()
	deleteIt()
	gone := app.Load.Counts()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(afterDeletion):
	}
	end := app.Load.Counts()
	d, a := gone.Sub(before), end.Sub(gone)
	t.Logf("during the deletion: %d requests %v (%d failed); the %s after: %d requests %v (%d failed)",
		d.Total, d.ByVersion, failedOf(d.Errors, d.ByCode), afterDeletion, a.Total, a.ByVersion, failedOf(a.Errors, a.ByCode))
	logFailures(t, app.Load)
	return failedOf(d.Errors, d.ByCode), failedOf(a.Errors, a.ByCode), a.ByVersion
}

func failedOf(errs int, codes map[int]int) int {
	for code, n := range codes {
		if code >= 500 {
			errs += n
		}
	}
	return errs
}

// assertHandedBack asserts nothing of trafficctl's is left but the route and apex Service it
// handed back, which send all traffic to the user's own Deployment.
func assertHandedBack(t *testing.T, ctx context.Context, app *framework.App) {
	t.Helper()
	c := app.Client()
	require.Eventually(t, func() bool {
		err := c.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: "podinfo-primary"}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 200*time.Millisecond, "the primary goes with the Canary")
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		assert.Eventually(t, func() bool {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: name}, &corev1.Service{}))
		}, time.Minute, 200*time.Millisecond, "service %s goes with the Canary", name)
	}
	apex := &corev1.Service{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: "podinfo"}, apex))
	assert.Equal(t, map[string]string{"app": "podinfo"}, apex.Spec.Selector, "the apex Service selects the user's Deployment")
	assert.Empty(t, apex.OwnerReferences)
	route := &gatewayv1.HTTPRoute{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: "podinfo"}, route))
	assert.Empty(t, route.OwnerReferences, "the route stays, the user's now")
	require.Len(t, route.Spec.Rules, 1)
	assert.Equal(t, gatewayv1.ObjectName("podinfo"), route.Spec.Rules[0].BackendRefs[0].Name)
	copies := &corev1.ConfigMapList{}
	require.NoError(t, c.List(ctx, copies, client.InNamespace(app.Namespace), client.MatchingLabels{"app.kubernetes.io/managed-by": "trafficctl"}))
	assert.Empty(t, copies.Items, "no config copy is left")
}

// TestDeletingACanaryNeverDropsARequest deletes Canaries under load: promoted, mid-rollout, after
// a rollback, and with deletionPolicy Orphan. No user request fails while the Canary goes, nor in
// the minute after.
func TestDeletingACanaryNeverDropsARequest(t *testing.T) {
	t.Parallel()
	t.Run("promoted", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		app := newApp(t, ctx, framework.AppOptions{Namespace: "delete-promoted", Rate: deletionRate})
		require.NoError(t, app.Release(ctx, v2))
		waitSucceeded(t, ctx, app)
		during, after, seen := watchUsers(t, ctx, app, func() { deleteCanary(t, ctx, app) })
		assert.Zero(t, during, "no request failed while the Canary was deleted")
		assert.Zero(t, after, "nor in the minute after")
		assert.Equal(t, []string{"2.0.0"}, keys(seen), "the user's Deployment serves its version")
		assertHandedBack(t, ctx, app)
	})
	t.Run("mid-rollout", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		app := newApp(t, ctx, framework.AppOptions{Namespace: "delete-midway", Rate: deletionRate, Canary: func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Interval = "1m"
		}})
		require.NoError(t, app.Release(ctx, v2))
		waitStepStarted(t, ctx, app, 1)
		during, after, seen := watchUsers(t, ctx, app, func() { deleteCanary(t, ctx, app) })
		assert.Zero(t, during)
		assert.Zero(t, after)
		assert.Equal(t, []string{"2.0.0"}, keys(seen), "handed back to the Deployment as it stands: the revision being rolled out")
		assertHandedBack(t, ctx, app)
	})
	t.Run("after a rollback", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		app := newApp(t, ctx, framework.AppOptions{Namespace: "delete-failed", Rate: deletionRate})
		require.NoError(t, app.Release(ctx, framework.Version{Tag: "3.0.0", ErrorRate: 0.2}))
		failed, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
		require.NoError(t, err)
		require.Equal(t, v1alpha1.PhaseFailed, failed.Status.Phase)
		assertOnlyVersion(t, ctx, app, "1.0.0")

		during, after, seen := watchUsers(t, ctx, app, func() {
			cn, err := app.Canary(ctx)
			require.NoError(t, err)
			require.NoError(t, app.Client().Delete(ctx, cn))
			held, err := app.Wait(ctx, time.Minute, "the hand-back to hold", func(cn *v1alpha1.Canary) bool {
				c := findCondition(cn, rollout.ConditionReady)
				return c != nil && c.Reason == rollout.ReasonHandBackRefused
			})
			require.NoError(t, err)
			t.Logf("the deletion holds: %s", findCondition(held, rollout.ConditionReady).Message)
			// The user rolls the Deployment back, as the condition says; the hand-back goes on.
			require.NoError(t, app.Release(ctx, v1))
			deleteCanaryWait(t, ctx, app)
		})
		assert.Zero(t, during, "the failed revision never got the traffic back")
		assert.Zero(t, after)
		assert.Equal(t, []string{"1.0.0"}, keys(seen))
		assertHandedBack(t, ctx, app)
	})
	t.Run("orphan", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		app := newApp(t, ctx, framework.AppOptions{Namespace: "delete-orphan", Rate: deletionRate, Canary: func(cn *v1alpha1.Canary) {
			cn.Spec.DeletionPolicy = v1alpha1.DeletionOrphan
		}})
		during, after, seen := watchUsers(t, ctx, app, func() { deleteCanary(t, ctx, app) })
		assert.Zero(t, during)
		assert.Zero(t, after)
		assert.Equal(t, []string{"1.0.0"}, keys(seen))
		primary, err := app.Deployment(ctx, "podinfo-primary")
		require.NoError(t, err, "the primary stays")
		assert.Empty(t, primary.OwnerReferences, "unowned")
		assert.Equal(t, int32(2), primary.Status.AvailableReplicas, "and serving")
	})
}

// deleteCanaryWait waits until a Canary already being deleted is gone.
func deleteCanaryWait(t *testing.T, ctx context.Context, app *framework.App) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := app.Canary(ctx)
		return apierrors.IsNotFound(err)
	}, 2*time.Minute, 100*time.Millisecond, "the Canary goes once it has handed the app back")
}

func findCondition(cn *v1alpha1.Canary, t string) *metav1.Condition {
	for i := range cn.Status.Conditions {
		if cn.Status.Conditions[i].Type == t {
			return &cn.Status.Conditions[i]
		}
	}
	return nil
}

func keys(m map[string]int) []string {
	var out []string
	for k, n := range m {
		if n > 0 {
			out = append(out, k)
		}
	}
	return out
}

// setConfigMap sets a ConfigMap's data.
func setConfigMap(t *testing.T, ctx context.Context, app *framework.App, name string, data map[string]string) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm := &corev1.ConfigMap{}
		if err := app.Client().Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: name}, cm); err != nil {
			return err
		}
		cm.Data = data
		return app.Client().Update(ctx, cm)
	}))
}

// configOf is what every serving pod of a Deployment says it reads: the env value and the mounted
// file, "env/file", by pod.
func configOf(t *testing.T, ctx context.Context, app *framework.App, deployment string) map[string]string {
	t.Helper()
	env, err := app.PodHeaders(ctx, deployment, "X-Greeting")
	require.NoError(t, err)
	file, err := app.PodHeaders(ctx, deployment, "X-Config-File")
	require.NoError(t, err)
	out := map[string]string{}
	for pod, v := range env {
		out[pod] = v + "/" + file[pod]
	}
	return out
}

func allEqual(m map[string]string, want string) bool {
	if len(m) == 0 {
		return false
	}
	for _, v := range m {
		if v != want {
			return false
		}
	}
	return true
}

// TestConfigReachesThePrimaryOnlyByPromotion: the app reads a ConfigMap through envFrom and mounts
// another. A change reaches the canary's pods; the primary's keep the old values, mounted file
// included, until a promotion; a rolled-back change never reaches them.
func TestConfigReachesThePrimaryOnlyByPromotion(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ns := "config"
	app := newApp(t, ctx, framework.AppOptions{
		Namespace: ns,
		Objects: []client.Object{
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-env"}, Data: map[string]string{"GREETING": "hello"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-files"}, Data: map[string]string{"greeting": "hello"}},
		},
		Deployment: func(d *appsv1.Deployment) {
			spec := &d.Spec.Template.Spec
			spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-env"}}}}
			// ERROR_RATE comes from the ConfigMap: an env value of the same name would win over it.
			spec.Containers[0].Env = []corev1.EnvVar{{Name: "CONFIG_FILE", Value: "/etc/podinfo/greeting"}}
			spec.Volumes = []corev1.Volume{{Name: "files", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-files"}}}}}
			spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "files", MountPath: "/etc/podinfo"}}
		},
		Canary: func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "15s" },
	})
	require.Eventually(t, func() bool { return allEqual(configOf(t, ctx, app, "podinfo-primary"), "hello/hello") }, time.Minute, 500*time.Millisecond)

	// A change whose pods fail (ERROR_RATE comes with the config) is rolled back.
	setConfigMap(t, ctx, app, "podinfo-env", map[string]string{"GREETING": "bad", "ERROR_RATE": "0.3"})
	setConfigMap(t, ctx, app, "podinfo-files", map[string]string{"greeting": "bad"})
	_, err := app.Wait(ctx, rolloutTimeout, "the canary pods on the new config", func(*v1alpha1.Canary) bool {
		return allEqual(configOf(t, ctx, app, "podinfo"), "bad/bad")
	})
	require.NoError(t, err)
	primary := configOf(t, ctx, app, "podinfo-primary")
	t.Logf("mid-rollout: canary pods %v, primary pods %v", configOf(t, ctx, app, "podinfo"), primary)
	assert.True(t, allEqual(primary, "hello/hello"), "the primary's pods, mounted file included, keep the promoted config: %v", primary)
	failed, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseFailed, failed.Status.Phase, framework.Describe(failed))
	primary = configOf(t, ctx, app, "podinfo-primary")
	assert.True(t, allEqual(primary, "hello/hello"), "a rolled-back config never reaches the primary: %v", primary)

	// A change that passes reaches every primary pod by its promotion, and not before.
	setConfigMap(t, ctx, app, "podinfo-env", map[string]string{"GREETING": "bonjour"})
	setConfigMap(t, ctx, app, "podinfo-files", map[string]string{"greeting": "bonjour"})
	_, err = app.Wait(ctx, rolloutTimeout, "step 1 of the new config", func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1
	})
	require.NoError(t, err)
	assert.True(t, allEqual(configOf(t, ctx, app, "podinfo-primary"), "hello/hello"), "not before the promotion")
	waitSucceeded(t, ctx, app)
	require.Eventually(t, func() bool { return allEqual(configOf(t, ctx, app, "podinfo-primary"), "bonjour/bonjour") }, time.Minute, 500*time.Millisecond,
		"after the promotion every primary pod runs the new config")
}

// TestPrometheusOutageHoldsTheRollout stops the Prometheus the controller asks mid-rollout: past
// the grace the canary's traffic goes back to the primary, no check fails, the condition says why;
// once Prometheus is back the step starts over and the rollout is promoted. A second scenario
// never gets it back and is aborted at the progress deadline, for the outage.
func TestPrometheusOutageHoldsTheRollout(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, name string) (*testprom.Prometheus, testprom.Options) {
		t.Helper()
		port, err := framework.FreePort()
		require.NoError(t, err)
		dir := filepath.Join(env.Dir, "prometheus-"+name)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		opts := env.PrometheusOptions(dir)
		opts.Port = port
		p, err := testprom.StartWith(opts)
		require.NoError(t, err)
		t.Cleanup(func() { p.Stop() })
		return p, opts
	}
	t.Run("resumes", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		prom, opts := start(t, "outage")
		app := newApp(t, ctx, framework.AppOptions{Namespace: "outage", PrometheusURL: prom.URL()})
		require.NoError(t, app.Release(ctx, v2))
		waitStepStarted(t, ctx, app, 1)
		stopped := time.Now()
		prom.Stop()
		held, err := app.Wait(ctx, rolloutTimeout, "the outage hold", func(cn *v1alpha1.Canary) bool {
			return cn.Status.Outage != nil && cn.Status.Outage.Held
		})
		require.NoError(t, err)
		heldAfter := time.Since(stopped)
		assert.Zero(t, held.Status.FailedChecks, "an outage is no failed check")
		assert.Equal(t, rollout.ReasonAnalysisUnavailable, findCondition(held, rollout.ConditionReady).Reason)
		assert.Contains(t, findCondition(held, rollout.ConditionReady).Message, "connection refused")
		app.WaitRouteWeights(ctx, []int32{0, 20, 0}, 30*time.Second)
		require.NoError(t, app.Settle(ctx))
		onPrimary, err := app.Traffic(ctx, 3*time.Second)
		require.NoError(t, err)
		assert.Equal(t, 1.0, onPrimary.Share("1.0.0"), "the hold is on the primary: %v", onPrimary.ByVersion)

		restarted := time.Now()
		prom, err = testprom.StartWith(opts)
		require.NoError(t, err)
		t.Cleanup(func() { prom.Stop() })
		done := waitSucceeded(t, ctx, app)
		t.Logf("Prometheus stopped at step 1: traffic back on the primary %s later; started again, the rollout was promoted %s later",
			heldAfter.Round(time.Second), time.Since(restarted).Round(time.Second))
		assert.Zero(t, done.Status.History[0].WeightReached-50, "it went through every step")
		assertRouteWeights(t, ctx, app, []int32{0, 20, 0, 20, 50, 0}, "step 1 started over, then the rollout finished")
	})
	t.Run("past the deadline", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		prom, _ := start(t, "outage-deadline")
		app := newApp(t, ctx, framework.AppOptions{Namespace: "outage-deadline", PrometheusURL: prom.URL(), Canary: func(cn *v1alpha1.Canary) {
			cn.Spec.ProgressDeadlineSeconds = ptrTo[int32](40)
		}})
		require.NoError(t, app.Release(ctx, v2))
		waitStepStarted(t, ctx, app, 1)
		prom.Stop()
		failed, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
		require.NoError(t, err)
		require.Equal(t, v1alpha1.PhaseFailed, failed.Status.Phase)
		assert.Equal(t, rollout.ReasonAnalysisUnavailable, failed.Status.History[0].Reason, "aborted for the outage")
		assert.Zero(t, failed.Status.FailedChecks)
		assert.Contains(t, failed.Status.History[0].Message, fmt.Sprintf("unavailable for longer than the progress deadline of %s", 40*time.Second))
		assertOnlyVersion(t, ctx, app, "1.0.0")
	})
}

func ptrTo[T any](v T) *T { return &v }
