package istio

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	istionetapi "istio.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

// A strategy's HTTP routes are built in the stored (unstructured) form of a VirtualService's HTTP
// route, so the same code serves the VirtualService trafficctl owns and a user's, whose routes may
// carry fields this module's Istio types do not know.

// derivedRouteName matches the names of the HTTP routes trafficctl adds before an apex route: the
// cohort routes (one per analysis.match entry) and the sticky-session routes. The routes added
// before the second and later apex routes of a user's VirtualService carry "apex<k>-" to stay
// unique.
var derivedRouteName = regexp.MustCompile(`^trafficctl-(?:apex[0-9]+-)?(cohort-[0-9]+|sticky-canary|sticky-primary)$`)

// derivedName is the name of the route of the given kind added before the k-th apex route.
func derivedName(k int, kind string) string {
	if k == 0 {
		return "trafficctl-" + kind
	}
	return fmt.Sprintf("trafficctl-apex%d-%s", k, kind)
}

// derivedKind is the kind (cohort-<i>, sticky-canary, sticky-primary) of a route trafficctl added
// before an apex route, or "" for any other route. A derived route has a derived name and sends
// traffic only to the primary or canary Service, so a user's route that happens to carry such a
// name is never mistaken for one.
func (d destinations) derivedKind(route *istionetapi.HTTPRoute) string {
	m := derivedRouteName.FindStringSubmatch(route.GetName())
	if m == nil {
		return ""
	}
	if toApex, split := d.classify(route); toApex || !split {
		return ""
	}
	return m[1]
}

// strategy is what a Routing asks of every apex route: the routes to put before it, and what the
// route carries itself.
type strategy struct {
	// primary and canary are the names of the Services the split goes to.
	primary, canary string
	weights         rollout.Weights
	// extra are the routes put before each apex route, in order.
	extra []extraRoute
	// canaryCookie and primaryCookie are the Set-Cookie values added to the responses of the
	// canary and primary destinations of the split; "" for none.
	canaryCookie, primaryCookie string
	// mirror is the percent of the split's requests copied to the canary; 0 for none.
	mirror int32
}

// extraRoute sends the requests of an apex route that also meet when to one Service only.
type extraRoute struct {
	kind    string
	when    conditions
	service string
	// source names the part of the Canary the conditions come from, for error messages.
	source string
}

// conditions are header and query parameter matches, in the stored form of an Istio
// HTTPMatchRequest's headers and queryParams, added to each match of an apex route.
type conditions struct {
	headers     map[string]any
	queryParams map[string]any
}

// strategyOf turns the Routing into routes, with the Canary's spec saying how each looks. The error
// is an InvalidRouteError when the Canary's conditions cannot be written as Istio matches.
func strategyOf(cn *v1alpha1.Canary, r rollout.Routing, d destinations) (strategy, error) {
	if err := checkRouting(r); err != nil {
		return strategy{}, err
	}
	s := strategy{primary: d.primary, canary: d.canary, weights: r.Weights, mirror: r.Mirror}
	extras, canaryCookie, primaryCookie, err := router.Extras(cn, r)
	if err != nil {
		return strategy{}, err
	}
	s.canaryCookie, s.primaryCookie = canaryCookie, primaryCookie
	for _, e := range extras {
		when, err := cohortConditions(e.Match, e.Source)
		if err != nil {
			return strategy{}, err
		}
		service := d.canary
		if e.ToPrimary {
			service = d.primary
		}
		s.extra = append(s.extra, extraRoute{kind: e.Kind, when: when, service: service, source: e.Source})
	}
	return s, nil
}

// checkRouting rejects a Routing Istio would refuse or that no cookie can carry: the CRD schema
// does not bound weights, but Istio's validation wants each between 0 and 100 and all of a route's
// adding up to 100.
func checkRouting(r rollout.Routing) error {
	if w := r.Weights; w.Primary < 0 || w.Canary < 0 || w.Primary+w.Canary != 100 {
		return fmt.Errorf("weights %s are not a split Istio accepts: each must be between 0 and 100 and they must add up to 100", w)
	}
	if r.Mirror < 0 || r.Mirror > 100 {
		return fmt.Errorf("mirror %d%% is not a percentage Istio accepts: it must be between 0 and 100", r.Mirror)
	}
	if strings.ContainsAny(r.Sticky, ";, \t\"\\=") {
		return fmt.Errorf("sticky value %q cannot be a cookie value", r.Sticky)
	}
	return nil
}

// cohortConditions translates one analysis.match entry. Istio header matches take exact, prefix
// and regex as they are, under the lowercase header name Istio requires; query parameter matches
// have no prefix, so a prefix becomes a regular expression; cookies become one regular expression
// on the Cookie header.
func cohortConditions(m v1alpha1.HTTPMatch, source string) (conditions, error) {
	c := conditions{}
	for _, name := range router.SortedKeys(m.Headers) {
		key := strings.ToLower(name)
		if _, ok := c.headers[key]; ok {
			return conditions{}, &router.InvalidRouteError{Message: fmt.Sprintf(
				"%s sets two conditions on header %s (header names are case-insensitive); Istio matches a header once, so keep one", source, key)}
		}
		c.headers = set(c.headers, key, headerMatch(m.Headers[name]))
	}
	if len(m.Cookies) > 0 {
		re, err := router.CookiesHeaderRegex(m.Cookies, source)
		if err != nil {
			return conditions{}, err
		}
		c.headers = set(c.headers, "cookie", map[string]any{"regex": re})
	}
	for _, name := range router.SortedKeys(m.QueryParams) {
		q := m.QueryParams[name]
		if q.Exact != "" {
			c.queryParams = set(c.queryParams, name, map[string]any{"exact": q.Exact})
		} else {
			c.queryParams = set(c.queryParams, name, map[string]any{"regex": router.Regex(q)})
		}
	}
	return c, nil
}

