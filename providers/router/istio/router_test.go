package istio_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/providers/router/istio"
	"github.com/trafficctl/trafficctl/rollout"
)

const fieldManager = "trafficctl"

func TestOwnedVirtualService(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns, func(cn *v1alpha1.Canary) {
		cn.Spec.Service.Gateways = []string{"istio-system/public-gateway"}
		cn.Spec.Service.Hosts = []string{"podinfo.example.com", "podinfo"}
		cn.Spec.Service.Timeout = "5s"
		cn.Spec.Service.Retries = &v1alpha1.HTTPRetry{Attempts: 3, PerTryTimeout: "2s", RetryOn: "gateway-error,connect-failure"}
	}, withTrafficPolicy(`{"tls":{"mode":"ISTIO_MUTUAL"},"connectionPool":{"http":{"http1MaxPendingRequests":100}}}`))
	r := istio.New(env.Client, fieldManager)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: false}, state, "no VirtualService before the first Apply")

	require.NoError(t, r.Apply(ctx, cn, weights(90, 10)))

	vs := getVS(t, ns, "podinfo")
	assertOwnedByCanary(t, vs, cn)
	assert.Equal(t, map[string]any{
		"hosts":    []any{"podinfo.example.com", "podinfo"},
		"gateways": []any{"istio-system/public-gateway"},
		"http": []any{map[string]any{
			"name":    "podinfo",
			"route":   split("podinfo-primary", 9898, 90, "podinfo-canary", 10),
			"timeout": "5s",
			"retries": map[string]any{"attempts": int64(3), "perTryTimeout": "2s", "retryOn": "gateway-error,connect-failure"},
		}},
	}, spec(t, vs))
	assertFieldsOwned(t, vs, fieldManager, []string{`"f:hosts"`, `"f:gateways"`, `"f:http"`, `"f:ownerReferences"`, `"f:labels"`}, nil)
	assertOnlyManager(t, vs, fieldManager)

	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := get(t, "DestinationRule", ns, name)
		assertOwnedByCanary(t, dr, cn)
		assert.Equal(t, map[string]any{
			"host": name,
			"trafficPolicy": map[string]any{
				"tls":            map[string]any{"mode": "ISTIO_MUTUAL"},
				"connectionPool": map[string]any{"http": map[string]any{"http1MaxPendingRequests": int64(100)}},
			},
		}, spec(t, dr), name)
		assertOnlyManager(t, dr, fieldManager)
	}

	// Istio without its status feature writes no status: no signal, so nothing to wait for.
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: weights(90, 10), Accepted: true}, state)

	require.NoError(t, r.Apply(ctx, cn, weights(50, 50)))
	vs = getVS(t, ns, "podinfo")
	assert.Equal(t, int64(2), vs.GetGeneration())
	assert.Equal(t, split("podinfo-primary", 9898, 50, "podinfo-canary", 50), httpRoutes(t, vs)[0].(map[string]any)["route"])

	// Applying the weights the VirtualService already carries writes nothing.
	require.NoError(t, r.Apply(ctx, cn, weights(50, 50)))
	assert.Equal(t, int64(2), getVS(t, ns, "podinfo").GetGeneration())

	// A zero weight stays in place, so the canary's destination is never dropped.
	require.NoError(t, r.Apply(ctx, cn, weights(100, 0)))
	assert.Equal(t, split("podinfo-primary", 9898, 100, "podinfo-canary", 0), httpRoutes(t, getVS(t, ns, "podinfo"))[0].(map[string]any)["route"])

	// Dropping the traffic policy from the Canary drops it from the DestinationRules.
	cn.Spec.Service.TrafficPolicy = nil
	require.NoError(t, r.Apply(ctx, cn, weights(100, 0)))
	assert.Equal(t, map[string]any{"host": "podinfo-canary"}, spec(t, get(t, "DestinationRule", ns, "podinfo-canary")))

	// The garbage collector, through the owner references, removes everything with the Canary.
	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, int64(3), getVS(t, ns, "podinfo").GetGeneration())
}

