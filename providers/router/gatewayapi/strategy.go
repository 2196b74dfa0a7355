package gatewayapi

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

// A strategy's rules are written in the stored (unstructured) form of an HTTPRoute rule, so the
// same code serves the route trafficctl owns and a user's route, whose rules may carry fields this
// module's types do not know. Every value is written fully defaulted (group "", kind Service,
// weight 1, match type), so rules read back from the apiserver compare equal to the rules computed
// for the same Routing, and an unchanged Routing writes nothing.

const (
	// splitRuleName names the catch-all rule of the route trafficctl owns.
	splitRuleName = "split"
)

// derivedRuleName matches the names of the rules trafficctl adds before an apex rule: the cohort
// rules (one per analysis.match entry) and the sticky-session rules. The rules added before the
// second and later apex rules of a user's route carry "apex<k>-" to stay unique.
var derivedRuleName = regexp.MustCompile(`^trafficctl-(?:apex[0-9]+-)?(cohort-[0-9]+|sticky-canary|sticky-primary)$`)

// derivedName is the name of the rule of the given kind added before the k-th apex rule.
func derivedName(k int, kind string) string {
	if k == 0 {
		return "trafficctl-" + kind
	}
	return fmt.Sprintf("trafficctl-apex%d-%s", k, kind)
}

// strategy is what a Routing asks of every apex rule: the rules to put before it, and the split it
// carries itself.
type strategy struct {
	weights rollout.Weights
	// extra are the rules put before each apex rule, in order.
	extra []extraRule
	// canaryCookie and primaryCookie are the Set-Cookie values added to the responses of the
	// canary and primary backends of the split; "" for none.
	canaryCookie, primaryCookie string
	// mirror is the percent of the split's requests copied to the canary; 0 for none.
	mirror int32
}

// extraRule sends the requests of an apex rule that also meet when to one Service only.
type extraRule struct {
	kind    string
	when    conditions
	service string
	// source names the part of the Canary the conditions come from, for error messages.
	source string
}

// conditions are header and query parameter matches, stored form, added to each match of an apex
// rule.
type conditions struct {
	headers []any
	query   []any
}

// strategyOf turns the Routing into rules, with the Canary's spec saying how each looks.
func strategyOf(cn *v1alpha1.Canary, r rollout.Routing, b backends) (strategy, error) {
	s := strategy{weights: r.Weights, mirror: r.Mirror}
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
		service := b.canary
		if e.ToPrimary {
			service = b.primary
		}
		s.extra = append(s.extra, extraRule{kind: e.Kind, when: when, service: service, source: e.Source})
	}
	return s, nil
}

// cohortConditions translates one analysis.match entry. Gateway API header and query matches are
// Exact or RegularExpression, so a prefix becomes a regular expression; cookies become one
// regular expression on the Cookie header.
func cohortConditions(m v1alpha1.HTTPMatch, source string) (conditions, error) {
	var c conditions
	for _, name := range router.SortedKeys(m.Headers) {
		c.headers = append(c.headers, valueMatch(name, m.Headers[name]))
	}
	if len(m.Cookies) > 0 {
		re, err := router.CookiesHeaderRegex(m.Cookies, source)
		if err != nil {
			return conditions{}, err
		}
		c.headers = append(c.headers, regexMatch("Cookie", re))
	}
	for _, name := range router.SortedKeys(m.QueryParams) {
		c.query = append(c.query, valueMatch(name, m.QueryParams[name]))
	}
	return c, nil
}

// valueMatch is a header or query parameter match, which share their form.
func valueMatch(name string, m v1alpha1.StringMatch) map[string]any {
	if m.Exact != "" {
		return map[string]any{"name": name, "type": string(gatewayv1.HeaderMatchExact), "value": m.Exact}
	}
	return regexMatch(name, router.Regex(m))
}

func regexMatch(name, re string) map[string]any {
	return map[string]any{"name": name, "type": string(gatewayv1.HeaderMatchRegularExpression), "value": re}
}

