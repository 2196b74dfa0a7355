package dataplane

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	istionet "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// clusterDomain is the DNS suffix of Services in destination hosts, as Istio assumes it.
const clusterDomain = "svc.cluster.local"

// servesVirtualService reports whether a VirtualService names g in spec.gateways, as
// "<namespace>/<name>" or, from g's own namespace, as "<name>".
func (g gatewayRef) servesVirtualService(vs *istionetv1.VirtualService) bool {
	return slices.ContainsFunc(vs.Spec.Gateways, func(name string) bool { return g.named(name, vs.Namespace) })
}

// named reports whether a gateway name of a VirtualService in vsNamespace is g; "mesh", the
// sidecars, never is.
func (g gatewayRef) named(name, vsNamespace string) bool {
	ns, n, qualified := strings.Cut(name, "/")
	if !qualified {
		ns, n = vsNamespace, name
	}
	return ns == g.namespace && n == g.name
}

// istioTable is the part of the routing table that comes from VirtualServices.
type istioTable struct {
	// services are the served VirtualServices by name, including those that could not be
	// compiled.
	services map[types.NamespacedName]*virtualService
	// ordered are the servable VirtualServices, oldest first, then by namespace/name: the
	// order in which Istio merges the routes of VirtualServices that share a host.
	ordered []*virtualService
}

// virtualService is one VirtualService generation, compiled.
type virtualService struct {
	key        types.NamespacedName
	generation int64
	created    metav1.Time
	// hosts are lower-cased; a short name also stands for its Service's FQDN.
	hosts  []string
	routes []*istioRoute
	// err says why the VirtualService cannot be served; it then carries no traffic.
	err error
}

// istioRoute is one entry of spec.http.
type istioRoute struct {
	vs    *virtualService
	index int
	// matches are ORed; catchAll is set when the entry has none, so that an entry whose
	// matches all name other gateways does not become a catch-all.
	matches  []istioMatch
	catchAll bool

	backends []backendRef
	mirrors  []istioMirror
	// requestHeaders and responseHeaders are the entry's header operations, in Gateway API's
	// shape so that the HTTPRoute code applies them.
	requestHeaders  *gatewayv1.HTTPHeaderFilter
	responseHeaders *gatewayv1.HTTPHeaderFilter
	redirect        *istionet.HTTPRedirect
	direct          *istionet.HTTPDirectResponse
	rewrite         *istionet.HTTPRewrite
	rewriteRE       *regexp.Regexp
	// timeout bounds a whole request; 0 means none.
	timeout time.Duration
}

// istioMirror is a mirror destination and the percentage of requests it receives.
type istioMirror struct {
	backend backendRef
	percent float64
}

// buildIstioTable compiles the VirtualServices that gw serves.
func buildIstioTable(vss []*istionetv1.VirtualService, gw gatewayRef) istioTable {
	t := istioTable{services: map[types.NamespacedName]*virtualService{}}
	for _, vs := range vss {
		if !gw.servesVirtualService(vs) {
			continue
		}
		v := compileVirtualService(vs, gw)
		t.services[v.key] = v
		if v.err == nil {
			t.ordered = append(t.ordered, v)
		}
	}
	slices.SortFunc(t.ordered, func(a, b *virtualService) int {
		return cmp.Or(a.created.Compare(b.created.Time), cmp.Compare(a.key.String(), b.key.String()))
	})
	return t
}

// compileVirtualService compiles one VirtualService; one that cannot be served has err set.
func compileVirtualService(vs *istionetv1.VirtualService, gw gatewayRef) *virtualService {
	v := &virtualService{
		key:        types.NamespacedName{Namespace: vs.Namespace, Name: vs.Name},
		generation: vs.Generation,
		created:    vs.CreationTimestamp,
	}
	for _, h := range vs.Spec.Hosts {
		h = strings.ToLower(h)
		v.hosts = append(v.hosts, h)
		if !strings.Contains(h, ".") && h != "*" {
			v.hosts = append(v.hosts, h+"."+vs.Namespace+"."+clusterDomain)
		}
	}
	for i, spec := range vs.Spec.Http {
		if spec == nil {
			continue
		}
		r, err := compileIstioRoute(v, i, spec, gw)
		if err != nil {
			v.err = fmt.Errorf("http[%d]: %w", i, err)
			return v
		}
		v.routes = append(v.routes, r)
	}
	return v
}

