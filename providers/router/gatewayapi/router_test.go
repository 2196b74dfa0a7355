package gatewayapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/rollout"
)

const fieldManager = "trafficctl"

func TestOwnedRoute(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns)
	r := gatewayapi.New(env.Client, fieldManager)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: false}, state, "no route before the first Apply")

	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 90, Canary: 10}}))

	route := getRoute(t, ns, "podinfo")
	assert.Equal(t, map[string]string{"app.kubernetes.io/managed-by": "trafficctl"}, route.Labels)
	require.Len(t, route.OwnerReferences, 1)
	owner := route.OwnerReferences[0]
	assert.Equal(t, "trafficctl.io/v1alpha1", owner.APIVersion)
	assert.Equal(t, "Canary", owner.Kind)
	assert.Equal(t, cn.Name, owner.Name)
	assert.Equal(t, cn.UID, owner.UID)
	assert.True(t, ptr.Deref(owner.Controller, false), "the Canary is the route's controller")
	assert.Equal(t, []gatewayv1.ParentReference{{
		Group:     ptr.To(gatewayv1.Group(gatewayv1.GroupName)),
		Kind:      ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace("infra")),
		Name:      "public-gw",
	}}, route.Spec.ParentRefs)
	assert.Equal(t, []gatewayv1.Hostname{"podinfo.example.com"}, route.Spec.Hostnames)
	require.Len(t, route.Spec.Rules, 1)
	assert.Equal(t, ptr.To(gatewayv1.SectionName("split")), route.Spec.Rules[0].Name)
	assert.Equal(t, []gatewayv1.HTTPRouteMatch{{
		Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")},
	}}, route.Spec.Rules[0].Matches)
	assert.Equal(t, []gatewayv1.HTTPBackendRef{
		serviceBackend("podinfo-primary", 9898, 90),
		serviceBackend("podinfo-canary", 9898, 10),
	}, route.Spec.Rules[0].BackendRefs)

	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found:    true,
		Routing:  rollout.Routing{Weights: rollout.Weights{Primary: 90, Canary: 10}},
		Accepted: false,
		Message:  "waiting for Gateway infra/public-gw to accept generation 1 of HTTPRoute " + ns + "/podinfo",
	}, state)

	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 50, Canary: 50}}))
	route = getRoute(t, ns, "podinfo")
	assert.Equal(t, int64(2), route.Generation)
	assert.Equal(t, []gatewayv1.HTTPBackendRef{
		serviceBackend("podinfo-primary", 9898, 50),
		serviceBackend("podinfo-canary", 9898, 50),
	}, route.Spec.Rules[0].BackendRefs)

	acceptRoute(t, ns, "podinfo")
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: rollout.Routing{Weights: rollout.Weights{Primary: 50, Canary: 50}}, Accepted: true}, state)

	// Applying the weights the route already carries writes nothing, so acceptance holds.
	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 50, Canary: 50}}))
	assert.Equal(t, int64(2), getRoute(t, ns, "podinfo").Generation)
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.True(t, state.Accepted)

	// New weights are a new generation, which the Gateway has not accepted yet.
	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 0, Canary: 100}}))
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{
		Found:    true,
		Routing:  rollout.Routing{Weights: rollout.Weights{Primary: 0, Canary: 100}},
		Accepted: false,
		Message:  "waiting for Gateway infra/public-gw to accept generation 3 of HTTPRoute " + ns + "/podinfo",
	}, state)

	// The garbage collector, through the owner reference, removes the route with its Canary.
	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, int64(3), getRoute(t, ns, "podinfo").Generation)
}

