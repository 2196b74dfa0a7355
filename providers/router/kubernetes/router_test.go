package kubernetes_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

const fieldManager = "trafficctl"

var (
	toPrimary = rollout.Routing{Weights: rollout.Weights{Primary: 100}}
	toCanary  = rollout.Routing{Weights: rollout.Weights{Canary: 100}}
)

func TestBlueGreen(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	newDeployments(t, ns, 2, 2, map[string]string{"app.kubernetes.io/name": "podinfo"})
	cn := newCanary(t, ns)
	r, applies := newRouter(t)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: false}, state, "no Service before the first Apply")

	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	assert.Equal(t, 1, *applies)
	svc := getService(t, ns, "podinfo")
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, svc.Spec.Selector)
	assert.Equal(t, map[string]string{"app.kubernetes.io/managed-by": "trafficctl"}, svc.Labels)
	assert.Equal(t, []corev1.ServicePort{{
		Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromInt32(9898),
	}}, svc.Spec.Ports)
	assertControlledBy(t, svc, cn)

	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: toPrimary,
		Message: "Deployment " + ns + "/podinfo-primary has not observed generation 1 yet",
	}, state)

	setAvailable(t, ns, "podinfo-primary", 1)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: toPrimary,
		Message: "Deployment " + ns + "/podinfo-primary has 1 of 2 replicas available",
	}, state)

	setAvailable(t, ns, "podinfo-primary", 2)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: toPrimary, Accepted: true}, state)

	// Applying what the Service already carries writes nothing.
	rv := svc.ResourceVersion
	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	assert.Equal(t, 1, *applies, "no second write")
	assert.Equal(t, rv, getService(t, ns, "podinfo").ResourceVersion)

	// Switch to the canary: the Service takes the target's selector, and the routing waits for
	// the target's replicas.
	require.NoError(t, r.Apply(ctx, cn, toCanary))
	svc = getService(t, ns, "podinfo")
	assert.Equal(t, map[string]string{"app": "podinfo"}, svc.Spec.Selector)
	assertControlledBy(t, svc, cn)

	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: toCanary,
		Message: "Deployment " + ns + "/podinfo has not observed generation 1 yet",
	}, state)
	setAvailable(t, ns, "podinfo", 2)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: toCanary, Accepted: true}, state)

	rv = svc.ResourceVersion
	require.NoError(t, r.Apply(ctx, cn, toCanary))
	assert.Equal(t, 2, *applies, "one write per switch")
	assert.Equal(t, rv, getService(t, ns, "podinfo").ResourceVersion)

	// And back.
	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	svc = getService(t, ns, "podinfo")
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, svc.Spec.Selector)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: toPrimary, Accepted: true}, state)

	// The Service goes with the Canary through its owner reference; Release leaves it alone.
	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, svc.ResourceVersion, getService(t, ns, "podinfo").ResourceVersion)
}

func TestBlueGreenForeignSelector(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	newDeployments(t, ns, 1, 1, nil)
	cn := newCanary(t, ns)
	r, applies := newRouter(t)
	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	setAvailable(t, ns, "podinfo-primary", 1)

	svc := getService(t, ns, "podinfo")
	svc.Spec.Selector = map[string]string{"app": "something-else"}
	require.NoError(t, env.Client.Update(ctx, svc))

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found:   true,
		Message: "Service " + ns + "/podinfo selects the pods of neither Deployment podinfo-primary nor podinfo",
	}, state)

	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	assert.Equal(t, 2, *applies, "Apply repairs the selector")
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, getService(t, ns, "podinfo").Spec.Selector)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: toPrimary, Accepted: true}, state)
}