func TestOwnedVirtualServiceDefaults(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns, func(cn *v1alpha1.Canary) { cn.Spec.Service.Name = "shop" })
	r := istio.New(env.Client, fieldManager)

	require.NoError(t, r.Apply(ctx, cn, weights(100, 0)))
	assert.Equal(t, map[string]any{
		"hosts": []any{"shop"},
		"http": []any{map[string]any{
			"name":  "shop",
			"route": split("shop-primary", 9898, 100, "shop-canary", 0),
		}},
	}, spec(t, getVS(t, ns, "shop")), "the mesh alone, the apex Service as host, no timeout or retries")
	assert.Equal(t, map[string]any{"host": "shop-primary"}, spec(t, get(t, "DestinationRule", ns, "shop-primary")))
	assert.Equal(t, map[string]any{"host": "shop-canary"}, spec(t, get(t, "DestinationRule", ns, "shop-canary")))
}

func TestObserveStatus(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns)
	r := istio.New(env.Client, fieldManager)
	require.NoError(t, r.Apply(ctx, cn, weights(90, 10)))
	require.NoError(t, r.Apply(ctx, cn, weights(80, 20)))
	require.Equal(t, int64(2), getVS(t, ns, "podinfo").GetGeneration())
	routing := weights(80, 20)

	// istiod writes observedGeneration as a string (protobuf JSON of an int64).
	setStatus(t, ns, "podinfo", map[string]any{"observedGeneration": "1"})
	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found:   true,
		Routing: routing,
		Message: "waiting for Istio to reconcile generation 2 of VirtualService " + ns + "/podinfo; it has seen generation 1",
	}, state)

	setStatus(t, ns, "podinfo", map[string]any{
		"observedGeneration": int64(2),
		"conditions": []any{map[string]any{
			"type": "Reconciled", "status": "False", "reason": "InProgress", "message": "2/3 proxies up to date.",
		}},
	})
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found:   true,
		Routing: routing,
		Message: `Istio has not reconciled VirtualService ` + ns + `/podinfo: condition Reconciled is "False": InProgress: 2/3 proxies up to date.`,
	}, state)

	setStatus(t, ns, "podinfo", map[string]any{
		"observedGeneration": "2",
		"conditions":         []any{map[string]any{"type": "Reconciled", "status": "True", "observedGeneration": "2"}},
	})
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: routing, Accepted: true}, state)

	// New weights are a new generation, which Istio has not reconciled yet.
	require.NoError(t, r.Apply(ctx, cn, weights(50, 50)))
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.False(t, state.Accepted)
	assert.Equal(t, "waiting for Istio to reconcile generation 3 of VirtualService "+ns+"/podinfo; it has seen generation 2", state.Message)
}

// TestObserveWaitsForAStatusWhereTheMeshWritesThem: a VirtualService without any status counts as
// accepted only while the Router has never seen one with a status; after that, the mesh is known
// to write them (istiod's status feature), and a new one waits for its first status.
func TestObserveWaitsForAStatusWhereTheMeshWritesThem(t *testing.T) {
	ctx := testContext(t)
	r := istio.New(env.Client, fieldManager)
	first := newCanary(t, newNamespace(t))
	require.NoError(t, r.Apply(ctx, first, weights(100, 0)))
	state, err := r.Observe(ctx, first)
	require.NoError(t, err)
	assert.True(t, state.Accepted, "no VirtualService with a status seen yet: nothing to wait for")

	setStatus(t, first.Namespace, "podinfo", map[string]any{"observedGeneration": "1"})
	state, err = r.Observe(ctx, first)
	require.NoError(t, err)
	assert.True(t, state.Accepted)

	second := newCanary(t, newNamespace(t))
	require.NoError(t, r.Apply(ctx, second, weights(100, 0)))
	state, err = r.Observe(ctx, second)
	require.NoError(t, err)
	assert.False(t, state.Accepted, "the mesh writes statuses, and this one has none yet")
	assert.Equal(t, "waiting for Istio to report on generation 1 of VirtualService "+second.Namespace+"/podinfo: the mesh writes the status of VirtualServices, and this one has none yet", state.Message)
	setStatus(t, second.Namespace, "podinfo", map[string]any{"observedGeneration": "1"})
	state, err = r.Observe(ctx, second)
	require.NoError(t, err)
	assert.True(t, state.Accepted)
}

