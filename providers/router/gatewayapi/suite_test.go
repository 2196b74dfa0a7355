package gatewayapi_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/internal/testenv"
)

// The suite runs against a real kube-apiserver and etcd, so the Gateway API CRDs' schema,
// defaults and CEL rules, and server-side apply's field ownership, are the real ones.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace gives each test a namespace of its own.
func newNamespace(t *testing.T) string { return env.Namespace(t) }

// newCanary creates Canary podinfo (port 9898) in ns, changed by mods, so routes can be owned by a
// real object with a UID.
func newCanary(t *testing.T, ns string, mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	t.Helper()
	cn := gen.Canary(ns, mods...)
	require.NoError(t, env.Client.Create(testContext(t), cn))
	return cn
}

// withUserRoute points the Canary at the user's HTTPRoute name.
func withUserRoute(name string) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Service.ParentRefs = nil
		cn.Spec.Service.Hostnames = nil
		cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: name}
	}
}

func getRoute(t *testing.T, ns, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	route := &gatewayv1.HTTPRoute{}
	require.NoError(t, env.Client.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: name}, route))
	return route
}

// acceptRoute plays the gateway controller: every parent accepts the route's current generation.
func acceptRoute(t *testing.T, ns, name string) {
	t.Helper()
	route := getRoute(t, ns, name)
	route.Status.Parents = nil
	for _, ref := range route.Spec.ParentRefs {
		route.Status.Parents = append(route.Status.Parents, gatewayv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: "example.com/gateway-controller",
			Conditions: []metav1.Condition{{
				Type:               string(gatewayv1.RouteConditionAccepted),
				Status:             metav1.ConditionTrue,
				ObservedGeneration: route.Generation,
				LastTransitionTime: metav1.Now(),
				Reason:             string(gatewayv1.RouteReasonAccepted),
				Message:            "Route is accepted.",
			}},
		})
	}
	require.NoError(t, env.Client.Status().Update(testContext(t), route))
}
