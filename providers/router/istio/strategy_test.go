package istio

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

func TestCohortConditions(t *testing.T) {
	c, err := cohortConditions(v1alpha1.HTTPMatch{
		Headers:     map[string]v1alpha1.StringMatch{"X-User": {Regex: "a|b"}, "x-group": {Prefix: "beta"}},
		Cookies:     map[string]v1alpha1.StringMatch{"canary": {Exact: "1"}},
		QueryParams: map[string]v1alpha1.StringMatch{"Variant": {Exact: "B"}, "ref": {Prefix: "mail"}, "id": {Regex: "[0-9]+"}},
	}, "analysis.match[0]")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"x-user":  map[string]any{"regex": "a|b"},
		"x-group": map[string]any{"prefix": "beta"},
		"cookie":  map[string]any{"regex": `(.*;\s*)?canary=1(;.*)?`},
	}, c.headers, "header names lowercase, as Istio requires; prefix kept")
	assert.Equal(t, map[string]any{
		"Variant": map[string]any{"exact": "B"},
		"ref":     map[string]any{"regex": "mail.*"},
		"id":      map[string]any{"regex": "[0-9]+"},
	}, c.queryParams, "query parameter names as written; no prefix in Istio")

	_, err = cohortConditions(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"X-A": {Exact: "1"}, "x-a": {Exact: "2"}}}, "analysis.match[1]")
	assert.True(t, router.IsInvalidRoute(err), "%v", err)
	assert.EqualError(t, err, "analysis.match[1] sets two conditions on header x-a (header names are case-insensitive); Istio matches a header once, so keep one")
}

func TestAddTo(t *testing.T) {
	c := conditions{
		headers:     map[string]any{"x-canary": map[string]any{"exact": "1"}},
		queryParams: map[string]any{"v": map[string]any{"exact": "b"}},
	}
	got, err := c.addTo(nil)
	require.NoError(t, err)
	assert.Equal(t, []any{map[string]any{
		"headers":     map[string]any{"x-canary": map[string]any{"exact": "1"}},
		"queryParams": map[string]any{"v": map[string]any{"exact": "b"}},
	}}, got, "no match is every request")

	matches := []any{
		map[string]any{"uri": map[string]any{"prefix": "/a"}},
		map[string]any{"headers": map[string]any{"X-Canary": map[string]any{"exact": "1"}}, "method": map[string]any{"exact": "GET"}},
	}
	got, err = c.addTo(matches)
	require.NoError(t, err)
	assert.Equal(t, []any{
		map[string]any{
			"uri":         map[string]any{"prefix": "/a"},
			"headers":     map[string]any{"x-canary": map[string]any{"exact": "1"}},
			"queryParams": map[string]any{"v": map[string]any{"exact": "b"}},
		},
		map[string]any{
			"headers":     map[string]any{"X-Canary": map[string]any{"exact": "1"}},
			"method":      map[string]any{"exact": "GET"},
			"queryParams": map[string]any{"v": map[string]any{"exact": "b"}},
		},
	}, got, "the same condition is kept once")
	assert.Equal(t, map[string]any{"uri": map[string]any{"prefix": "/a"}}, matches[0], "the route's own matches are not changed")

	_, err = c.addTo([]any{map[string]any{"queryParams": map[string]any{"v": map[string]any{"regex": "a|b"}}}})
	assert.EqualError(t, err, "query parameter v")
	_, err = c.addTo([]any{map[string]any{"queryParams": map[string]any{"V": map[string]any{"exact": "c"}}}})
	assert.NoError(t, err, "query parameter names are case-sensitive")
}

func TestCheckRouting(t *testing.T) {
	for _, tt := range []struct {
		routing rollout.Routing
		wantErr string
	}{
		{routing: rollout.Primary()},
		{routing: rollout.Routing{Weights: rollout.ForCanary(100), Mirror: 100, Sticky: "k3x9"}},
		{routing: rollout.Routing{Weights: rollout.Weights{Primary: 50, Canary: 40}}, wantErr: "weights primary 50% / canary 40% are not a split Istio accepts: each must be between 0 and 100 and they must add up to 100"},
		{routing: rollout.Routing{Weights: rollout.Weights{Primary: 120, Canary: -20}}, wantErr: "weights primary 120% / canary -20% are not a split Istio accepts: each must be between 0 and 100 and they must add up to 100"},
		{routing: rollout.Routing{Weights: rollout.ForCanary(0), Mirror: 101}, wantErr: "mirror 101% is not a percentage Istio accepts: it must be between 0 and 100"},
		{routing: rollout.Routing{Weights: rollout.ForCanary(0), Sticky: "a; b"}, wantErr: `sticky value "a; b" cannot be a cookie value`},
	} {
		err := checkRouting(tt.routing)
		if tt.wantErr == "" {
			assert.NoError(t, err, "%s", tt.routing)
		} else {
			assert.EqualError(t, err, tt.wantErr)
		}
	}
}

func TestStrategyOfNeedsTheCanarysSpec(t *testing.T) {
	d := destinations{namespace: "shop", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary"}
	cn := &v1alpha1.Canary{}
	cn.Namespace, cn.Name = "shop", "podinfo"

	_, err := strategyOf(cn, rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true}, d)
	assert.EqualError(t, err, "the routing asks for an A/B cohort, but Canary shop/podinfo has no analysis.match")
	_, err = strategyOf(cn, rollout.Routing{Weights: rollout.ForCanary(0), Sticky: "x"}, d)
	assert.EqualError(t, err, "the routing asks for sticky sessions, but Canary shop/podinfo has no analysis.sessionAffinity")

	cn.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"x": {Regex: "("}}}}
	_, err = strategyOf(cn, rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true}, d)
	assert.True(t, router.IsInvalidRoute(err), "a regex RE2 refuses is the user's to fix: %v", err)
	assert.ErrorContains(t, err, "analysis.match[0].headers[x].regex")
}

func TestDerivedName(t *testing.T) {
	assert.Equal(t, "trafficctl-cohort-0", derivedName(0, "cohort-0"))
	assert.Equal(t, "trafficctl-apex2-sticky-primary", derivedName(2, "sticky-primary"))
	for _, name := range []string{"trafficctl-cohort-12", "trafficctl-apex1-sticky-canary", "trafficctl-sticky-primary"} {
		assert.True(t, derivedRouteName.MatchString(name), name)
	}
	for _, name := range []string{"trafficctl-cohort-", "trafficctl-shadow", "my-trafficctl-cohort-0", "trafficctl-apex-cohort-0"} {
		assert.False(t, derivedRouteName.MatchString(name), name)
	}
}
