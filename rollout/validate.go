package rollout

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// ValidateMatch checks what the CRD's schema cannot: that every regular expression of
// analysis.match compiles. The error names the field, such as
// analysis.match[0].headers[x-canary].regex.
func ValidateMatch(matches []v1alpha1.HTTPMatch) error {
	var problems []string
	for i, m := range matches {
		for _, field := range []struct {
			name       string
			conditions map[string]v1alpha1.StringMatch
		}{{"headers", m.Headers}, {"cookies", m.Cookies}, {"queryParams", m.QueryParams}} {
			for _, key := range slices.Sorted(maps.Keys(field.conditions)) {
				re := field.conditions[key].Regex
				if re == "" {
					continue
				}
				if _, err := regexp.Compile(re); err != nil {
					problems = append(problems, fmt.Sprintf("invalid A/B match: analysis.match[%d].%s[%s].regex %q is not an RE2 regular expression: %v", i, field.name, key, re, err))
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
