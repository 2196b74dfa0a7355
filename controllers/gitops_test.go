package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/config"
)

// argoHealth runs the Argo CD health check on a Canary as Argo CD does: the object as a Lua
// table in the global obj, the script's returned table read for status and message.
func argoHealth(t *testing.T, cn *v1alpha1.Canary) (status, message string) {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cn)
	require.NoError(t, err)
	L := lua.NewState(lua.Options{SkipOpenLibs: false})
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	require.NoError(t, L.DoString(config.ArgoCDHealth), "the health check runs")
	hs, ok := L.Get(-1).(*lua.LTable)
	require.True(t, ok, "the health check returns a table")
	return lua.LVAsString(hs.RawGetString("status")), lua.LVAsString(hs.RawGetString("message"))
}

// toLua converts a decoded JSON value to Lua, as Argo CD hands objects to its health checks.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	}
	return lua.LString("")
}

// TestArgoCDHealthCheck runs the Lua health check Argo CD users install on real Canaries, as the
// controller leaves them at each moment of their life.
func TestArgoCDHealthCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())

	status, _ := argoHealth(t, c.canary())
	assert.Equal(t, "Progressing", status, "before the controller has looked")
	cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	status, msg := argoHealth(t, cn)
	assert.Equal(t, "Healthy", status, msg)

	c.setTraffic(failing, healthy)
	c.setImage("podinfo:2.0")
	cn = c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })
	status, msg = argoHealth(t, cn)
	assert.Equal(t, "Progressing", status, msg)
	cn = c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	status, msg = argoHealth(t, cn)
	assert.Equal(t, "Degraded", status)
	assert.Contains(t, msg, "Rolled back revision")

	c.request(v1alpha1.ActionPause, "p1", "alice")
	cn = c.waitFor("pause", 30*time.Second, func(cn *v1alpha1.Canary) bool { return cn.Status.Paused != nil })
	status, _ = argoHealth(t, cn)
	assert.Equal(t, "Suspended", status)

	cn.Spec.Suspend = true
	status, _ = argoHealth(t, cn)
	assert.Equal(t, "Suspended", status, "spec.suspend")
}

// TestGitOpsReapplyMidRollout: a GitOps tool's field manager re-applies the user's manifests,
// as Argo CD and Flux do with server-side apply, in the middle of a rollout. Following
// docs/gitops.md the Deployment's manifest leaves spec.replicas out (the autoscaler's and
// trafficctl's); nothing fights, and the rollout walks every step as it would alone.
func TestGitOpsReapplyMidRollout(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.startController()
	labels := map[string]string{"app": "podinfo"}
	deployment := func(image string) *appsv1ac.DeploymentApplyConfiguration {
		return appsv1ac.Deployment("podinfo", c.ns).
			WithSpec(appsv1ac.DeploymentSpec().
				WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
				WithTemplate(corev1ac.PodTemplateSpec().
					WithLabels(labels).
					WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().
						WithName("app").WithImage(image).WithPorts(corev1ac.ContainerPort().WithContainerPort(9898))))))
	}
	gitops := []client.ApplyOption{client.FieldOwner("argocd-controller"), client.ForceOwnership}
	require.NoError(t, k8s.Apply(context.Background(), deployment("podinfo:1.0"), gitops...))
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	require.NoError(t, k8s.Apply(context.Background(), deployment("podinfo:2.0"), gitops...))
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })
	for range 3 { // a sync loop, mid-rollout
		require.NoError(t, k8s.Apply(context.Background(), deployment("podinfo:2.0"), gitops...))
		time.Sleep(500 * time.Millisecond)
	}
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.Len(t, cn.Status.History, 1, "one rollout, not restarted by the re-applies")
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "every step once")
	c.eventuallyReplicas("podinfo", 0, "the canary rests at 0: the GitOps manifest does not own replicas")
}