// expand returns the rules that take the place of apex, a rule as the user wrote it (or the
// catch-all rule of the route trafficctl owns): the strategy's extra rules, each a copy of apex
// with the extra conditions added to every match and one backend, then apex itself split between
// the primary and canary Services (splitBackends), each a copy of the apex backendRef. k is apex's
// place among the apex rules, for the names; port is the apex Service port of a rule without
// backendRefs (the catch-all rule of the route trafficctl owns).
// The error is an InvalidRouteError when an extra condition cannot be added to apex's matches.
func (s strategy) expand(apex map[string]any, k int, b backends, port int32) ([]any, error) {
	refs, _ := apex["backendRefs"].([]any)
	if len(refs) == 0 {
		refs = []any{serviceRef(b.apex, port, 1)}
	}
	first := b.firstApexRef(refs, port)

	var rules []any
	for _, x := range s.extra {
		rule := runtime.DeepCopyJSON(apex)
		rule["name"] = derivedName(k, x.kind)
		matches, err := x.when.addTo(matchesOf(apex))
		if err != nil {
			return nil, &router.InvalidRouteError{Message: fmt.Sprintf(
				"the rule of HTTPRoute %s/%s that sends traffic to Service %s already matches %s, on which %s also sets a condition; the two cannot be combined in one Gateway API match, so remove one of them",
				b.namespace, b.route, b.apex, err, x.source)}
		}
		rule["matches"] = matches
		rule["backendRefs"] = []any{asBackend(first, x.service, 1, "")}
		rules = append(rules, rule)
	}

	split := runtime.DeepCopyJSON(apex)
	split["backendRefs"] = s.splitBackends(refs, b)
	if s.mirror > 0 {
		filters, _ := split["filters"].([]any)
		split["filters"] = append(filters, mirrorFilter(b.canary, port, s.mirror))
	}
	return append(rules, split), nil
}

// maxWeight is the largest weight Gateway API takes on a backendRef.
const maxWeight = 1_000_000

// splitBackends are the backendRefs of an apex rule's split: each backend that is the apex Service
// becomes two, the primary and the canary, each a copy of it (its port, filters and any field this
// module does not know) sharing the apex backend's weight as s.weights says; any other backend of
// the rule keeps its share of the rule's traffic. A rule whose only backend is the apex Service
// with the default weight gets the weights themselves.
func (s strategy) splitBackends(refs []any, b backends) []any {
	total := int64(s.weights.Primary) + int64(s.weights.Canary)
	var out []any
	var weights []int64
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		w := refWeight(ref)
		if !b.isApex(ref) {
			out = append(out, runtime.DeepCopyJSON(ref))
			weights = append(weights, w*total)
			continue
		}
		out = append(out, asBackend(ref, b.primary, 0, s.primaryCookie), asBackend(ref, b.canary, 0, s.canaryCookie))
		weights = append(weights, w*int64(s.weights.Primary), w*int64(s.weights.Canary))
	}
	// Weights that the sharing took past Gateway API's bound are scaled down together, keeping
	// their ratios as near as whole numbers can. A lone apex backend of weight 1 carries the
	// weights as they are, for the apiserver to judge.
	top := slices.Max(weights)
	shared := len(refs) > 1 || refWeight(refs[0].(map[string]any)) != 1
	for i, ref := range out {
		w := weights[i]
		if shared && top > maxWeight {
			w = (w*maxWeight + top/2) / top
		}
		ref.(map[string]any)["weight"] = w
	}
	return out
}

// firstApexRef is the first backendRef of refs that is the apex Service, the one a rule sending
// its requests to one version alone copies; the bare apex Service on port when there is none.
func (b backends) firstApexRef(refs []any, port int32) map[string]any {
	for _, r := range refs {
		if ref, _ := r.(map[string]any); b.isApex(ref) {
			return ref
		}
	}
	return serviceRef(b.apex, port, 1)
}

// isApex reports whether ref, a backendRef in stored form, is the apex Service.
func (b backends) isApex(ref map[string]any) bool {
	if ref == nil {
		return false
	}
	group, _ := ref["group"].(string)
	kind, _ := ref["kind"].(string)
	ns, _ := ref["namespace"].(string)
	name, _ := ref["name"].(string)
	return group == "" && (kind == "" || kind == "Service") && (ns == "" || ns == b.namespace) && name == b.apex
}

