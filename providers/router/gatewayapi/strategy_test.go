package gatewayapi

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

func TestCookiesRegex(t *testing.T) {
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
			expr, err := cookiesRegex(tt.cookies, "analysis.match[0]")
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
	_, err := cookiesRegex(five, "analysis.match[2]")
	assert.True(t, router.IsInvalidRoute(err), "%v", err)
	assert.ErrorContains(t, err, "analysis.match[2] sets conditions on 5 cookies")
}

func TestAddConditions(t *testing.T) {
	header := func(name, typ, value string) map[string]any {
		return map[string]any{"name": name, "type": typ, "value": value}
	}
	match := func(headers ...any) []any {
		return []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/api"}, "headers": headers}}
	}
	c := conditions{
		headers: []any{header("x-canary", "Exact", "always")},
		query:   []any{header("beta", "Exact", "1")},
	}

	got, err := c.addTo(match(header("x-env", "Exact", "prod")))
	require.NoError(t, err)
	assert.Equal(t, []any{map[string]any{
		"path":        map[string]any{"type": "PathPrefix", "value": "/api"},
		"headers":     []any{header("x-env", "Exact", "prod"), header("x-canary", "Exact", "always")},
		"queryParams": []any{header("beta", "Exact", "1")},
	}}, got)

	got, err = c.addTo(match(header("X-Canary", "Exact", "always")))
	require.NoError(t, err)
	assert.Equal(t, []any{header("X-Canary", "Exact", "always")}, got[0].(map[string]any)["headers"],
		"a condition the match already has, whatever the header name's case, is not repeated")

	_, err = c.addTo(match(header("X-Canary", "RegularExpression", "always|never")))
	assert.EqualError(t, err, "header X-Canary")

	query := conditions{query: []any{header("beta", "Exact", "1")}}
	got, err = query.addTo([]any{map[string]any{"queryParams": []any{header("Beta", "Exact", "0")}}})
	require.NoError(t, err, "query parameter names are case-sensitive")
	assert.Len(t, got[0].(map[string]any)["queryParams"], 2)
	_, err = query.addTo([]any{map[string]any{"queryParams": []any{header("beta", "Exact", "0")}}})
	assert.EqualError(t, err, "query parameter beta")
}
