package istio

import (
	"fmt"
	"strings"

	istionetapi "istio.io/api/networking/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
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

// weights reads the split from the first apex route. ok is false when no route is an apex route;
// a route that still sends traffic to the apex Service carries no split yet: zero weights, which
// never equal the weights trafficctl asks for, so nothing waits on a route it has not written.
func (d destinations) weights(routes []*istionetapi.HTTPRoute) (w router.Weights, ok bool) {
	for _, route := range routes {
		toApex, split := d.classify(route)
		if !split && toApex {
			return router.Weights{}, true
		}
		if !split {
			continue
		}
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
		return w, true
	}
	return router.Weights{}, false
}

// split is the destinations list of a taken-over apex route, as JSON values for an apply. A zero
// weight is written, not dropped, so the canary's destination stays in place between rollouts.
func (d destinations) split(form hostForm, port int32, w router.Weights) []any {
	primary := destination(d.primary+string(form), port)
	primary["weight"] = int64(w.Primary)
	canary := destination(d.canary+string(form), port)
	canary["weight"] = int64(w.Canary)
	return []any{primary, canary}
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
