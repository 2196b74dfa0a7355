package istio

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Build is every object Apply writes to carry routing for cn, whole, as they stand once written,
// in the order Apply writes them: the DestinationRules of the primary and canary Services, then
// the VirtualService. It is what `trafficctl plan` prints. live is the VirtualService as it stands
// now; it is needed for one the user owns (service.virtualServiceRef), whose HTTP routes are
// rewritten from it, and ignored for one trafficctl owns. Build reads and writes nothing: a
// Canary or a VirtualService that cannot carry routing is a router.InvalidRouteError, as from
// Apply. Raw fields Istio's schema refuses are only found by the apiserver, on Apply.
func Build(cn *v1alpha1.Canary, routing rollout.Routing, live *unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	s, err := strategyOf(cn, routing, destinationsOf(cn))
	if err != nil {
		return nil, err
	}
	objs, err := destinationRules(cn)
	if err != nil {
		return nil, err
	}
	if !cn.UserOwnsRoute() {
		vs, err := ownedVirtualService(cn, s)
		if err != nil {
			return nil, err
		}
		return append(objs, vs), nil
	}
	if live == nil {
		return nil, fmt.Errorf("VirtualService %s/%s, which service.virtualServiceRef names, is needed to build its HTTP routes", cn.Namespace, cn.VirtualServiceName())
	}
	vs, err := parseUserRoute(live)
	if err != nil {
		return nil, err
	}
	http, record, err := userHTTP(cn, s, vs)
	if err != nil {
		return nil, err
	}
	out := live.DeepCopy()
	if err := unstructured.SetNestedSlice(out.Object, http, "spec", "http"); err != nil {
		return nil, fmt.Errorf("build VirtualService %s/%s: %w", cn.Namespace, cn.VirtualServiceName(), err)
	}
	annotations := out.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[OriginalDestinationsAnnotation] = record
	out.SetAnnotations(annotations)
	return append(objs, out), nil
}
