package router_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

func TestCookiesHeaderRegex(t *testing.T) {
	tests := []struct {
		name     string
		cookies  map[string]v1alpha1.StringMatch
		match    []string
		noMatch  []string
		wantExpr string
	}{
		{
			name:     "one cookie is router.CookieHeaderRegex",
			cookies:  map[string]v1alpha1.StringMatch{"beta": {Exact: "yes"}},
			wantExpr: `(.*;\s*)?beta=yes(;.*)?`,
			match:    []string{"beta=yes", "a=1; beta=yes", "beta=yes; a=1"},
			noMatch:  []string{"beta=no", "xbeta=yes", "beta=yess"},
		},
		{
			name:    "every cookie, in either order",
			cookies: map[string]v1alpha1.StringMatch{"beta": {Exact: "yes"}, "plan": {Prefix: "pro"}},
			match: []string{
				"beta=yes; plan=pro",
				"plan=pro-annual; beta=yes",
				"a=1; plan=pro; b=2; beta=yes; c=3",
				"beta=yes;plan=pro",
			},
			noMatch: []string{"beta=yes", "plan=pro", "beta=yes; plan=free", "beta=no; plan=pro", "beta=yes plan=pro"},
		},
		{
			name:    "three cookies",
			cookies: map[string]v1alpha1.StringMatch{"a": {Exact: "1"}, "b": {Regex: "[0-9]+"}, "c": {Exact: "3"}},
			match:   []string{"c=3; a=1; b=22", "b=2; c=3; a=1", "a=1; x=y; b=7; c=3"},
			noMatch: []string{"a=1; b=x; c=3", "a=1; c=3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := router.CookiesHeaderRegex(tt.cookies, "analysis.match[0]")
			require.NoError(t, err)
			if tt.wantExpr != "" {
				assert.Equal(t, tt.wantExpr, expr)
			}
			// Envoy matches the whole value.
			re := regexp.MustCompile("^(?:" + expr + ")$")
			for _, header := range tt.match {
				assert.True(t, re.MatchString(header), "%q matches %s", header, expr)
			}
			for _, header := range tt.noMatch {
				assert.False(t, re.MatchString(header), "%q does not match %s", header, expr)
			}
		})
	}

	five := map[string]v1alpha1.StringMatch{}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		five[name] = v1alpha1.StringMatch{Exact: "1"}
	}
	_, err := router.CookiesHeaderRegex(five, "analysis.match[2]")
	assert.True(t, router.IsInvalidRoute(err), "%v", err)
	assert.ErrorContains(t, err, "analysis.match[2] sets conditions on 5 cookies")
}

func TestExtras(t *testing.T) {
	cn := &v1alpha1.Canary{Spec: v1alpha1.CanarySpec{Analysis: v1alpha1.CanaryAnalysis{
		Match:           []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}},
		SessionAffinity: &v1alpha1.SessionAffinity{CookieName: "c", PrimaryCookieName: "p", MaxAge: 60},
	}}}
	extras, canaryCookie, primaryCookie, err := router.Extras(cn, rollout.Routing{Cohort: true, Sticky: "rev2"})
	require.NoError(t, err)
	assert.Equal(t, []router.Extra{
		{Kind: "cohort-0", Source: "analysis.match[0]", Match: cn.Spec.Analysis.Match[0]},
		{Kind: "sticky-canary", Source: "analysis.sessionAffinity", Match: v1alpha1.HTTPMatch{Cookies: map[string]v1alpha1.StringMatch{"c": {Exact: "rev2"}}}},
		{Kind: "sticky-primary", Source: "analysis.sessionAffinity", ToPrimary: true, Match: v1alpha1.HTTPMatch{Cookies: map[string]v1alpha1.StringMatch{"p": {Exact: "rev2"}}}},
	}, extras)
	assert.Equal(t, "c=rev2; Max-Age=60; Path=/", canaryCookie)
	assert.Equal(t, "p=rev2; Max-Age=60; Path=/", primaryCookie)

	extras, canaryCookie, _, err = router.Extras(cn, rollout.Primary())
	require.NoError(t, err)
	assert.Empty(t, extras, "the resting routing adds nothing")
	assert.Empty(t, canaryCookie)

	cn.Spec.Analysis.Match[0].Headers["x-canary"] = v1alpha1.StringMatch{Regex: "("}
	_, _, _, err = router.Extras(cn, rollout.Routing{Cohort: true})
	assert.True(t, router.IsInvalidRoute(err), "%v", err)
	assert.ErrorContains(t, err, "analysis.match[0].headers[x-canary].regex")
}
