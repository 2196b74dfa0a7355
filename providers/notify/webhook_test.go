package notify

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebhookMessageAndBearer(t *testing.T) {
	srv, got := newReceiver(t, http.StatusOK)
	n, err := New(Target{Type: typeWebhook, Address: srv.URL + "/alerts", Token: "t0ken"})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), rolledBack()))

	r := one(t, got)
	assert.Equal(t, "Bearer t0ken", r.header.Get("Authorization"))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))

	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, map[string]any{
		"canary":    "podinfo",
		"namespace": "shop",
		"severity":  "error",
		"reason":    "RolledBack",
		"headline":  "shop/podinfo rolled back",
		"text":      rolledBack().Text,
		"fields": map[string]any{
			"Phase":         "Failed",
			"Revision":      "6.5.1",
			"Failing check": "request-success-rate",
			"Value":         "97.1",
			"Bound":         ">= 99",
		},
		"time": "2025-03-04T05:06:07Z",
	}, body)
}

func TestWebhookWithoutToken(t *testing.T) {
	srv, got := newReceiver(t, http.StatusOK)
	n, err := New(Target{Type: typeWebhook, Address: srv.URL})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), Message{Fields: []Field{{Name: "a", Value: "1"}, {Name: "a", Value: "2"}}}))

	r := one(t, got)
	assert.Empty(t, r.header.Values("Authorization"))
	var body webhookMessage
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, map[string]string{"a": "1"}, body.Fields, "the first of two fields with one name wins")
	assert.Nil(t, body.Time, "a zero time is left out")
	assert.NotContains(t, string(r.body), `"time"`)
}

func TestTokenIsOnlySentToWebhooks(t *testing.T) {
	for _, typ := range []string{typeSlack, typeMSTeams, typeDiscord} {
		srv, got := newReceiver(t, http.StatusOK)
		n, err := New(Target{Type: typ, Address: srv.URL, Token: "t0ken"})
		require.NoError(t, err)
		require.NoError(t, n.Notify(t.Context(), rolledBack()))
		assert.Empty(t, one(t, got).header.Values("Authorization"), "type %s", typ)
	}
}