func TestUserRoute(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserRoute(t, ns, userRoute(ns))
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := gatewayapi.New(env.Client, fieldManager)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.True(t, state.Found)
	assert.Equal(t, rollout.Routing{}, state.Routing, "before the takeover the route carries no split")
	assert.False(t, state.Accepted, "nothing to accept before trafficctl wrote its split")
	assert.Contains(t, state.Message, "still sends traffic to Service podinfo")

	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 80, Canary: 20}}))

	route := getRoute(t, ns, "storefront")
	assert.Equal(t, withApexBackends(original.Spec, 80, 20), route.Spec, "only the apex rule's backendRefs change")
	assert.Equal(t, original.Labels, route.Labels)
	assert.Equal(t, "mine", route.Annotations["example.com/note"])
	record := route.Annotations[gatewayapi.OriginalBackendsAnnotation]
	var recorded [][]gatewayv1.HTTPBackendRef
	require.NoError(t, json.Unmarshal([]byte(record), &recorded))
	assert.Equal(t, [][]gatewayv1.HTTPBackendRef{original.Spec.Rules[0].BackendRefs}, recorded)
	assertFieldsOwned(t, route, fieldManager, []string{`"f:rules"`, gatewayapi.OriginalBackendsAnnotation},
		[]string{`"f:parentRefs"`, `"f:hostnames"`, `"f:labels"`, "example.com/note"})
	assertFieldsOwned(t, route, "user", []string{`"f:parentRefs"`, `"f:hostnames"`, `"f:labels"`, "example.com/note"}, nil)

	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.Routing{Weights: rollout.Weights{Primary: 80, Canary: 20}}, state.Routing)
	assert.False(t, state.Accepted)
	acceptRoute(t, ns, "storefront")
	state, err = r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.True(t, state.Accepted, state.Message)

	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 40, Canary: 60}}))
	route = getRoute(t, ns, "storefront")
	assert.Equal(t, withApexBackends(original.Spec, 40, 60), route.Spec)
	assert.Equal(t, record, route.Annotations[gatewayapi.OriginalBackendsAnnotation], "the record is written once")

	require.NoError(t, r.Release(ctx, cn))
	route = getRoute(t, ns, "storefront")
	assert.Equal(t, original.Spec, route.Spec, "the user's spec is back exactly")
	assert.Equal(t, original.Labels, route.Labels)
	assert.Equal(t, original.Annotations, route.Annotations, "the record is gone")
	assert.NotContains(t, route.Annotations, gatewayapi.OriginalBackendsAnnotation)

	// Releasing twice, or a route that is gone, is nothing to do.
	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, route.ResourceVersion, getRoute(t, ns, "storefront").ResourceVersion)
	require.NoError(t, env.Client.Delete(ctx, route))
	require.NoError(t, r.Release(ctx, cn))
}

// TestUserRouteEditedDuringRollout covers a user who adds another rule for the apex Service while
// trafficctl holds the route: it is taken over too, and Release restores both rules.
func TestUserRouteEditedDuringRollout(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	createUserRoute(t, ns, userRoute(ns))
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := gatewayapi.New(env.Client, fieldManager)
	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 80, Canary: 20}}))

	edited := getRoute(t, ns, "storefront")
	v2 := edited.Spec.Rules[0].DeepCopy()
	v2.Matches[0].Path.Value = ptr.To("/v2")
	v2.BackendRefs = []gatewayv1.HTTPBackendRef{serviceBackend("podinfo", 9898, 1)}
	edited.Spec.Rules = append(edited.Spec.Rules, *v2)
	require.NoError(t, env.Client.Update(ctx, edited, client.FieldOwner("user")))
	edited = getRoute(t, ns, "storefront")

	require.NoError(t, r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 80, Canary: 20}}))
	route := getRoute(t, ns, "storefront")
	for _, i := range []int{0, 3} {
		assert.Equal(t, []gatewayv1.HTTPBackendRef{
			serviceBackend("podinfo-primary", 9898, 80),
			serviceBackend("podinfo-canary", 9898, 20),
		}, route.Spec.Rules[i].BackendRefs, "rule %d", i)
	}

	require.NoError(t, r.Release(ctx, cn))
	want := edited.Spec.DeepCopy()
	want.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{serviceBackend("podinfo", 9898, 1)}
	assert.Equal(t, *want, getRoute(t, ns, "storefront").Spec)
}

func TestUserRouteWithoutApexRule(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	route := userRoute(ns)
	route.Spec.Rules = route.Spec.Rules[1:]
	original := createUserRoute(t, ns, route)
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := gatewayapi.New(env.Client, fieldManager)

	err := r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 90, Canary: 10}})
	require.Error(t, err)
	assert.True(t, router.IsInvalidRoute(err), "a route without an apex rule is the user's to fix: %v", err)
	assert.Equal(t, "HTTPRoute "+ns+"/storefront has no rule that sends traffic to Service podinfo; "+
		"add a backendRef to it or point service.httpRouteRef at another route", err.Error())
	after := getRoute(t, ns, "storefront")
	assert.Equal(t, original.ResourceVersion, after.ResourceVersion, "nothing was written")
	assert.Equal(t, original.Spec, after.Spec)

	_, err = r.Observe(ctx, cn)
	assert.True(t, router.IsInvalidRoute(err), "Observe reports the same problem: %v", err)
}