func TestUserVirtualService(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserVS(t, ns, userVS)
	cn := newCanary(t, ns, withUserRoute("storefront"), withTrafficPolicy(`{"loadBalancer":{"simple":"LEAST_REQUEST"}}`))
	r := istio.New(env.Client, fieldManager)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found:   true,
		Message: "VirtualService " + ns + "/storefront still sends traffic to Service podinfo, not yet to podinfo-primary and podinfo-canary",
	}, state, "before the takeover the VirtualService carries no split")

	require.NoError(t, r.Apply(ctx, cn, weights(80, 20)))

	vs := getVS(t, ns, "storefront")
	assert.Equal(t, withApexDestinations(t, original, 80, 20), spec(t, vs), "only the apex route's destinations change")
	assert.Equal(t, original.GetLabels(), vs.GetLabels())
	assert.Equal(t, "mine", vs.GetAnnotations()["example.com/note"])
	assert.Empty(t, vs.GetOwnerReferences(), "the user's VirtualService stays the user's")
	record := vs.GetAnnotations()[istio.OriginalDestinationsAnnotation]
	var recorded []any
	require.NoError(t, json.Unmarshal([]byte(record), &recorded))
	assert.Equal(t, []any{map[string]any{
		"route": []any{map[string]any{
			"destination": map[string]any{"host": "podinfo", "port": map[string]any{"number": float64(9898)}},
		}},
		"mirror":           map[string]any{"host": "shadow"},
		"mirrorPercentage": map[string]any{"value": float64(10)},
	}}, recorded, "the apex route's destinations and mirror")
	assertFieldsOwned(t, vs, fieldManager, []string{`"f:http"`, istio.OriginalDestinationsAnnotation},
		[]string{`"f:hosts"`, `"f:gateways"`, `"f:tcp"`, `"f:labels"`, "example.com/note"})
	assertFieldsOwned(t, vs, "user", []string{`"f:hosts"`, `"f:gateways"`, `"f:tcp"`, `"f:labels"`, "example.com/note"}, nil)

	// The DestinationRules are trafficctl's even for the user's VirtualService.
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := get(t, "DestinationRule", ns, name)
		assertOwnedByCanary(t, dr, cn)
		assert.Equal(t, map[string]any{
			"host":          name,
			"trafficPolicy": map[string]any{"loadBalancer": map[string]any{"simple": "LEAST_REQUEST"}},
		}, spec(t, dr))
	}

	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: weights(80, 20), Accepted: true}, state)

	require.NoError(t, r.Apply(ctx, cn, weights(40, 60)))
	vs = getVS(t, ns, "storefront")
	assert.Equal(t, withApexDestinations(t, original, 40, 60), spec(t, vs))
	assert.Equal(t, record, vs.GetAnnotations()[istio.OriginalDestinationsAnnotation], "the record is written once")

	require.NoError(t, r.Release(ctx, cn))
	vs = getVS(t, ns, "storefront")
	assert.Equal(t, spec(t, original), spec(t, vs), "the user's spec is back exactly")
	assert.Equal(t, original.GetLabels(), vs.GetLabels())
	assert.Equal(t, original.GetAnnotations(), vs.GetAnnotations(), "the record is gone")
	assert.NotContains(t, vs.GetAnnotations(), istio.OriginalDestinationsAnnotation)

	// Releasing twice, or a VirtualService that is gone, is nothing to do.
	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, vs.GetResourceVersion(), getVS(t, ns, "storefront").GetResourceVersion())
	require.NoError(t, env.Client.Delete(ctx, vs))
	require.NoError(t, r.Release(ctx, cn))
}

