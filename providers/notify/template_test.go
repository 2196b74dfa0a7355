package notify

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplatesReplaceHeadlineAndText(t *testing.T) {
	target := Target{
		Type:             typeWebhook,
		HeadlineTemplate: "{{ .Namespace }}/{{ .Canary }}: {{ .Reason }}\n",
		TextTemplate:     `{{ .Severity }}: {{ field "Failing check" }} was {{ field "Value" }} (want {{ field "Bound" }}){{ if not (field "Missing") }}; no Missing field{{ end }}. Was: {{ .Headline }}`,
	}
	body, err := Payload(target, rolledBack())
	require.NoError(t, err)

	var got webhookMessage
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, "shop/podinfo: RolledBack", got.Headline, "a headline is one line")
	assert.Equal(t, "error: request-success-rate was 97.1 (want >= 99); no Missing field. Was: shop/podinfo rolled back", got.Text)
}

func TestTemplatesBindFieldToEachMessage(t *testing.T) {
	srv, got := newReceiver(t, http.StatusOK)
	n, err := New(Target{Type: typeWebhook, Address: srv.URL, HeadlineTemplate: `{{ .Canary }} {{ field "Phase" }}`})
	require.NoError(t, err)

	for _, phase := range []string{"Progressing", "Succeeded"} {
		m := rolledBack()
		m.Canary = "c-" + phase
		m.Fields = []Field{{Name: "Phase", Value: phase}}
		require.NoError(t, n.Notify(t.Context(), m))
		var body webhookMessage
		require.NoError(t, json.Unmarshal(one(t, got).body, &body))
		assert.Equal(t, "c-"+phase+" "+phase, body.Headline)
	}
}

func TestBlankTemplatesKeepTheMessage(t *testing.T) {
	body, err := Payload(Target{Type: typeWebhook, HeadlineTemplate: "  ", TextTemplate: "\n"}, rolledBack())
	require.NoError(t, err)
	var got webhookMessage
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, rolledBack().Headline, got.Headline)
	assert.Equal(t, rolledBack().Text, got.Text)
}

func TestTemplateErrors(t *testing.T) {
	_, err := Payload(Target{Type: typeSlack, TextTemplate: "{{ if .Canary }}"}, rolledBack())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "slack alert provider: text template does not parse: template: text:1: unexpected EOF")

	_, err = New(Target{Type: typeDiscord, Address: "https://discord.example.com/api/webhooks/1/x", HeadlineTemplate: "{{ field }}"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "discord alert provider: headline template does not render")
	assert.Contains(t, err.Error(), "wrong number of args for field")
}