func TestMissingUserRoute(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns, withUserRoute("storefront"))
	r := gatewayapi.New(env.Client, fieldManager)

	err := r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 90, Canary: 10}})
	require.Error(t, err)
	assert.False(t, router.IsInvalidRoute(err), "the user may create the route later, so this is retried")
	assert.True(t, apierrors.IsNotFound(err), "%v", err)

	state, err := r.Observe(ctx, cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: false}, state)
	require.NoError(t, r.Release(ctx, cn))
}

func TestApplyRejectsOutOfRangeWeight(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	owned := newCanary(t, ns)
	r := gatewayapi.New(env.Client, fieldManager)

	err := r.Apply(ctx, owned, rollout.Routing{Weights: rollout.Weights{Primary: 2000000, Canary: 0}})
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "the CRD caps a weight at 1000000: %v", err)

	original := createUserRoute(t, ns, userRoute(ns))
	user := newCanary(t, ns, func(cn *v1alpha1.Canary) {
		cn.Name = "podinfo-user"
		withUserRoute("storefront")(cn)
	})
	err = r.Apply(ctx, user, rollout.Routing{Weights: rollout.Weights{Primary: 2000000, Canary: 0}})
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "%v", err)
	assert.Equal(t, original.ResourceVersion, getRoute(t, ns, "storefront").ResourceVersion)
}

// TestUserRouteConflict shows that a rewrite of a user's route computed from a version that another
// writer has since changed fails, instead of putting the old rules back over the new ones.
func TestUserRouteConflict(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	createUserRoute(t, ns, userRoute(ns))
	cn := newCanary(t, ns, withUserRoute("storefront"))

	racing, err := client.NewWithWatch(env.Config, client.Options{Scheme: testenv.Scheme()})
	require.NoError(t, err)
	racing = interceptor.NewClient(racing, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			// The user edits the route between trafficctl's read and its write.
			route := &gatewayv1.HTTPRoute{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "storefront"}, route); err != nil {
				return err
			}
			route.Spec.Rules[1].BackendRefs[0].Port = ptr.To(gatewayv1.PortNumber(8080))
			if err := c.Update(ctx, route, client.FieldOwner("user")); err != nil {
				return err
			}
			return c.Apply(ctx, obj, opts...)
		},
	})
	r := gatewayapi.New(racing, fieldManager)

	err = r.Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 80, Canary: 20}})
	require.Error(t, err)
	assert.True(t, apierrors.IsConflict(err), "%v", err)
	route := getRoute(t, ns, "storefront")
	assert.Equal(t, ptr.To(gatewayv1.PortNumber(8080)), route.Spec.Rules[1].BackendRefs[0].Port, "the user's edit stands")
	assert.NotContains(t, route.Annotations, gatewayapi.OriginalBackendsAnnotation)

	// The retry reads the new version and succeeds.
	require.NoError(t, gatewayapi.New(env.Client, fieldManager).Apply(ctx, cn, rollout.Routing{Weights: rollout.Weights{Primary: 80, Canary: 20}}))
	route = getRoute(t, ns, "storefront")
	assert.Equal(t, ptr.To(gatewayv1.PortNumber(8080)), route.Spec.Rules[1].BackendRefs[0].Port)
	assert.Equal(t, serviceBackend("podinfo-primary", 9898, 80), route.Spec.Rules[0].BackendRefs[0])
}

// userRoute is a route a user wrote: an apex rule with a match, a filter and timeouts, a rule for
// another Service with defaulted matches, and a redirect with no backends.
func userRoute(ns string) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "storefront",
			Namespace:   ns,
			Labels:      map[string]string{"team": "shop"},
			Annotations: map[string]string{"example.com/note": "mine"},
		},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{
				{Name: "public-gw", Namespace: ptr.To(gatewayv1.Namespace("infra")), SectionName: ptr.To(gatewayv1.SectionName("https"))},
			}},
			Hostnames: []gatewayv1.Hostname{"shop.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{
				{
					Matches: []gatewayv1.HTTPRouteMatch{{
						Path:    &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/api")},
						Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-env", Value: "prod"}},
					}},
					Filters: []gatewayv1.HTTPRouteFilter{{
						Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
						RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
							Add: []gatewayv1.HTTPHeader{{Name: "x-via", Value: "gateway"}},
						},
					}},
					BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
						BackendObjectReference: gatewayv1.BackendObjectReference{Name: "podinfo", Port: ptr.To(gatewayv1.PortNumber(9898))},
					}}},
					Timeouts: &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("10s"))},
				},
				{
					// No matches: the apiserver defaults them to a "/" prefix.
					BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
						BackendObjectReference: gatewayv1.BackendObjectReference{Name: "static", Port: ptr.To(gatewayv1.PortNumber(80))},
					}}},
				},
				{
					Matches: []gatewayv1.HTTPRouteMatch{{
						Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To("/old-shop")},
					}},
					Filters: []gatewayv1.HTTPRouteFilter{{
						Type: gatewayv1.HTTPRouteFilterRequestRedirect,
						RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{
							Path:       &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To("/api")},
							StatusCode: ptr.To(301),
						},
					}},
				},
			},
		},
	}
}