// Validation keeps these away from provider kubernetes; Apply refuses them rather than writing
// something else than was asked for.
func TestRefusesWhatASelectorCannotDo(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	newDeployments(t, ns, 1, 1, map[string]string{"app.kubernetes.io/name": "podinfo"})
	blue := newCanary(t, ns)
	ratio := newCanary(t, ns, weighted, func(cn *v1alpha1.Canary) { cn.Name = "ratio" })
	r, applies := newRouter(t)

	for _, tt := range []struct {
		name string
		cn   *v1alpha1.Canary
		rt   rollout.Routing
		want string
	}{
		{"split in blue/green", blue, rollout.Routing{Weights: rollout.ForCanary(50)},
			"provider kubernetes switches Service " + ns + "/podinfo between whole Deployments and cannot split traffic primary 50% / canary 50%"},
		{"no weights in blue/green", blue, rollout.Routing{},
			"provider kubernetes switches Service " + ns + "/podinfo between whole Deployments and cannot split traffic primary 0% / canary 0%"},
		{"cohort", blue, rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
			"provider kubernetes only chooses the pods Service " + ns + "/podinfo selects and cannot route primary 100% / canary 0%, A/B cohort to the canary"},
		{"mirror", blue, rollout.Routing{Weights: rollout.ForCanary(0), Mirror: 10},
			"provider kubernetes only chooses the pods Service " + ns + "/podinfo selects and cannot route primary 100% / canary 0%, 10% mirrored to the canary"},
		{"sticky", ratio, rollout.Routing{Weights: rollout.ForCanary(10), Sticky: "abc"},
			"provider kubernetes only chooses the pods Service " + ns + "/podinfo selects and cannot route primary 90% / canary 10%, sticky sessions"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Apply(ctx, tt.cn, tt.rt)
			require.EqualError(t, err, tt.want)
			assert.False(t, router.IsInvalidRoute(err), "a programming error, not the user's to fix")
			err = env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo"}, &corev1.Service{})
			assert.True(t, apierrors.IsNotFound(err), "nothing written, got %v", err)
			assert.Zero(t, *applies)
		})
	}
}

func TestReplicaRatio(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	// Both templates carry name and tier alike; version differs, and app is each selector's.
	createDeployment(t, ns, "podinfo", 0, map[string]string{"app": "podinfo"}, map[string]string{
		"app": "podinfo", "app.kubernetes.io/name": "podinfo", "tier": "web", "version": "v2",
	})
	createDeployment(t, ns, "podinfo-primary", 9, map[string]string{"app": "podinfo-primary"}, map[string]string{
		"app": "podinfo-primary", "app.kubernetes.io/name": "podinfo", "tier": "web", "version": "v1",
	})
	cn := newCanary(t, ns, weighted, func(cn *v1alpha1.Canary) {
		cn.Spec.Service.PortName = "web"
		cn.Spec.Service.TargetPort = ptr.To(intstr.FromString("http"))
	})
	r, applies := newRouter(t)
	shared := map[string]string{"app.kubernetes.io/name": "podinfo", "tier": "web"}

	require.NoError(t, r.Apply(ctx, cn, rollout.Primary()))
	svc := getService(t, ns, "podinfo")
	assert.Equal(t, shared, svc.Spec.Selector)
	assert.Equal(t, []corev1.ServicePort{{
		Name: "web", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromString("http"),
	}}, svc.Spec.Ports)
	assertControlledBy(t, svc, cn)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: rollout.Primary(),
		Message: "Deployment " + ns + "/podinfo-primary has not observed generation 1 yet",
	}, state, "no pod available yet: everything counts as the primary's")

	setAvailable(t, ns, "podinfo-primary", 9)
	setAvailable(t, ns, "podinfo", 0)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: rollout.Primary(), Accepted: true}, state)

	// A step to 10%: the controller scales the target; Apply ignores the weights and writes nothing.
	scale(t, ns, "podinfo", rollout.RatioReplicas(9, 10))
	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.ForCanary(10)}))
	assert.Equal(t, 1, *applies, "the selector does not depend on the weights")
	assert.Equal(t, svc.ResourceVersion, getService(t, ns, "podinfo").ResourceVersion)

	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: rollout.Primary(),
		Message: "Deployment " + ns + "/podinfo has not observed generation 2 yet",
	}, state)
	setAvailable(t, ns, "podinfo", 0)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: rollout.Primary(),
		Message: "Deployment " + ns + "/podinfo has 0 of 1 replicas available",
	}, state)
	setAvailable(t, ns, "podinfo", 1)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: rollout.Routing{Weights: rollout.ForCanary(10)}, Accepted: true}, state)

	// A step to 50%: the weights follow the available replicas as they come up.
	scale(t, ns, "podinfo", rollout.RatioReplicas(9, 50))
	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.ForCanary(50)}))
	assert.Equal(t, 1, *applies)
	assert.Equal(t, svc.ResourceVersion, getService(t, ns, "podinfo").ResourceVersion)
	setAvailable(t, ns, "podinfo", 4)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: rollout.Routing{Weights: rollout.Weights{Primary: 69, Canary: 31}},
		Message: "Deployment " + ns + "/podinfo has 4 of 9 replicas available",
	}, state)
	setAvailable(t, ns, "podinfo", 9)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: rollout.Routing{Weights: rollout.ForCanary(50)}, Accepted: true}, state)

	// A Service that no longer selects both Deployments is not accepted, whatever the replicas say,
	// until Apply repairs it.
	svc = getService(t, ns, "podinfo")
	svc.Spec.Selector = map[string]string{"app": "podinfo-primary"}
	require.NoError(t, env.Client.Update(ctx, svc))
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found: true, Routing: rollout.Routing{Weights: rollout.ForCanary(50)},
		Message: "Service " + ns + "/podinfo does not select the pods of both Deployment podinfo and podinfo-primary yet",
	}, state)
	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.ForCanary(50)}))
	assert.Equal(t, 2, *applies)
	assert.Equal(t, shared, getService(t, ns, "podinfo").Spec.Selector)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.True(t, state.Accepted)
}

