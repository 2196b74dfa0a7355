package notify

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// teamsBody is the Workflows webhook form, decoded independently of the library that built it.
type teamsBody struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string `json:"contentType"`
		Content     struct {
			Type    string `json:"type"`
			Version string `json:"version"`
			Body    []struct {
				Type   string `json:"type"`
				Text   string `json:"text"`
				Weight string `json:"weight"`
				Size   string `json:"size"`
				Color  string `json:"color"`
				Wrap   bool   `json:"wrap"`
				Facts  []struct {
					Title string `json:"title"`
					Value string `json:"value"`
				} `json:"facts"`
			} `json:"body"`
		} `json:"content"`
	} `json:"attachments"`
}

func TestTeamsMessage(t *testing.T) {
	srv, got := newReceiver(t, http.StatusAccepted)
	n, err := New(Target{Type: typeMSTeams, Address: srv.URL + "/workflows/x?sig=y"})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), rolledBack()))

	var msg teamsBody
	require.NoError(t, json.Unmarshal(one(t, got).body, &msg))
	assert.Equal(t, "message", msg.Type)
	require.Len(t, msg.Attachments, 1)
	a := msg.Attachments[0]
	assert.Equal(t, "application/vnd.microsoft.card.adaptive", a.ContentType)
	assert.Equal(t, "AdaptiveCard", a.Content.Type)
	assert.Equal(t, "1.4", a.Content.Version)

	body := a.Content.Body
	require.Len(t, body, 3)
	assert.Equal(t, "TextBlock", body[0].Type)
	assert.Equal(t, "shop/podinfo rolled back", body[0].Text)
	assert.Equal(t, "bolder", body[0].Weight)
	assert.Equal(t, "medium", body[0].Size)
	assert.Equal(t, "attention", body[0].Color)

	assert.Equal(t, "TextBlock", body[1].Type)
	assert.Equal(t, rolledBack().Text, body[1].Text)
	assert.True(t, body[1].Wrap)

	assert.Equal(t, "FactSet", body[2].Type)
	require.Len(t, body[2].Facts, len(rolledBack().Fields))
	for i, f := range rolledBack().Fields {
		assert.Equal(t, f.Name, body[2].Facts[i].Title)
		assert.Equal(t, f.Value, body[2].Facts[i].Value)
	}
}

func TestTeamsColourAndEmptyParts(t *testing.T) {
	for s, want := range map[Severity]string{SeverityInfo: "good", SeverityWarn: "warning", SeverityError: "attention"} {
		body, err := Payload(Target{Type: typeMSTeams}, Message{Severity: s, Headline: "h", Fields: []Field{{Name: "Weight", Value: ""}}})
		require.NoError(t, err)
		var msg teamsBody
		require.NoError(t, json.Unmarshal(body, &msg))
		card := msg.Attachments[0].Content.Body
		require.Len(t, card, 2, "no text block without text")
		assert.Equal(t, want, card[0].Color, "severity %s", s)
		assert.Equal(t, "-", card[1].Facts[0].Value, "Teams rejects an empty fact")
	}
}
