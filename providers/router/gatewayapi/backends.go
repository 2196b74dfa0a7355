package gatewayapi

import (
	"fmt"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

// backends names the Services a Canary's traffic goes to, all in the route's namespace: the apex
// Service a user's route points at before trafficctl takes over, and the primary and canary
// Services it points at afterwards.
type backends struct {
	namespace string
	route     string
	apex      string
	primary   string
	canary    string
	port      int32
}

func backendsOf(cn *v1alpha1.Canary) backends {
	return backends{
		namespace: cn.Namespace,
		route:     cn.HTTPRouteName(),
		apex:      cn.ApexServiceName(),
		primary:   cn.PrimaryServiceName(),
		canary:    cn.CanaryServiceName(),
		port:      cn.Spec.Service.Port,
	}
}

// service returns the name of the Service in b's namespace that ref points at, or "" when ref
// points at another kind of backend or another namespace.
func (b backends) service(ref gatewayv1.BackendObjectReference) string {
	if ref.Group != nil && *ref.Group != "" {
		return ""
	}
	if ref.Kind != nil && *ref.Kind != "Service" {
		return ""
	}
	if ref.Namespace != nil && string(*ref.Namespace) != b.namespace {
		return ""
	}
	return string(ref.Name)
}

// classify reports whether rule sends traffic to the apex Service, and whether it sends traffic to
// the primary or canary Service, which means trafficctl has already taken it over. A rule that does
// either, and is not one of the rules trafficctl derives from an apex rule, is an apex rule.
func (b backends) classify(rule gatewayv1.HTTPRouteRule) (toApex, split bool) {
	for _, ref := range rule.BackendRefs {
		switch b.service(ref.BackendObjectReference) {
		case b.apex:
			toApex = true
		case b.primary, b.canary:
			split = true
		}
	}
	return toApex, split
}

// derived reports whether rule is one trafficctl added before an apex rule (a cohort or
// sticky-session rule): it has one of their names and a single backend, the primary or the canary
// Service. A user's rule that happens to carry such a name is not mistaken for one.
func (b backends) derived(rule gatewayv1.HTTPRouteRule) bool {
	if rule.Name == nil || !derivedRuleName.MatchString(string(*rule.Name)) || len(rule.BackendRefs) != 1 {
		return false
	}
	s := b.service(rule.BackendRefs[0].BackendObjectReference)
	return s == b.primary || s == b.canary
}

// mirror reports whether filter is the mirror trafficctl adds to a split rule: a RequestMirror to
// the canary Service.
func (b backends) mirror(filter gatewayv1.HTTPRouteFilter) bool {
	return filter.Type == gatewayv1.HTTPRouteFilterRequestMirror && filter.RequestMirror != nil &&
		b.service(filter.RequestMirror.BackendRef) == b.canary
}

// portOf is the Service port an apex rule's split sends traffic to: the port its apex (or, once
// taken over, primary or canary) backendRef names, else the Canary's service port.
func (b backends) portOf(rule gatewayv1.HTTPRouteRule) int32 {
	for _, ref := range rule.BackendRefs {
		switch b.service(ref.BackendObjectReference) {
		case b.apex, b.primary, b.canary:
			if ref.Port != nil {
				return *ref.Port
			}
		}
	}
	return b.port
}

// serviceRef is a backendRef to a Service of the route's namespace, in stored form with Gateway
// API's defaults written out.
func serviceRef(name string, port, weight int32) map[string]any {
	return map[string]any{
		"group":  "",
		"kind":   "Service",
		"name":   name,
		"port":   int64(port),
		"weight": int64(weight),
	}
}

// noApexRule is the error for a user's route that does not send traffic to the apex Service, which
// only the user can fix.
func (b backends) noApexRule() error {
	return &router.InvalidRouteError{Message: fmt.Sprintf(
		"HTTPRoute %s/%s has no rule that sends traffic to Service %s; add a backendRef to it or point service.httpRouteRef at another route",
		b.namespace, b.route, b.apex)}
}