func TestReplicaRatioNeedsSharedLabel(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	// version is on both templates, but with different values: it cannot select both.
	createDeployment(t, ns, "podinfo", 0, map[string]string{"app": "podinfo"}, map[string]string{"app": "podinfo", "version": "v2"})
	createDeployment(t, ns, "podinfo-primary", 3, map[string]string{"app": "podinfo-primary"}, map[string]string{"app": "podinfo-primary", "version": "v1"})
	cn := newCanary(t, ns, weighted, func(cn *v1alpha1.Canary) { cn.Spec.Service.Name = "frontend" })
	r, applies := newRouter(t)
	want := "provider kubernetes runs a weighted canary as a replica ratio behind Service " + ns + "/frontend, " +
		"which must select the pods of both Deployment podinfo and podinfo-primary, but their pod templates share no label outside spec.selector; " +
		"give the pod template of Deployment podinfo a label outside spec.selector, such as app.kubernetes.io/name"

	err := r.Apply(ctx, cn, rollout.Primary())
	require.EqualError(t, err, want)
	assert.True(t, router.IsInvalidRoute(err))
	err = env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "frontend"}, &corev1.Service{})
	assert.True(t, apierrors.IsNotFound(err), "nothing written, got %v", err)
	assert.Zero(t, *applies)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: false}, state)

	// With the Service in place (the user's, say), Observe reports the same problem.
	createService(t, ns, "frontend", map[string]string{"app": "podinfo"})
	_, err = r.Observe(ctx, cn)
	require.EqualError(t, err, want)
	assert.True(t, router.IsInvalidRoute(err))
	rv := getService(t, ns, "frontend").ResourceVersion
	require.Error(t, r.Apply(ctx, cn, rollout.Primary()))
	assert.Equal(t, rv, getService(t, ns, "frontend").ResourceVersion, "nothing written")
	assert.Zero(t, *applies)
}

func TestAdoptedService(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	newDeployments(t, ns, 1, 1, nil)
	createService(t, ns, "podinfo", map[string]string{"app": "podinfo"})
	cn := newCanary(t, ns)
	r, applies := newRouter(t)

	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	svc := getService(t, ns, "podinfo")
	assert.Empty(t, svc.OwnerReferences, "a Service that existed before the Canary is adopted, never owned")
	assert.Equal(t, map[string]string{"team": "storefront", "app.kubernetes.io/managed-by": "trafficctl"}, svc.Labels)
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, svc.Spec.Selector)
	assert.Equal(t, []corev1.ServicePort{{
		Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromInt32(9898),
	}}, svc.Spec.Ports)

	require.NoError(t, r.Apply(ctx, cn, toPrimary))
	assert.Equal(t, 1, *applies, "a repeated Apply writes nothing")
	assert.Equal(t, svc.ResourceVersion, getService(t, ns, "podinfo").ResourceVersion)

	require.NoError(t, r.Apply(ctx, cn, toCanary))
	svc = getService(t, ns, "podinfo")
	assert.Empty(t, svc.OwnerReferences)
	assert.Equal(t, map[string]string{"app": "podinfo"}, svc.Spec.Selector)
	setAvailable(t, ns, "podinfo", 1)
	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: toCanary, Accepted: true}, state)
}

// createService creates a Service the way a user does, before trafficctl touches it.
func createService(t *testing.T, ns, name string, selector map[string]string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"team": "storefront"}},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}},
		},
	}
	require.NoError(t, env.Client.Create(testContext(t), svc))
}

func assertControlledBy(t *testing.T, svc *corev1.Service, cn *v1alpha1.Canary) {
	t.Helper()
	require.Len(t, svc.OwnerReferences, 1)
	owner := svc.OwnerReferences[0]
	assert.Equal(t, "trafficctl.io/v1alpha1", owner.APIVersion)
	assert.Equal(t, "Canary", owner.Kind)
	assert.Equal(t, cn.Name, owner.Name)
	assert.Equal(t, cn.UID, owner.UID)
	assert.True(t, ptr.Deref(owner.Controller, false), "the Canary is the Service's controller")
	assert.True(t, ptr.Deref(owner.BlockOwnerDeletion, false))
}