// headerMatch is an Istio StringMatch, which has all three of exact, prefix and regex.
func headerMatch(m v1alpha1.StringMatch) map[string]any {
	switch {
	case m.Exact != "":
		return map[string]any{"exact": m.Exact}
	case m.Prefix != "":
		return map[string]any{"prefix": m.Prefix}
	default:
		return map[string]any{"regex": m.Regex}
	}
}

func set(m map[string]any, key string, value any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	m[key] = value
	return m
}

// mirrorFields are the HTTP route fields that copy traffic elsewhere. Istio refuses a route that
// combines mirror with mirrors, so trafficctl's mirror takes the place of all of them while it is
// in force, and a user's VirtualService gets its own back afterwards.
var mirrorFields = []string{"mirror", "mirrorPercentage", "mirrorPercent", "mirror_percent", "mirrors"}

// expand returns the HTTP routes that take the place of apex, a route as the user wrote it (or
// the catch-all route of the VirtualService trafficctl owns): the strategy's extra routes, each a
// copy of apex with the extra conditions added to every match and one destination, then apex
// itself split between the primary and canary Services. form and port say how the destinations
// name the Services, k is apex's place among the apex routes, for the names, and describe names
// apex in an error. The error is an InvalidRouteError when an extra condition cannot be added to
// apex's matches.
func (s strategy) expand(apex map[string]any, k int, form hostForm, port int32, describe string) ([]any, error) {
	var routes []any
	for _, x := range s.extra {
		route := runtime.DeepCopyJSON(apex)
		route["name"] = derivedName(k, x.kind)
		matches, err := x.when.addTo(apex["match"])
		if err != nil {
			return nil, &router.InvalidRouteError{Message: fmt.Sprintf(
				"%s already matches %s, on which %s also sets a condition; the two cannot be combined in one Istio match, so remove one of them",
				describe, err, x.source)}
		}
		route["match"] = matches
		route["route"] = []any{destination(x.service+string(form), port)}
		routes = append(routes, route)
	}

	split := runtime.DeepCopyJSON(apex)
	primary, canary := destination(s.primary+string(form), port), destination(s.canary+string(form), port)
	primary["weight"], canary["weight"] = int64(s.weights.Primary), int64(s.weights.Canary)
	if s.primaryCookie != "" {
		primary["headers"] = setCookie(s.primaryCookie)
	}
	if s.canaryCookie != "" {
		canary["headers"] = setCookie(s.canaryCookie)
	}
	split["route"] = []any{primary, canary}
	if s.mirror > 0 {
		for _, f := range mirrorFields {
			delete(split, f)
		}
		split["mirror"] = map[string]any{
			"host": s.canary + string(form),
			"port": map[string]any{"number": int64(port)},
		}
		split["mirrorPercentage"] = map[string]any{"value": int64(s.mirror)}
	}
	return append(routes, split), nil
}

// addTo returns a copy of matches, a route's stored match list, with c's conditions added to
// each; no matches means every request, so the result is c's conditions alone. A condition on a
// header or query parameter a match already tests is an error naming it, unless the match tests it
// the same way: an Istio match holds one condition per name.
func (c conditions) addTo(matches any) ([]any, error) {
	list, _ := matches.([]any)
	if len(list) == 0 {
		list = []any{map[string]any{}}
	}
	out := make([]any, 0, len(list))
	for _, m := range list {
		match, ok := runtime.DeepCopyJSONValue(m).(map[string]any)
		if !ok {
			match = map[string]any{}
		}
		for _, field := range []struct {
			key, what  string
			conditions map[string]any
			sameName   func(a, b string) bool
		}{
			// Header names are case-insensitive, query parameter names are not.
			{"headers", "header", c.headers, strings.EqualFold},
			{"queryParams", "query parameter", c.queryParams, func(a, b string) bool { return a == b }},
		} {
			if len(field.conditions) == 0 {
				continue
			}
			have, _ := match[field.key].(map[string]any)
			if have == nil {
				have = map[string]any{}
			}
			for _, name := range sortedNames(field.conditions) {
				add := field.conditions[name]
				duplicate := false
				for existing, cond := range have {
					if !field.sameName(existing, name) {
						continue
					}
					if !reflect.DeepEqual(cond, add) {
						return nil, fmt.Errorf("%s %s", field.what, existing)
					}
					duplicate = true
				}
				if !duplicate {
					have[name] = runtime.DeepCopyJSONValue(add)
				}
			}
			match[field.key] = have
		}
		out = append(out, match)
	}
	return out, nil
}

func sortedNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// setCookie is the destination-level header operation that pins a user to the Service that
// answered. It adds rather than sets, so a Set-Cookie of the application's own survives.
func setCookie(cookie string) map[string]any {
	return map[string]any{"response": map[string]any{"add": map[string]any{"Set-Cookie": cookie}}}
}