// compileIstioRoute compiles one entry of spec.http. Retries, fault injection and CORS are
// ignored: the tests' traffic does not depend on them.
func compileIstioRoute(v *virtualService, index int, spec *istionet.HTTPRoute, gw gatewayRef) (*istioRoute, error) {
	r := &istioRoute{
		vs: v, index: index, catchAll: len(spec.Match) == 0,
		redirect: spec.Redirect, direct: spec.DirectResponse, rewrite: spec.Rewrite,
		timeout: defaultTimeout,
	}
	if spec.Delegate != nil {
		return nil, fmt.Errorf("delegate is not supported")
	}
	for j, m := range spec.Match {
		if m == nil {
			continue
		}
		cm, applies, err := compileIstioMatch(m, v.key.Namespace, gw)
		if err != nil {
			return nil, fmt.Errorf("match[%d]: %w", j, err)
		}
		if applies {
			r.matches = append(r.matches, cm)
		}
	}
	if spec.Timeout != nil {
		if err := spec.Timeout.CheckValid(); err != nil {
			return nil, fmt.Errorf("invalid timeout: %w", err)
		}
		r.timeout = spec.Timeout.AsDuration()
	}
	if rw := spec.Rewrite; rw != nil && rw.UriRegexRewrite != nil {
		re, err := regexp.Compile(rw.UriRegexRewrite.Match)
		if err != nil {
			return nil, fmt.Errorf("rewrite: invalid regular expression %q: %w", rw.UriRegexRewrite.Match, err)
		}
		r.rewriteRE = re
	}
	r.requestHeaders, r.responseHeaders = headerFilters(spec.Headers)
	for _, d := range spec.Route {
		if d == nil || d.Destination == nil {
			continue
		}
		b := istioBackend(d.Destination, v.key.Namespace)
		// A single destination takes all traffic, whatever its weight.
		b.weight = d.Weight
		if len(spec.Route) == 1 {
			b.weight = 100
		}
		// A destination's header operations become its filters, which the HTTPRoute code runs.
		req, resp := headerFilters(d.Headers)
		if req != nil {
			b.filters = append(b.filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: req})
		}
		if resp != nil {
			b.filters = append(b.filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: resp})
		}
		r.backends = append(r.backends, b)
	}
	if spec.Mirror != nil {
		percent := 100.0
		switch {
		case spec.MirrorPercentage != nil:
			percent = spec.MirrorPercentage.Value
		case spec.MirrorPercent != nil: //nolint:staticcheck // deprecated, but Istio still serves it
			percent = float64(spec.MirrorPercent.Value) //nolint:staticcheck // as above
		}
		r.mirrors = append(r.mirrors, istioMirror{backend: istioBackend(spec.Mirror, v.key.Namespace), percent: percent})
	}
	for _, m := range spec.Mirrors {
		if m == nil || m.Destination == nil {
			continue
		}
		percent := 100.0
		if m.Percentage != nil {
			percent = m.Percentage.Value
		}
		r.mirrors = append(r.mirrors, istioMirror{backend: istioBackend(m.Destination, v.key.Namespace), percent: percent})
	}
	if len(r.backends) == 0 && r.redirect == nil && r.direct == nil {
		return nil, fmt.Errorf("no route, redirect or directResponse")
	}
	return r, nil
}

// istioBackend resolves a destination of a VirtualService in vsNamespace: a Service's short
// name, name.namespace, name.namespace.svc or name.namespace.svc.cluster.local. Any other host,
// such as a ServiceEntry's, is invalid here. The subset is ignored: DestinationRules are not
// read, and trafficctl gives the primary and the canary Services of their own.
func istioBackend(d *istionet.Destination, vsNamespace string) backendRef {
	host := strings.TrimSuffix(strings.ToLower(d.Host), ".")
	b := backendRef{}
	if d.Port != nil {
		b.port = int32(d.Port.Number)
	}
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1:
		b.service = types.NamespacedName{Namespace: vsNamespace, Name: host}
	case len(parts) == 2,
		len(parts) == 3 && parts[2] == "svc",
		len(parts) == 5 && strings.Join(parts[2:], ".") == clusterDomain:
		b.service = types.NamespacedName{Namespace: parts[1], Name: parts[0]}
	default:
		b.service, b.invalid = types.NamespacedName{Name: host}, true
	}
	return b
}

// headerFilters turns Istio's header operations into Gateway API's, names sorted so that the
// order is stable.
func headerFilters(h *istionet.Headers) (request, response *gatewayv1.HTTPHeaderFilter) {
	if h == nil {
		return nil, nil
	}
	return headerFilter(h.Request), headerFilter(h.Response)
}

func headerFilter(ops *istionet.Headers_HeaderOperations) *gatewayv1.HTTPHeaderFilter {
	if ops == nil {
		return nil
	}
	toHeaders := func(m map[string]string) []gatewayv1.HTTPHeader {
		var out []gatewayv1.HTTPHeader
		for _, name := range slices.Sorted(maps.Keys(m)) {
			out = append(out, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: m[name]})
		}
		return out
	}
	return &gatewayv1.HTTPHeaderFilter{Set: toHeaders(ops.Set), Add: toHeaders(ops.Add), Remove: ops.Remove}
}
