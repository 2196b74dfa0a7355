package istio

import (
	"fmt"
	"strings"

	"github.com/trafficctl/trafficctl/rollout"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
)

// reconciledCondition is the condition istiod's status writer sets once the mesh's proxies have
// the VirtualService's current configuration.
const reconciledCondition = "Reconciled"

// observe reads the state of a VirtualService that exists, the Routing read from its HTTP routes:
// the weights, mirror and sticky-session cookie from the split route (the first apex route
// trafficctl did not add), and the cohort from the presence of cohort routes. A user's
// VirtualService without an apex route is an InvalidRouteError; one trafficctl owns without one is
// simply not split yet, which the next Apply repairs.
// reporting says whether the mesh is known to write the status of VirtualServices.
func observe(vs *istionetv1.VirtualService, d destinations, userOwned, reporting bool) (rollout.State, error) {
	routes := vs.Spec.GetHttp()
	split, ok := d.splitRoute(routes)
	if !ok {
		if userOwned {
			return rollout.State{}, d.noApexRoute()
		}
		return rollout.State{Found: true, Message: fmt.Sprintf(
			"VirtualService %s/%s does not send traffic to Services %s and %s yet",
			vs.Namespace, vs.Name, d.primary, d.canary)}, nil
	}
	if toApex, _ := d.classify(split); toApex {
		return rollout.State{Found: true, Message: fmt.Sprintf(
			"VirtualService %s/%s still sends traffic to Service %s, not yet to %s and %s",
			vs.Namespace, vs.Name, d.apex, d.primary, d.canary)}, nil
	}
	rt := rollout.Routing{Weights: d.weights(split), Mirror: d.mirror(split), Sticky: d.sticky(split)}
	for _, route := range routes {
		if strings.HasPrefix(d.derivedKind(route), "cohort-") {
			rt.Cohort = true
		}
	}
	accepted, message := acceptance(vs, reporting)
	return rollout.State{Found: true, Routing: rt, Accepted: accepted, Message: message}, nil
}

// acceptance reports whether Istio has reconciled the VirtualService's current generation, and
// when it has not, what is pending. Istio writes a status only when istiod's status feature
// (config distribution tracking) is on. Where the mesh is known to write it (reporting), a
// VirtualService without one has not been reconciled yet; where it is not, a VirtualService
// without one gives no signal, and counts as accepted, as Flagger assumes.
func acceptance(vs *istionetv1.VirtualService, reporting bool) (bool, string) {
	status := &vs.Status
	if reporting && !hasStatus(vs) {
		return false, fmt.Sprintf("waiting for Istio to report on generation %d of VirtualService %s/%s: the mesh writes the status of VirtualServices, and this one has none yet",
			vs.Generation, vs.Namespace, vs.Name)
	}
	if observed := status.GetObservedGeneration(); observed != 0 && observed < vs.Generation {
		return false, fmt.Sprintf("waiting for Istio to reconcile generation %d of VirtualService %s/%s; it has seen generation %d",
			vs.Generation, vs.Namespace, vs.Name, observed)
	}
	for _, c := range status.GetConditions() {
		if c.GetType() != reconciledCondition {
			continue
		}
		if c.GetObservedGeneration() != 0 && c.GetObservedGeneration() < vs.Generation {
			return false, fmt.Sprintf("waiting for Istio to reconcile generation %d of VirtualService %s/%s; its %s condition is about generation %d",
				vs.Generation, vs.Namespace, vs.Name, reconciledCondition, c.GetObservedGeneration())
		}
		if c.GetStatus() != "True" {
			message := fmt.Sprintf("Istio has not reconciled VirtualService %s/%s: condition %s is %q",
				vs.Namespace, vs.Name, reconciledCondition, c.GetStatus())
			if c.GetReason() != "" {
				message += ": " + c.GetReason()
			}
			if c.GetMessage() != "" {
				message += ": " + c.GetMessage()
			}
			return false, message
		}
	}
	return true, ""
}

// hasStatus reports whether Istio has written any status on the VirtualService, which it does
// only with istiod's status feature on.
func hasStatus(vs *istionetv1.VirtualService) bool {
	return vs.Status.GetObservedGeneration() != 0 || len(vs.Status.GetConditions()) > 0
}
