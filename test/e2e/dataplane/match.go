package dataplane

import (
	"cmp"
	"net"
	"net/http"
	"regexp"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// matcher is one compiled HTTPRouteMatch; every condition it has must hold.
type matcher struct {
	pathType gatewayv1.PathMatchType
	// path is the value to match; for PathPrefix without its trailing slash, except "/".
	path    string
	pathRE  *regexp.Regexp
	method  string
	headers []valueMatcher
	query   []valueMatcher
}

// valueMatcher matches one header or query parameter, exactly or by a regular expression.
type valueMatcher struct {
	name  string
	value string
	re    *regexp.Regexp
}

func (v valueMatcher) matches(value string, present bool) bool {
	if !present {
		return false
	}
	if v.re != nil {
		return v.re.MatchString(value)
	}
	return value == v.value
}

func (m *matcher) matches(r *http.Request) bool {
	if !m.matchesPath(r.URL.Path) {
		return false
	}
	if m.method != "" && r.Method != m.method {
		return false
	}
	for _, h := range m.headers {
		if !h.matches(headerValue(r, h.name)) {
			return false
		}
	}
	query := r.URL.Query()
	for _, q := range m.query {
		// Query parameter names are case-sensitive; the first value counts.
		values := query[q.name]
		if !q.matches(firstOf(values), len(values) > 0) {
			return false
		}
	}
	return true
}

func firstOf(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

func (m *matcher) matchesPath(path string) bool {
	switch m.pathType {
	case gatewayv1.PathMatchExact:
		return path == m.path
	case gatewayv1.PathMatchRegularExpression:
		return m.pathRE.MatchString(path)
	default:
		return prefixMatches(m.path, path)
	}
}

// prefixMatches matches whole path elements: /abc matches /abc, /abc/ and /abc/def, not /abcd.
func prefixMatches(prefix, path string) bool {
	if prefix == "/" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// headerValue reads a header by its case-insensitive name; several values are joined with
// commas, as Envoy joins them before matching.
func headerValue(r *http.Request, name string) (string, bool) {
	if strings.EqualFold(name, "Host") {
		return r.Host, r.Host != ""
	}
	values := r.Header.Values(name)
	if len(values) == 0 {
		return "", false
	}
	return strings.Join(values, ","), true
}

// hostScore says how specifically a route's hostnames match a request's host: the length of a
// matching exact hostname, then of any matching hostname. ok is false when none matches; a
// route without hostnames matches every host with the lowest score.
type hostScore struct {
	exact, any int
}

func (s hostScore) compare(o hostScore) int {
	return cmp.Or(cmp.Compare(s.exact, o.exact), cmp.Compare(s.any, o.any))
}

func matchHost(hostnames []string, host string) (best hostScore, ok bool) {
	if len(hostnames) == 0 {
		return hostScore{}, true
	}
	for _, name := range hostnames {
		var score hostScore
		switch {
		case name == host:
			score = hostScore{exact: len(name), any: len(name)}
		case strings.HasPrefix(name, "*.") && strings.HasSuffix(host, name[1:]) && len(host) > len(name)-1:
			// *.example.com matches a.example.com and a.b.example.com, not example.com.
			score = hostScore{any: len(name)}
		default:
			continue
		}
		if !ok || score.compare(best) > 0 {
			best, ok = score, true
		}
	}
	return best, ok
}

// requestHost is the request's host as routes match it: lower case, without port or
// trailing dot.
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// match finds the match that wins a request: the route with the most specific hostname first,
// then Gateway API match precedence. nil means no route matches: a 404.
func (t *table) match(r *http.Request) *candidate {
	host := requestHost(r)
	scores := map[*route]hostScore{}
	var best *candidate
	var bestScore hostScore
	for i := range t.candidates {
		c := &t.candidates[i]
		score, seen := scores[c.rule.route]
		if !seen {
			var ok bool
			if score, ok = matchHost(c.rule.route.hostnames, host); !ok {
				score = hostScore{exact: -1, any: -1}
			}
			scores[c.rule.route] = score
		}
		if score.exact < 0 {
			continue
		}
		// Candidates are in precedence order, so a later one wins only with a better host.
		if best != nil && score.compare(bestScore) <= 0 {
			continue
		}
		if c.match.matches(r) {
			best, bestScore = c, score
		}
	}
	return best
}
