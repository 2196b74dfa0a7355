package router

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Both data planes match regular expressions against the whole value (RE2, as Envoy and Istio
// do), so every expression built here describes a whole value.

// Regex is a condition as one regular expression, for the dialects (Gateway API header and query
// matches, Istio query matches) that have no prefix match.
func Regex(m v1alpha1.StringMatch) string {
	switch {
	case m.Exact != "":
		return regexp.QuoteMeta(m.Exact)
	case m.Prefix != "":
		return regexp.QuoteMeta(m.Prefix) + ".*"
	default:
		return m.Regex
	}
}

// CookieHeaderRegex matches a Cookie header that carries cookie name with a value meeting m,
// wherever it stands among the header's other cookies.
func CookieHeaderRegex(name string, m v1alpha1.StringMatch) string {
	var value string
	switch {
	case m.Exact != "":
		value = regexp.QuoteMeta(m.Exact)
	case m.Prefix != "":
		value = regexp.QuoteMeta(m.Prefix) + "[^;]*"
	default:
		value = "(?:" + m.Regex + ")"
	}
	return cookieLead + regexp.QuoteMeta(name) + "=" + value + cookieTail
}

// MaxCookies is how many cookies one analysis.match entry may set conditions on. Both data
// planes hold one condition per header in a match, so the cookies share one regular expression
// on the Cookie header with an alternative for every order they may come in: n! alternatives.
const MaxCookies = 4

// cookieLead and cookieTail are what CookieHeaderRegex allows before and after a cookie.
const (
	cookieLead = `(.*;\s*)?`
	cookieTail = `(;.*)?`
)

// CookiesHeaderRegex matches a Cookie header carrying every one of cookies, in whatever order
// and among whatever other cookies. For one cookie it is CookieHeaderRegex. More than MaxCookies
// is an InvalidRouteError that names source, the analysis.match entry.
func CookiesHeaderRegex(cookies map[string]v1alpha1.StringMatch, source string) (string, error) {
	names := SortedKeys(cookies)
	if len(names) == 1 {
		return CookieHeaderRegex(names[0], cookies[names[0]]), nil
	}
	if len(names) > MaxCookies {
		return "", &InvalidRouteError{Message: fmt.Sprintf(
			"%s sets conditions on %d cookies; an entry can match at most %d cookies, so split the conditions over several analysis.match entries or match a header instead",
			source, len(names), MaxCookies)}
	}
	// Each cookie's own part of CookieHeaderRegex: name=value, without what may stand before and
	// after it.
	pairs := make(map[string]string, len(names))
	for _, name := range names {
		pairs[name] = strings.TrimSuffix(strings.TrimPrefix(CookieHeaderRegex(name, cookies[name]), cookieLead), cookieTail)
	}
	var alternatives []string
	for _, order := range permutations(names) {
		parts := make([]string, len(order))
		for i, name := range order {
			parts[i] = pairs[name]
		}
		alternatives = append(alternatives, cookieLead+strings.Join(parts, cookieTail+`;\s*`)+cookieTail)
	}
	return "(?:" + strings.Join(alternatives, "|") + ")", nil
}

// permutations lists every order of names, in lexicographic order when names are sorted.
func permutations(names []string) [][]string {
	if len(names) <= 1 {
		return [][]string{slices.Clone(names)}
	}
	var out [][]string
	for i, first := range names {
		rest := slices.Concat(names[:i], names[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]string{first}, p...))
		}
	}
	return out
}

// StickyCookieRegex matches a Cookie header carrying the session-affinity cookie name=value.
func StickyCookieRegex(name, value string) string {
	return CookieHeaderRegex(name, v1alpha1.StringMatch{Exact: value})
}

// SetCookie is the Set-Cookie header value that pins a user for maxAge seconds.
func SetCookie(name, value string, maxAge int32) string {
	if maxAge <= 0 {
		maxAge = 86400
	}
	return fmt.Sprintf("%s=%s; Max-Age=%d; Path=/", name, value, maxAge)
}

// SortedKeys lists a condition map's names in order, so the rules a router writes are the same
// on every pass and an unchanged Canary never rewrites its route.
func SortedKeys(m map[string]v1alpha1.StringMatch) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
