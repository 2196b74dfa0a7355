package gatewayapi

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

// checkMirrorKept looks at the route as the apiserver stored it after a write that mirrors part
// of the traffic. The HTTPRoute CRDs of Gateway API before v1.2 have no RequestMirror percent:
// the apiserver prunes the field without an error, and the route would quietly mirror every
// request. That is reported as a router.InvalidRouteError naming analysis.mirrorWeight.
func checkMirrorKept(cn *v1alpha1.Canary, stored *unstructured.Unstructured, want int32) error {
	route := &gatewayv1.HTTPRoute{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(stored.Object, route); err != nil {
		return fmt.Errorf("decode HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	return mirrorKept(route, backendsOf(cn), want)
}

// mirrorKept reports a mirror stored at 100% where want percent was written.
func mirrorKept(route *gatewayv1.HTTPRoute, b backends, want int32) error {
	if want <= 0 || want >= 100 {
		return nil
	}
	split, ok := b.splitRule(route.Spec.Rules)
	if !ok {
		return nil
	}
	if got := b.routing(split, route.Spec.Rules).Mirror; got == 100 {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"HTTPRoute %s/%s stores the mirror of %d%% as a mirror of every request: this cluster's HTTPRoute CRD has no RequestMirror percent (Gateway API before v1.2); install Gateway API v1.2 or later, or drop analysis.mirrorWeight to mirror every request",
			route.Namespace, route.Name, want)}
	}
	return nil
}