// TestUserVirtualServiceHostForms covers the ways a destination can name the apex Service: the
// primary and canary are written the same way, on the port the user's destination names.
func TestUserVirtualServiceHostForms(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserVS(t, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
spec:
  hosts: [shop.example.com]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: podinfo.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  - match: [{uri: {prefix: /b}}]
    route: [{destination: {host: podinfo.NAMESPACE}}]
  - match: [{uri: {prefix: /c}}]
    route: [{destination: {host: podinfo.NAMESPACE.svc, subset: v1}}]
  - match: [{uri: {prefix: /d}}]
    route: [{destination: {host: podinfo.other.svc.cluster.local}}]
  - route: [{destination: {host: podinfo.example.com}}]
`)
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := istio.New(env.Client, fieldManager)

	require.NoError(t, r.Apply(ctx, cn, weights(70, 30)))
	routes := httpRoutes(t, getVS(t, ns, "storefront"))
	assert.Equal(t, split("podinfo-primary."+ns+".svc.cluster.local", 8080, 70, "podinfo-canary."+ns+".svc.cluster.local", 30), routes[0].(map[string]any)["route"])
	assert.Equal(t, split("podinfo-primary."+ns, 9898, 70, "podinfo-canary."+ns, 30), routes[1].(map[string]any)["route"])
	assert.Equal(t, split("podinfo-primary."+ns+".svc", 9898, 70, "podinfo-canary."+ns+".svc", 30), routes[2].(map[string]any)["route"])
	wantRoutes := httpRoutes(t, original)
	assert.Equal(t, wantRoutes[3:], routes[3:], "another namespace's podinfo and an external host are not the apex Service")

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, weights(70, 30), state.Routing)

	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, spec(t, original), spec(t, getVS(t, ns, "storefront")))
}

// TestUserVirtualServiceEditedDuringRollout covers a user who adds another route to the apex
// Service while trafficctl holds the VirtualService: it is taken over too, and Release restores
// both routes.
func TestUserVirtualServiceEditedDuringRollout(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	createUserVS(t, ns, userVS)
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := istio.New(env.Client, fieldManager)
	require.NoError(t, r.Apply(ctx, cn, weights(80, 20)))

	edited := getVS(t, ns, "storefront")
	http := httpRoutes(t, edited)
	http = append(http, map[string]any{
		"match": []any{map[string]any{"uri": map[string]any{"prefix": "/v2"}}},
		"route": []any{map[string]any{"destination": map[string]any{"host": "podinfo"}}},
	})
	require.NoError(t, unstructured.SetNestedSlice(edited.Object, http, "spec", "http"))
	require.NoError(t, env.Client.Update(ctx, edited, client.FieldOwner("user")))
	edited = getVS(t, ns, "storefront")

	require.NoError(t, r.Apply(ctx, cn, weights(80, 20)))
	routes := httpRoutes(t, getVS(t, ns, "storefront"))
	for _, i := range []int{0, 3} {
		assert.Equal(t, split("podinfo-primary", 9898, 80, "podinfo-canary", 20), routes[i].(map[string]any)["route"], "route %d", i)
	}

	require.NoError(t, r.Release(ctx, cn))
	want := httpRoutes(t, edited)
	want[0].(map[string]any)["route"] = []any{map[string]any{
		"destination": map[string]any{"host": "podinfo", "port": map[string]any{"number": int64(9898)}},
	}}
	assert.Equal(t, want, httpRoutes(t, getVS(t, ns, "storefront")))
}

func TestUserVirtualServiceWithoutApexRoute(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	vs := fromYAML(t, ns, userVS)
	http := httpRoutes(t, vs)
	require.NoError(t, unstructured.SetNestedSlice(vs.Object, http[1:], "spec", "http"))
	require.NoError(t, env.Client.Create(ctx, vs, client.FieldOwner("user")))
	original := getVS(t, ns, "storefront")
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := istio.New(env.Client, fieldManager)

	err := r.Apply(ctx, cn, weights(90, 10))
	require.Error(t, err)
	assert.True(t, router.IsInvalidRoute(err), "a VirtualService without an apex route is the user's to fix: %v", err)
	assert.Equal(t, "VirtualService "+ns+"/storefront has no HTTP route to Service podinfo; "+
		"add one or point service.virtualServiceRef at another VirtualService", err.Error())
	after := getVS(t, ns, "storefront")
	assert.Equal(t, original.GetResourceVersion(), after.GetResourceVersion(), "nothing was written")
	assertNotFound(t, "DestinationRule", ns, "podinfo-primary")

	_, err = r.Observe(ctx, cn)
	assert.True(t, router.IsInvalidRoute(err), "Observe reports the same problem: %v", err)
}

func TestMissingUserVirtualService(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := istio.New(env.Client, fieldManager)

	err := r.Apply(ctx, cn, weights(90, 10))
	require.Error(t, err)
	assert.False(t, router.IsInvalidRoute(err), "the user may create the VirtualService later, so this is retried")
	assert.True(t, apierrors.IsNotFound(err), "%v", err)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: false}, state)
	require.NoError(t, r.Release(ctx, cn))
}

func TestApplyRejectsInvalidTrafficPolicy(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	r := istio.New(env.Client, fieldManager)

	for name, policy := range map[string]string{
		"bad-tls-mode":        `{"tls":{"mode":"SOMETIMES"}}`,
		"short-tcp-timeout":   `{"connectionPool":{"tcp":{"connectTimeout":"0s"}}}`,
		"string-for-a-number": `{"connectionPool":{"http":{"http1MaxPendingRequests":"many"}}}`,
		"unknown-field":       `{"tls":{"mode":"ISTIO_MUTUAL"},"loadBalancr":{"simple":"RANDOM"}}`,
	} {
		cn := newCanary(t, ns, func(cn *v1alpha1.Canary) {
			cn.Name = name
			cn.Spec.Service.Name = name
		}, withTrafficPolicy(policy))
		err := r.Apply(ctx, cn, weights(90, 10))
		require.Error(t, err, name)
		// Server-side apply reports a wrong type or an undeclared field as an internal error, a
		// value the schema rejects as invalid; either way the apiserver refuses the policy, which only the user can fix.
		assert.True(t, apierrors.IsInvalid(err) || apierrors.IsInternalError(err), "the Istio CRD schema rejects %s: %v", policy, err)
		assert.True(t, router.IsInvalidRoute(err), "%v", err)
		assert.Contains(t, err.Error(), "Istio's DestinationRule schema does not accept service.trafficPolicy of Canary "+ns+"/"+name)
		assert.Contains(t, err.Error(), "apply DestinationRule "+ns+"/"+name+"-primary")
		assertNotFound(t, "VirtualService", ns, name)
	}
}

func TestApplyRejectsOutOfRangeWeights(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	owned := newCanary(t, ns)
	r := istio.New(env.Client, fieldManager)

	for _, w := range []rollout.Weights{{Primary: 120, Canary: -20}, {Primary: 50, Canary: 40}, {Primary: 0, Canary: 0}} {
		err := r.Apply(ctx, owned, rollout.Routing{Weights: w})
		require.Error(t, err, "%s", w)
		assert.Contains(t, err.Error(), "add up to 100")
	}
	assertNotFound(t, "VirtualService", ns, "podinfo")
	assertNotFound(t, "DestinationRule", ns, "podinfo-primary")

	original := createUserVS(t, ns, userVS)
	user := newCanary(t, ns, func(cn *v1alpha1.Canary) {
		cn.Name = "podinfo-user"
		withUserRoute("storefront")(cn)
	})
	require.Error(t, r.Apply(ctx, user, weights(101, -1)))
	assert.Equal(t, original.GetResourceVersion(), getVS(t, ns, "storefront").GetResourceVersion())
}

// TestUserVirtualServiceConflict shows that a rewrite of a user's VirtualService computed from a
// version that another writer has since changed fails, instead of putting the old routes back
// over the new ones.
func TestUserVirtualServiceConflict(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	createUserVS(t, ns, userVS)
	cn := newCanary(t, ns, withUserRoute("storefront"))

	racing, err := client.NewWithWatch(env.Config, client.Options{Scheme: testenv.Scheme()})
	require.NoError(t, err)
	racing = interceptor.NewClient(racing, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			if !isVirtualService(obj) {
				return c.Apply(ctx, obj, opts...)
			}
			// The user edits the VirtualService between trafficctl's read and its write.
			vs := &unstructured.Unstructured{}
			vs.SetAPIVersion("networking.istio.io/v1")
			vs.SetKind("VirtualService")
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "storefront"}, vs); err != nil {
				return err
			}
			http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
			http[1].(map[string]any)["timeout"] = "7s"
			if err := unstructured.SetNestedSlice(vs.Object, http, "spec", "http"); err != nil {
				return err
			}
			if err := c.Update(ctx, vs, client.FieldOwner("user")); err != nil {
				return err
			}
			return c.Apply(ctx, obj, opts...)
		},
	})
	r := istio.New(racing, fieldManager)

	err = r.Apply(ctx, cn, weights(80, 20))
	require.Error(t, err)
	assert.True(t, apierrors.IsConflict(err), "%v", err)
	vs := getVS(t, ns, "storefront")
	assert.Equal(t, "7s", httpRoutes(t, vs)[1].(map[string]any)["timeout"], "the user's edit stands")
	assert.NotContains(t, vs.GetAnnotations(), istio.OriginalDestinationsAnnotation)

	// The retry reads the new version and succeeds.
	require.NoError(t, istio.New(env.Client, fieldManager).Apply(ctx, cn, weights(80, 20)))
	routes := httpRoutes(t, getVS(t, ns, "storefront"))
	assert.Equal(t, "7s", routes[1].(map[string]any)["timeout"])
	assert.Equal(t, split("podinfo-primary", 9898, 80, "podinfo-canary", 20), routes[0].(map[string]any)["route"])
}

// userVS is a VirtualService a user wrote: an apex route with a match, retries, headers, a fault
// and a mirror; a route to another Service; a redirect; and TCP routes.
const userVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
  labels: {team: shop}
  annotations: {example.com/note: mine}
spec:
  hosts: [shop.example.com, podinfo]
  gateways: [istio-system/public-gateway, mesh]
  http:
  - name: api
    match:
    - uri: {prefix: /api}
      headers:
        x-env: {exact: prod}
    route:
    - destination: {host: podinfo, port: {number: 9898}}
    retries: {attempts: 2, perTryTimeout: 1s, retryOn: 5xx}
    timeout: 10s
    headers:
      request:
        add: {x-via: mesh}
    fault:
      delay:
        percentage: {value: 0.5}
        fixedDelay: 2s
    mirror: {host: shadow}
    mirrorPercentage: {value: 10}
  - name: static
    match: [{uri: {prefix: /static}}]
    route:
    - destination: {host: static, port: {number: 80}}
      weight: 100
  - name: old-shop
    match: [{uri: {exact: /old-shop}}]
    redirect: {uri: /api, redirectCode: 301}
  tcp:
  - match: [{port: 5432}]
    route:
    - destination: {host: postgres, port: {number: 5432}}
`

// createUserVS creates the manifest, with NAMESPACE standing for ns, as the user's field manager
// and returns it as the apiserver stored it.
func createUserVS(t *testing.T, ns, manifest string) *unstructured.Unstructured {
	t.Helper()
	vs := fromYAML(t, ns, replaceNS(manifest, ns))
	require.NoError(t, env.Client.Create(testContext(t), vs, client.FieldOwner("user")))
	return getVS(t, ns, vs.GetName())
}

// withApexDestinations is original's spec with the apex route (the first) split between primary
// and canary.
func withApexDestinations(t *testing.T, original *unstructured.Unstructured, primary, canary int64) any {
	t.Helper()
	want := original.DeepCopy()
	http := httpRoutes(t, want)
	http[0].(map[string]any)["route"] = split("podinfo-primary", 9898, primary, "podinfo-canary", canary)
	require.NoError(t, unstructured.SetNestedSlice(want.Object, http, "spec", "http"))
	return spec(t, want)
}

func httpRoutes(t *testing.T, vs *unstructured.Unstructured) []any {
	t.Helper()
	http, ok := spec(t, vs, "http").([]any)
	require.True(t, ok, "spec.http is a list")
	return http
}

// weights is the Routing of a plain weighted split.
func weights(primary, canary int32) rollout.Routing {
	return rollout.Routing{Weights: rollout.Weights{Primary: primary, Canary: canary}}
}

// split is a destinations list as the apiserver stores it.
func split(primary string, port, primaryWeight int64, canary string, canaryWeight int64) []any {
	dst := func(host string, weight int64) any {
		return map[string]any{
			"destination": map[string]any{"host": host, "port": map[string]any{"number": port}},
			"weight":      weight,
		}
	}
	return []any{dst(primary, primaryWeight), dst(canary, canaryWeight)}
}

func assertOwnedByCanary(t *testing.T, obj *unstructured.Unstructured, cn *v1alpha1.Canary) {
	t.Helper()
	assert.Equal(t, map[string]string{"app.kubernetes.io/managed-by": "trafficctl"}, obj.GetLabels())
	require.Len(t, obj.GetOwnerReferences(), 1)
	owner := obj.GetOwnerReferences()[0]
	assert.Equal(t, "trafficctl.io/v1alpha1", owner.APIVersion)
	assert.Equal(t, "Canary", owner.Kind)
	assert.Equal(t, cn.Name, owner.Name)
	assert.Equal(t, cn.UID, owner.UID)
	assert.True(t, ptr.Deref(owner.Controller, false), "the Canary is the controller of %s", obj.GetName())
}

// assertOnlyManager checks that manager is the only writer of obj, so it owns nothing it did not send.
func assertOnlyManager(t *testing.T, obj *unstructured.Unstructured, manager string) {
	t.Helper()
	for _, entry := range obj.GetManagedFields() {
		assert.Equal(t, manager, entry.Manager, "%s has no other writer", obj.GetName())
	}
}

func assertNotFound(t *testing.T, kind, ns, name string) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("networking.istio.io/v1")
	obj.SetKind(kind)
	err := env.Client.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: name}, obj)
	assert.True(t, apierrors.IsNotFound(err), "%s %s/%s does not exist: %v", kind, ns, name, err)
}

func isVirtualService(obj runtime.ApplyConfiguration) bool {
	u, ok := obj.(interface{ GetKind() string })
	return ok && u.GetKind() == "VirtualService"
}

// replaceNS puts namespace ns in place of NAMESPACE in manifest.
func replaceNS(manifest, ns string) string { return strings.ReplaceAll(manifest, "NAMESPACE", ns) }
