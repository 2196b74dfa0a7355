package gatewayapi

import (
	"fmt"

	"github.com/trafficctl/trafficctl/providers/router"
)

// The HTTPRoute schema's limits (gateway.networking.k8s.io/v1, standard channel). A rollout's
// rules count against them, so a route that would exceed one is reported before it is written,
// as something the user must change, rather than as an apiserver rejection retried forever.
const (
	maxRules          = 16
	maxMatchesPerRule = 64
	maxMatches        = 128
	maxHeaderMatches  = 16
	maxQueryMatches   = 16
	maxFilters        = 16
	maxHeaderValue    = 4096
	maxQueryValue     = 1024
)

// checkLimits reports the first Gateway API limit that rules, the whole rules list of the route
// about to be written, exceed. The route as the user wrote it met them all, so what exceeds one
// is the rollout's doing.
func (b backends) checkLimits(rules []any) error {
	tooMany := func(what string, n, limit int) error {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"HTTPRoute %s/%s would need %d %s once this rollout's rules and filters are added, but Gateway API allows at most %d; move other rules to another HTTPRoute, or use fewer analysis.match entries or conditions",
			b.namespace, b.route, n, what, limit)}
	}
	if len(rules) > maxRules {
		return tooMany("rules", len(rules), maxRules)
	}
	total := 0
	for i, r := range rules {
		rule := r.(map[string]any)
		matches := matchesOf(rule)
		total += len(matches)
		if len(matches) > maxMatchesPerRule {
			return tooMany(fmt.Sprintf("matches in rule %d", i), len(matches), maxMatchesPerRule)
		}
		if filters, _ := rule["filters"].([]any); len(filters) > maxFilters {
			return tooMany(fmt.Sprintf("filters in rule %d", i), len(filters), maxFilters)
		}
		for _, m := range matches {
			match, _ := m.(map[string]any)
			headers, _ := match["headers"].([]any)
			if len(headers) > maxHeaderMatches {
				return tooMany(fmt.Sprintf("header matches in a match of rule %d", i), len(headers), maxHeaderMatches)
			}
			query, _ := match["queryParams"].([]any)
			if len(query) > maxQueryMatches {
				return tooMany(fmt.Sprintf("query parameter matches in a match of rule %d", i), len(query), maxQueryMatches)
			}
			for _, values := range []struct {
				what    string
				matches []any
				limit   int
			}{{"header", headers, maxHeaderValue}, {"query parameter", query, maxQueryValue}} {
				for _, v := range values.matches {
					cond, _ := v.(map[string]any)
					if value, _ := cond["value"].(string); len(value) > values.limit {
						return tooMany(fmt.Sprintf("characters in the match on %s %v of rule %d", values.what, cond["name"], i), len(value), values.limit)
					}
				}
			}
		}
	}
	if total > maxMatches {
		return tooMany("matches over all rules", total, maxMatches)
	}
	return nil
}
