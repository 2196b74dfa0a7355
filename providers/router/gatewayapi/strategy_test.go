package gatewayapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
