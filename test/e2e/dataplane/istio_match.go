package dataplane

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	istionet "istio.io/api/networking/v1alpha3"
)

// stringMatchKind is how an Istio StringMatch compares.
type stringMatchKind int

const (
	// matchPresent only asks for the value to be there: a StringMatch without exact, prefix
	// or regex.
	matchPresent stringMatchKind = iota
	matchExact
	matchPrefix
	matchRegex
)

// stringMatch is one compiled Istio StringMatch.
type stringMatch struct {
	kind  stringMatchKind
	value string
	re    *regexp.Regexp
	// fold compares exact and prefix values case-insensitively, for ignoreUriCase.
	fold bool
}

// compileStringMatch compiles m; nil stays nil, a condition that always holds.
func compileStringMatch(m *istionet.StringMatch, fold bool) (*stringMatch, error) {
	if m == nil {
		return nil, nil
	}
	sm := &stringMatch{fold: fold}
	switch v := m.MatchType.(type) {
	case *istionet.StringMatch_Exact:
		sm.kind, sm.value = matchExact, v.Exact
	case *istionet.StringMatch_Prefix:
		sm.kind, sm.value = matchPrefix, v.Prefix
	case *istionet.StringMatch_Regex:
		expr := v.Regex
		if fold {
			expr = "(?i)" + expr
		}
		re, err := fullMatch(expr)
		if err != nil {
			return nil, err
		}
		sm.kind, sm.value, sm.re = matchRegex, v.Regex, re
	}
	return sm, nil
}

func (s *stringMatch) matches(value string, present bool) bool {
	if s == nil {
		return true
	}
	if !present {
		return false
	}
	switch s.kind {
	case matchExact:
		return value == s.value || s.fold && strings.EqualFold(value, s.value)
	case matchPrefix:
		return strings.HasPrefix(value, s.value) ||
			s.fold && len(value) >= len(s.value) && strings.EqualFold(value[:len(s.value)], s.value)
	case matchRegex:
		return s.re.MatchString(value)
	default:
		return true
	}
}

// namedMatch is a StringMatch on one header or query parameter.
type namedMatch struct {
	name  string
	match *stringMatch
}

// istioMatch is one compiled HTTPMatchRequest; every condition it has must hold.
type istioMatch struct {
	uri, scheme, method, authority *stringMatch
	headers, withoutHeaders, query []namedMatch
	// port is the Gateway port the request must arrive on; 0 means any.
	port int
}

// compileIstioMatch compiles a match of a VirtualService in vsNamespace. applies is false when
// the match can never hold at gw: it names other gateways, or asks for a source workload, which
// a Gateway's own requests do not come from.
func compileIstioMatch(m *istionet.HTTPMatchRequest, vsNamespace string, gw gatewayRef) (cm istioMatch, applies bool, err error) {
	if len(m.Gateways) > 0 && !slices.ContainsFunc(m.Gateways, func(name string) bool { return gw.named(name, vsNamespace) }) {
		return istioMatch{}, false, nil
	}
	if len(m.SourceLabels) > 0 || m.SourceNamespace != "" {
		return istioMatch{}, false, nil
	}
	cm.port = int(m.Port)
	for _, f := range []struct {
		name string
		in   *istionet.StringMatch
		out  **stringMatch
		fold bool
	}{
		{"uri", m.Uri, &cm.uri, m.IgnoreUriCase},
		{"scheme", m.Scheme, &cm.scheme, false},
		{"method", m.Method, &cm.method, false},
		{"authority", m.Authority, &cm.authority, false},
	} {
		if *f.out, err = compileStringMatch(f.in, f.fold); err != nil {
			return istioMatch{}, false, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	named := func(what string, in map[string]*istionet.StringMatch) ([]namedMatch, error) {
		var out []namedMatch
		for _, name := range slices.Sorted(maps.Keys(in)) {
			sm, err := compileStringMatch(in[name], false)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", what, name, err)
			}
			if sm == nil {
				sm = &stringMatch{kind: matchPresent}
			}
			out = append(out, namedMatch{name: name, match: sm})
		}
		return out, nil
	}
	if cm.headers, err = named("header", m.Headers); err != nil {
		return istioMatch{}, false, err
	}
	if cm.withoutHeaders, err = named("withoutHeaders", m.WithoutHeaders); err != nil {
		return istioMatch{}, false, err
	}
	if cm.query, err = named("query parameter", m.QueryParams); err != nil {
		return istioMatch{}, false, err
	}
	return cm, true, nil
}

func (m *istioMatch) matches(r *http.Request, listenerPort int) bool {
	if m.port != 0 && m.port != listenerPort {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !m.uri.matches(r.URL.Path, true) || !m.scheme.matches(scheme, true) ||
		!m.method.matches(r.Method, true) || !m.authority.matches(r.Host, true) {
		return false
	}
	for _, h := range m.headers {
		if !h.match.matches(headerValue(r, h.name)) {
			return false
		}
	}
	for _, h := range m.withoutHeaders {
		if h.match.matches(headerValue(r, h.name)) {
			return false
		}
	}
	query := r.URL.Query()
	for _, q := range m.query {
		values := query[q.name]
		if !q.match.matches(firstOf(values), len(values) > 0) {
			return false
		}
	}
	return true
}

// matchRequest finds the first of the route's matches that holds; ok is false when none does.
// A route without matches takes every request, with a nil match.
func (r *istioRoute) matchRequest(req *http.Request, listenerPort int) (m *istioMatch, ok bool) {
	if r.catchAll {
		return nil, true
	}
	for i := range r.matches {
		if r.matches[i].matches(req, listenerPort) {
			return &r.matches[i], true
		}
	}
	return nil, false
}

// istioChoice is the entry of a VirtualService that takes a request, and the match that chose
// it: nil for an entry without matches.
type istioChoice struct {
	route *istioRoute
	match *istioMatch
}

// match finds the entry that takes a request, or nil. The VirtualServices whose hosts match
// the request's most specifically come first, then the oldest; within one, the first entry
// that matches wins, as in Istio.
func (t *istioTable) match(r *http.Request, listenerPort int) *istioChoice {
	host := requestHost(r)
	type scored struct {
		vs    *virtualService
		score hostScore
	}
	var candidates []scored
	for _, vs := range t.ordered {
		if score, ok := matchIstioHost(vs.hosts, host); ok {
			candidates = append(candidates, scored{vs, score})
		}
	}
	slices.SortStableFunc(candidates, func(a, b scored) int { return b.score.compare(a.score) })
	for _, c := range candidates {
		for _, route := range c.vs.routes {
			if m, ok := route.matchRequest(r, listenerPort); ok {
				return &istioChoice{route: route, match: m}
			}
		}
	}
	return nil
}

// matchIstioHost matches a request's host against a VirtualService's hosts: exact, a "*."
// wildcard, or "*", which matches every host least specifically.
func matchIstioHost(hosts []string, host string) (best hostScore, ok bool) {
	for _, h := range hosts {
		score, matched := hostScore{}, h == "*"
		if !matched {
			score, matched = matchHost([]string{h}, host)
		}
		if matched && (!ok || score.compare(best) > 0) {
			best, ok = score, true
		}
	}
	return best, ok
}
