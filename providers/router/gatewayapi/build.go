package gatewayapi

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Build is the HTTPRoute that carries routing for cn, whole, as it stands once Apply has written
// it: what Apply writes, and what `trafficctl plan` prints. live is the route as it stands now; it
// is needed for a route the user owns (service.httpRouteRef), whose rules are rewritten from it,
// and ignored for one trafficctl owns. Build reads and writes nothing: a route that cannot carry
// routing is a router.InvalidRouteError, as from Apply.
func Build(cn *v1alpha1.Canary, routing rollout.Routing, live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if !cn.UserOwnsRoute() {
		return ownedRoute(cn, routing)
	}
	if live == nil {
		return nil, fmt.Errorf("HTTPRoute %s/%s, which service.httpRouteRef names, is needed to build its rules", cn.Namespace, cn.HTTPRouteName())
	}
	route, err := parseUserRoute(live)
	if err != nil {
		return nil, err
	}
	rules, record, err := userRules(cn, routing, route)
	if err != nil {
		return nil, err
	}
	out := live.DeepCopy()
	if err := unstructured.SetNestedSlice(out.Object, rules, "spec", "rules"); err != nil {
		return nil, fmt.Errorf("build HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	annotations := out.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[OriginalBackendsAnnotation] = record
	out.SetAnnotations(annotations)
	return out, nil
}
