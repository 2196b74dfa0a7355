package dataplane

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayRef names the Gateway the data plane plays.
type gatewayRef struct {
	namespace string
	name      string
}

func (g gatewayRef) String() string { return g.namespace + "/" + g.name }

// attached reports whether a parentRef of a route in routeNamespace points at g. An unset group,
// kind or namespace means gateway.networking.k8s.io, Gateway and the route's namespace.
func (g gatewayRef) attached(ref gatewayv1.ParentReference, routeNamespace string) bool {
	if ref.Group != nil && *ref.Group != gatewayv1.GroupName {
		return false
	}
	if ref.Kind != nil && *ref.Kind != "Gateway" {
		return false
	}
	ns := routeNamespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return string(ref.Name) == g.name && ns == g.namespace
}

// servedBy reports whether any parentRef of route points at g.
func (g gatewayRef) servedBy(route *gatewayv1.HTTPRoute) bool {
	for _, ref := range route.Spec.ParentRefs {
		if g.attached(ref, route.Namespace) {
			return true
		}
	}
	return false
}

// table is the routing table at one moment: every route attached to the Gateway, compiled.
// It is immutable once built, so requests read it without locks while the next one is built.
type table struct {
	// routes are the attached routes by name, including those that could not be compiled.
	routes map[types.NamespacedName]*route
	// candidates are the matches of every servable route in Gateway API precedence order,
	// leaving out hostnames, which depend on the request.
	candidates []candidate
	// istio holds the VirtualServices the Gateway serves; they are consulted before the
	// HTTPRoutes.
	istio istioTable
}

// route is one HTTPRoute generation, compiled.
type route struct {
	key        types.NamespacedName
	generation int64
	created    metav1.Time
	// hostnames are lower-cased; empty matches every host.
	hostnames []string
	rules     []*rule
	// err says why the route cannot be served, such as an invalid regular expression; the
	// route is then reported as not accepted and carries no traffic.
	err error
}

// rule is one rule of a route: where its traffic goes and what happens on the way.
type rule struct {
	route    *route
	index    int
	backends []backendRef
	filters  []gatewayv1.HTTPRouteFilter
	// timeout bounds a whole request; 0 means none.
	timeout time.Duration
}

// backendRef is a weighted backend of a rule, its namespace resolved.
type backendRef struct {
	// service is the Service's namespace and name; invalid is set when the reference is not
	// to a core Service.
	service types.NamespacedName
	invalid bool
	// port is the Service port; 0 when the reference leaves it out.
	port    int32
	weight  int32
	filters []gatewayv1.HTTPRouteFilter
}

// String is how the backend appears in the X-Backend header and in metric labels.
func (b backendRef) String() string { return b.service.String() }

// candidate is one match of one rule.
type candidate struct {
	rule  *rule
	match matcher
	// order is the match's position in its rule, the last tie-breaker.
	order int
}

// defaultTimeout bounds requests of rules that set no timeout.
const defaultTimeout = 15 * time.Second

// buildTable compiles the routes attached to gw.
func buildTable(routes []gatewayv1.HTTPRoute, gw gatewayRef) *table {
	t := &table{routes: map[types.NamespacedName]*route{}}
	for i := range routes {
		if !gw.servedBy(&routes[i]) {
			continue
		}
		r, cands := compileRoute(&routes[i])
		t.routes[r.key] = r
		if r.err == nil {
			t.candidates = append(t.candidates, cands...)
		}
	}
	slices.SortStableFunc(t.candidates, comparePrecedence)
	return t
}

// compileRoute compiles one route; a route that cannot be served has err set.
func compileRoute(hr *gatewayv1.HTTPRoute) (*route, []candidate) {
	r := &route{
		key:        types.NamespacedName{Namespace: hr.Namespace, Name: hr.Name},
		generation: hr.Generation,
		created:    hr.CreationTimestamp,
	}
	for _, h := range hr.Spec.Hostnames {
		r.hostnames = append(r.hostnames, strings.ToLower(string(h)))
	}
	var cands []candidate
	for i, spec := range hr.Spec.Rules {
		ru, err := compileRule(r, i, spec)
		if err != nil {
			r.err = fmt.Errorf("rule %d: %w", i, err)
			return r, nil
		}
		r.rules = append(r.rules, ru)
		matches := spec.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for j, m := range matches {
			cm, err := compileMatch(m)
			if err != nil {
				r.err = fmt.Errorf("rule %d, match %d: %w", i, j, err)
				return r, nil
			}
			cands = append(cands, candidate{rule: ru, match: cm, order: j})
		}
	}
	return r, cands
}