// createUserRoute creates route as the user's field manager and returns it as the apiserver stored
// it, defaults included.
func createUserRoute(t *testing.T, ns string, route *gatewayv1.HTTPRoute) *gatewayv1.HTTPRoute {
	t.Helper()
	require.NoError(t, env.Client.Create(testContext(t), route, client.FieldOwner("user")))
	return getRoute(t, ns, route.Name)
}

// withApexBackends is spec with the apex rule (the first) split between primary and canary.
func withApexBackends(spec gatewayv1.HTTPRouteSpec, primary, canary int32) gatewayv1.HTTPRouteSpec {
	want := *spec.DeepCopy()
	want.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{
		serviceBackend("podinfo-primary", 9898, primary),
		serviceBackend("podinfo-canary", 9898, canary),
	}
	return want
}

// serviceBackend is a backendRef to a Service as the apiserver returns it, defaults included.
func serviceBackend(name string, port, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")),
			Kind:  ptr.To(gatewayv1.Kind("Service")),
			Name:  gatewayv1.ObjectName(name),
			Port:  ptr.To(port),
		},
		Weight: ptr.To(weight),
	}}
}

// assertFieldsOwned checks the fields manager owns through server-side apply or update: owned
// must appear in its managed fields, notOwned must not.
func assertFieldsOwned(t *testing.T, route *gatewayv1.HTTPRoute, manager string, owned, notOwned []string) {
	t.Helper()
	var fields strings.Builder
	for _, entry := range route.ManagedFields {
		if entry.Manager == manager && entry.FieldsV1 != nil {
			fields.Write(entry.FieldsV1.GetRawBytes())
		}
	}
	for _, f := range owned {
		assert.Contains(t, fields.String(), f, "%s owns %s", manager, f)
	}
	for _, f := range notOwned {
		assert.NotContains(t, fields.String(), f, "%s does not own %s", manager, f)
	}
}

// An Apply that would write what the route already carries writes nothing; a changed routing,
// a spec someone else changed, or a label someone removed is written again.
func TestApplyWritesOnlyWhatChanged(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns)
	applies := 0
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: testenv.Scheme()})
	require.NoError(t, err)
	r := gatewayapi.New(interceptor.NewClient(direct, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies++
			return c.Apply(ctx, obj, opts...)
		},
	}), fieldManager)
	at := func(canary int32) rollout.Routing {
		return rollout.Routing{Weights: rollout.Weights{Primary: 100 - canary, Canary: canary}}
	}

	require.NoError(t, r.Apply(ctx, cn, at(10)))
	require.NoError(t, r.Apply(ctx, cn, at(10)))
	require.NoError(t, r.Apply(ctx, cn, at(10)))
	assert.Equal(t, 1, applies, "the same routing three times is written once")

	require.NoError(t, r.Apply(ctx, cn, at(20)))
	assert.Equal(t, 2, applies, "a new routing is written")

	route := getRoute(t, ns, "podinfo")
	route.Spec.Hostnames = append(route.Spec.Hostnames, "other.example.com")
	require.NoError(t, env.Client.Update(ctx, route))
	require.NoError(t, r.Apply(ctx, cn, at(20)))
	assert.Equal(t, 3, applies, "a spec changed by someone else is written back")
	assert.Equal(t, []gatewayv1.Hostname{"podinfo.example.com"}, getRoute(t, ns, "podinfo").Spec.Hostnames)

	route = getRoute(t, ns, "podinfo")
	route.Labels = nil
	require.NoError(t, env.Client.Update(ctx, route))
	require.NoError(t, r.Apply(ctx, cn, at(20)))
	assert.Equal(t, 4, applies, "a label taken off is put back")
	require.NoError(t, r.Apply(ctx, cn, at(20)))
	assert.Equal(t, 4, applies)
}