// refWeight is a stored backendRef's weight, 1 (Gateway API's default) when it has none.
func refWeight(ref map[string]any) int64 {
	switch w := ref["weight"].(type) {
	case int64:
		return w
	case float64:
		return int64(w)
	}
	return 1
}

// asBackend is a copy of the apex backendRef ref that names Service name instead, with weight (when
// it is not 0) and, when cookie is not "", a response header that sets it.
func asBackend(ref map[string]any, name string, weight int64, cookie string) map[string]any {
	out := runtime.DeepCopyJSON(ref)
	out["name"] = name
	if weight != 0 {
		out["weight"] = weight
	}
	if cookie != "" {
		filters, _ := out["filters"].([]any)
		out["filters"] = withSetCookie(filters, cookie)
	}
	return out
}

// withSetCookie adds a Set-Cookie response header to filters: to the backend's own
// ResponseHeaderModifier when it has one (Gateway API allows one per list), else in one of its own.
func withSetCookie(filters []any, cookie string) []any {
	header := map[string]any{"name": "Set-Cookie", "value": cookie}
	for _, f := range filters {
		filter, _ := f.(map[string]any)
		if filter["type"] != string(gatewayv1.HTTPRouteFilterResponseHeaderModifier) {
			continue
		}
		modifier, _ := filter["responseHeaderModifier"].(map[string]any)
		if modifier == nil {
			modifier = map[string]any{}
			filter["responseHeaderModifier"] = modifier
		}
		add, _ := modifier["add"].([]any)
		modifier["add"] = append([]any{header}, add...)
		return filters
	}
	return append(filters, setCookieFilter(cookie))
}

// matchesOf is rule's matches; none means every request, which Gateway API writes as a "/" prefix.
func matchesOf(rule map[string]any) []any {
	if matches, _ := rule["matches"].([]any); len(matches) > 0 {
		return matches
	}
	return []any{map[string]any{"path": map[string]any{"type": string(gatewayv1.PathMatchPathPrefix), "value": "/"}}}
}

// addTo returns a copy of matches with c's conditions added to each. A condition on a header or
// query parameter a match already tests is an error naming it, unless the match tests it the
// same way: a Gateway API match honours one condition per name.
func (c conditions) addTo(matches []any) ([]any, error) {
	out := make([]any, 0, len(matches))
	for _, m := range matches {
		match := runtime.DeepCopyJSONValue(m).(map[string]any)
		for _, field := range []struct {
			key        string
			what       string
			conditions []any
			sameName   func(a, b string) bool
		}{
			// Header names are case-insensitive, query parameter names are not.
			{"headers", "header", c.headers, strings.EqualFold},
			{"queryParams", "query parameter", c.query, func(a, b string) bool { return a == b }},
		} {
			if len(field.conditions) == 0 {
				continue
			}
			have, _ := match[field.key].([]any)
			for _, cond := range field.conditions {
				add := cond.(map[string]any)
				duplicate := false
				for _, h := range have {
					existing, _ := h.(map[string]any)
					name, _ := existing["name"].(string)
					if !field.sameName(name, add["name"].(string)) {
						continue
					}
					if existing["type"] != add["type"] || existing["value"] != add["value"] {
						return nil, fmt.Errorf("%s %s", field.what, name)
					}
					duplicate = true
				}
				if !duplicate {
					have = append(have, runtime.DeepCopyJSONValue(add))
				}
			}
			match[field.key] = have
		}
		out = append(out, match)
	}
	return out, nil
}

// setCookieFilter is the backendRef filter that pins a user to the backend that answered.
func setCookieFilter(cookie string) map[string]any {
	return map[string]any{
		"type": string(gatewayv1.HTTPRouteFilterResponseHeaderModifier),
		"responseHeaderModifier": map[string]any{
			"add": []any{map[string]any{"name": "Set-Cookie", "value": cookie}},
		},
	}
}

// mirrorFilter copies percent of a rule's requests to Service name.
func mirrorFilter(name string, port, percent int32) map[string]any {
	return map[string]any{
		"type": string(gatewayv1.HTTPRouteFilterRequestMirror),
		"requestMirror": map[string]any{
			"backendRef": map[string]any{"group": "", "kind": "Service", "name": name, "port": int64(port)},
			"percent":    int64(percent),
		},
	}
}