func compileRule(r *route, index int, spec gatewayv1.HTTPRouteRule) (*rule, error) {
	ru := &rule{route: r, index: index, filters: spec.Filters, timeout: defaultTimeout}
	if spec.Timeouts != nil {
		// A zero request timeout disables it; a backend request timeout can only shorten it.
		if d := spec.Timeouts.Request; d != nil {
			timeout, err := parseDuration(*d)
			if err != nil {
				return nil, err
			}
			ru.timeout = timeout
		}
		if d := spec.Timeouts.BackendRequest; d != nil {
			timeout, err := parseDuration(*d)
			if err != nil {
				return nil, err
			}
			if timeout > 0 && (ru.timeout == 0 || timeout < ru.timeout) {
				ru.timeout = timeout
			}
		}
	}
	for _, ref := range spec.BackendRefs {
		b := newBackendRef(ref.BackendObjectReference, r.key.Namespace)
		b.weight = 1 // Gateway API's default weight
		if ref.Weight != nil {
			b.weight = *ref.Weight
		}
		b.filters = ref.Filters
		ru.backends = append(ru.backends, b)
	}
	return ru, nil
}

// parseDuration reads a Gateway API duration (GEP-2257), a subset of Go's syntax.
func parseDuration(d gatewayv1.Duration) (time.Duration, error) {
	timeout, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("invalid timeout %q: %w", d, err)
	}
	return timeout, nil
}

// newBackendRef resolves a backend reference of a route in routeNamespace.
func newBackendRef(ref gatewayv1.BackendObjectReference, routeNamespace string) backendRef {
	b := backendRef{service: types.NamespacedName{Namespace: routeNamespace, Name: string(ref.Name)}}
	if ref.Namespace != nil {
		b.service.Namespace = string(*ref.Namespace)
	}
	if ref.Port != nil {
		b.port = *ref.Port
	}
	b.invalid = (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service")
	return b
}

// compileMatch compiles one HTTPRouteMatch; the zero match is a PathPrefix match on "/".
func compileMatch(m gatewayv1.HTTPRouteMatch) (matcher, error) {
	cm := matcher{pathType: gatewayv1.PathMatchPathPrefix, path: "/"}
	if m.Path != nil {
		if m.Path.Type != nil {
			cm.pathType = *m.Path.Type
		}
		if m.Path.Value != nil {
			cm.path = *m.Path.Value
		}
	}
	switch cm.pathType {
	case gatewayv1.PathMatchExact:
	case gatewayv1.PathMatchPathPrefix:
		// A trailing slash is ignored: /abc/ matches what /abc matches.
		if trimmed := strings.TrimSuffix(cm.path, "/"); trimmed != "" {
			cm.path = trimmed
		}
	case gatewayv1.PathMatchRegularExpression:
		re, err := fullMatch(cm.path)
		if err != nil {
			return matcher{}, fmt.Errorf("path: %w", err)
		}
		cm.pathRE = re
	default:
		return matcher{}, fmt.Errorf("unsupported path match type %q", cm.pathType)
	}
	if m.Method != nil {
		cm.method = string(*m.Method)
	}
	for _, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression
		vm, err := compileValue(string(h.Name), h.Value, regex)
		if err != nil {
			return matcher{}, fmt.Errorf("header %s: %w", h.Name, err)
		}
		cm.headers = append(cm.headers, vm)
	}
	for _, q := range m.QueryParams {
		regex := q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression
		vm, err := compileValue(string(q.Name), q.Value, regex)
		if err != nil {
			return matcher{}, fmt.Errorf("query parameter %s: %w", q.Name, err)
		}
		cm.query = append(cm.query, vm)
	}
	return cm, nil
}

func compileValue(name, value string, regex bool) (valueMatcher, error) {
	vm := valueMatcher{name: name, value: value}
	if regex {
		re, err := fullMatch(value)
		if err != nil {
			return valueMatcher{}, err
		}
		vm.re = re
	}
	return vm, nil
}

// fullMatch compiles a regular expression that must match a whole value, as Envoy's and
// Istio's do.
func fullMatch(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	return re, nil
}

// comparePrecedence orders matches the way Gateway API ranks them: an Exact path, then the
// longest path (regular expressions, whose rank is ours to choose, between exact and prefix
// paths, as Envoy Gateway does), then a method, then the most headers, then the most query
// parameters; ties go to the oldest route, then the first by namespace/name, then the first
// rule and match.
func comparePrecedence(a, b candidate) int {
	return cmp.Or(
		cmp.Compare(pathRank(a.match.pathType), pathRank(b.match.pathType)),
		-cmp.Compare(len(a.match.path), len(b.match.path)),
		-cmp.Compare(boolRank(a.match.method != ""), boolRank(b.match.method != "")),
		-cmp.Compare(len(a.match.headers), len(b.match.headers)),
		-cmp.Compare(len(a.match.query), len(b.match.query)),
		a.rule.route.created.Compare(b.rule.route.created.Time),
		cmp.Compare(a.rule.route.key.String(), b.rule.route.key.String()),
		cmp.Compare(a.rule.index, b.rule.index),
		cmp.Compare(a.order, b.order),
	)
}

func pathRank(t gatewayv1.PathMatchType) int {
	switch t {
	case gatewayv1.PathMatchExact:
		return 0
	case gatewayv1.PathMatchRegularExpression:
		return 1
	default:
		return 2
	}
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
