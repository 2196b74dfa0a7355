package istio

import (
	"fmt"
	"math"
	"strings"

	istionetapi "istio.io/api/networking/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

// destinations names the Services a Canary's traffic goes to, all in the VirtualService's
// namespace: the apex Service a user's VirtualService points at before trafficctl takes over, and
// the primary and canary Services it points at afterwards.
type destinations struct {
	namespace      string
	virtualService string
	apex           string
	primary        string
	canary         string
	port           int32
}

func destinationsOf(cn *v1alpha1.Canary) destinations {
	return destinations{
		namespace:      cn.Namespace,
		virtualService: cn.VirtualServiceName(),
		apex:           cn.ApexServiceName(),
		primary:        cn.PrimaryServiceName(),
		canary:         cn.CanaryServiceName(),
		port:           cn.Spec.Service.Port,
	}
}

// hostForm is how a destination spells a Service of the namespace: what follows the Service's
// name, so the primary and canary can be written the way the user wrote the apex Service.
type hostForm string

// shortHost is a Service's bare name, which Istio resolves in the VirtualService's namespace.
const shortHost hostForm = ""

// service returns the name of the Service in d's namespace that host names, and how it names it;
// "" when host is another namespace's Service or not a Service at all.
func (d destinations) service(host string) (string, hostForm) {
	forms := []hostForm{
		hostForm("." + d.namespace + ".svc.cluster.local"),
		hostForm("." + d.namespace + ".svc"),
		hostForm("." + d.namespace),
		shortHost,
	}
	for _, form := range forms {
		name, ok := strings.CutSuffix(host, string(form))
		if ok && name != "" && !strings.Contains(name, ".") {
			return name, form
		}
	}
	return "", shortHost
}

// classify reports whether route sends traffic to the apex Service, and whether it sends traffic
// to the primary or canary Service, which means trafficctl has already taken it over. A route that
// does either is an apex route.
func (d destinations) classify(route *istionetapi.HTTPRoute) (toApex, split bool) {
	for _, dst := range route.GetRoute() {
		name, _ := d.service(dst.GetDestination().GetHost())
		switch name {
		case d.apex:
			toApex = true
		case d.primary, d.canary:
			split = true
		}
	}
	return toApex, split
}

// target is where an apex route's split sends traffic: the port its apex (or, once taken over,
// primary or canary) destination names, else the Canary's service port, and the form that
// destination spells its host in.
func (d destinations) target(route *istionetapi.HTTPRoute) (hostForm, int32) {
	for _, dst := range route.GetRoute() {
		name, form := d.service(dst.GetDestination().GetHost())
		switch name {
		case d.apex, d.primary, d.canary:
			if n := dst.GetDestination().GetPort().GetNumber(); n != 0 {
				return form, int32(n)
			}
			return form, d.port
		}
	}
	return shortHost, d.port
}

// splitRoute is the first apex route that trafficctl did not add: the one that carries the split,
// the mirror and the sticky-session cookies. ok is false when there is none.
func (d destinations) splitRoute(routes []*istionetapi.HTTPRoute) (route *istionetapi.HTTPRoute, ok bool) {
	for _, route := range routes {
		if d.derivedKind(route) != "" {
			continue
		}
		if toApex, split := d.classify(route); toApex || split {
			return route, true
		}
	}
	return nil, false
}

// weights reads the split from a split route. A route that still sends traffic to the apex Service
// carries no split yet: zero weights, which never equal the weights trafficctl asks for, so
// nothing waits on a route it has not written.
func (d destinations) weights(route *istionetapi.HTTPRoute) rollout.Weights {
	if toApex, _ := d.classify(route); toApex {
		return rollout.Weights{}
	}
	var w rollout.Weights
	dsts := route.GetRoute()
	for _, dst := range dsts {
		weight := dst.GetWeight()
		if len(dsts) == 1 && weight == 0 {
			weight = 100 // Istio sends everything to a lone destination without a weight.
		}
		switch name, _ := d.service(dst.GetDestination().GetHost()); name {
		case d.primary:
			w.Primary += weight
		case d.canary:
			w.Canary += weight
		}
	}
	return w
}

// mirror is the percent of a route's requests it copies to the canary Service: 0 when it mirrors
// nothing or mirrors elsewhere, such as to a user's own shadow Service.
func (d destinations) mirror(route *istionetapi.HTTPRoute) int32 {
	if !d.mirrorsToCanary(route) {
		return 0
	}
	if p := route.GetMirrorPercentage(); p != nil {
		return int32(math.Round(p.GetValue()))
	}
	// Istio mirrors every request when no percentage is given. trafficctl always writes
	// mirrorPercentage, and drops the deprecated mirrorPercent when it writes its mirror.
	return 100
}

// mirrorsToCanary reports whether route's mirror is trafficctl's: one to the canary Service.
func (d destinations) mirrorsToCanary(route *istionetapi.HTTPRoute) bool {
	name, _ := d.service(route.GetMirror().GetHost())
	return name != "" && name == d.canary
}

// sticky is the value of the cookie a split route's canary destination sets on its responses: the
// Routing's Sticky; "" when it sets none.
func (d destinations) sticky(route *istionetapi.HTTPRoute) string {
	for _, dst := range route.GetRoute() {
		if name, _ := d.service(dst.GetDestination().GetHost()); name != d.canary {
			continue
		}
		for header, value := range dst.GetHeaders().GetResponse().GetAdd() {
			if !strings.EqualFold(header, "Set-Cookie") {
				continue
			}
			pair, _, _ := strings.Cut(value, ";")
			if _, v, ok := strings.Cut(pair, "="); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// destination is an HTTPRouteDestination to host and port, without a weight.
func destination(host string, port int32) map[string]any {
	return map[string]any{
		"destination": map[string]any{
			"host": host,
			"port": map[string]any{"number": int64(port)},
		},
	}
}

// noApexRoute is the error for a user's VirtualService that does not send traffic to the apex
// Service, which only the user can fix.
func (d destinations) noApexRoute() error {
	return &router.InvalidRouteError{Message: fmt.Sprintf(
		"VirtualService %s/%s has no HTTP route to Service %s; add one or point service.virtualServiceRef at another VirtualService",
		d.namespace, d.virtualService, d.apex)}
}
