package dataplane

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Builders for HTTPRoutes in tests, in the style of cert-manager's gen package: a route with
// modifiers applied in order.

type routeMod func(*gatewayv1.HTTPRoute)

func newRoute(namespace, name string, mods ...routeMod) *gatewayv1.HTTPRoute {
	r := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1}}
	for _, m := range mods {
		m(r)
	}
	return r
}

// withParent attaches the route to a Gateway; an empty namespace means the route's.
func withParent(namespace, name string) routeMod {
	return func(r *gatewayv1.HTTPRoute) {
		ref := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name)}
		if namespace != "" {
			ref.Namespace = ptr.To(gatewayv1.Namespace(namespace))
		}
		r.Spec.ParentRefs = append(r.Spec.ParentRefs, ref)
	}
}

func withHostnames(hosts ...string) routeMod {
	return func(r *gatewayv1.HTTPRoute) {
		for _, h := range hosts {
			r.Spec.Hostnames = append(r.Spec.Hostnames, gatewayv1.Hostname(h))
		}
	}
}

func withRule(rule gatewayv1.HTTPRouteRule) routeMod {
	return func(r *gatewayv1.HTTPRoute) { r.Spec.Rules = append(r.Spec.Rules, rule) }
}

func createdAt(t time.Time) routeMod {
	return func(r *gatewayv1.HTTPRoute) { r.CreationTimestamp = metav1.NewTime(t) }
}

// routeRule sends its matches to the backends; no matches means every request.
func routeRule(backends []gatewayv1.HTTPBackendRef, matches ...gatewayv1.HTTPRouteMatch) gatewayv1.HTTPRouteRule {
	return gatewayv1.HTTPRouteRule{Matches: matches, BackendRefs: backends}
}

func backends(refs ...gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef { return refs }

// backendTo is a weighted backendRef to a Service in the route's namespace.
func backendTo(service string, port, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(service), Port: ptr.To(port),
		},
		Weight: ptr.To(weight),
	}}
}

type matchMod func(*gatewayv1.HTTPRouteMatch)

func match(mods ...matchMod) gatewayv1.HTTPRouteMatch {
	var m gatewayv1.HTTPRouteMatch
	for _, mod := range mods {
		mod(&m)
	}
	return m
}

func path(t gatewayv1.PathMatchType, value string) matchMod {
	return func(m *gatewayv1.HTTPRouteMatch) {
		m.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(t), Value: ptr.To(value)}
	}
}

func header(t gatewayv1.HeaderMatchType, name, value string) matchMod {
	return func(m *gatewayv1.HTTPRouteMatch) {
		m.Headers = append(m.Headers, gatewayv1.HTTPHeaderMatch{Type: ptr.To(t), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	}
}

func query(t gatewayv1.QueryParamMatchType, name, value string) matchMod {
	return func(m *gatewayv1.HTTPRouteMatch) {
		m.QueryParams = append(m.QueryParams, gatewayv1.HTTPQueryParamMatch{Type: ptr.To(t), Name: gatewayv1.HTTPHeaderName(name), Value: value})
	}
}

func method(v gatewayv1.HTTPMethod) matchMod {
	return func(m *gatewayv1.HTTPRouteMatch) { m.Method = ptr.To(v) }
}
