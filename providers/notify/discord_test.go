package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decodeDiscord(t *testing.T, body []byte) discordMessage {
	t.Helper()
	var msg discordMessage
	require.NoError(t, json.Unmarshal(body, &msg), "%s", body)
	require.Len(t, msg.Embeds, 1)
	return msg
}

func TestDiscordMessage(t *testing.T) {
	srv, got := newReceiver(t, http.StatusNoContent)
	n, err := New(Target{Type: typeDiscord, Address: srv.URL + "/api/webhooks/1/tok", Username: "trafficctl"})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), rolledBack()))

	msg := decodeDiscord(t, one(t, got).body)
	assert.Equal(t, "trafficctl", msg.Username)
	e := msg.Embeds[0]
	assert.Equal(t, "shop/podinfo rolled back", e.Title)
	assert.Equal(t, rolledBack().Text, e.Description)
	assert.Equal(t, 0xa30200, e.Color)
	assert.Equal(t, "2025-03-04T05:06:07Z", e.Timestamp)
	require.Len(t, e.Fields, len(rolledBack().Fields))
	assert.Equal(t, discordField{Name: "Failing check", Value: "request-success-rate", Inline: true}, e.Fields[2])
	assert.Equal(t, discordField{Name: "Value", Value: "97.1", Inline: true}, e.Fields[3])
}

func TestDiscordColourFollowsSeverity(t *testing.T) {
	for s, want := range map[Severity]int{SeverityInfo: 0x2eb886, SeverityWarn: 0xdaa038, SeverityError: 0xa30200} {
		body, err := Payload(Target{Type: typeDiscord}, Message{Severity: s})
		require.NoError(t, err)
		assert.Equal(t, want, decodeDiscord(t, body).Embeds[0].Color, "severity %s", s)
	}
}

func TestDiscordTruncatesToItsLimits(t *testing.T) {
	m := Message{
		Headline: strings.Repeat("é", 300),
		Text:     strings.Repeat("😀", 3000), // 6000 UTF-16 units
		Time:     rolledBack().Time,
	}
	for i := range 30 {
		m.Fields = append(m.Fields, Field{Name: fmt.Sprintf("f%d", i), Value: strings.Repeat("v", 50)})
	}
	m.Fields[0].Value = strings.Repeat("ß", 2000)
	m.Fields[1].Value = ""

	body, err := Payload(Target{Type: typeDiscord, Username: strings.Repeat("u", 100)}, m)
	require.NoError(t, err)
	msg := decodeDiscord(t, body)
	e := msg.Embeds[0]

	assert.Equal(t, 80, utf16Len(msg.Username))
	assert.Equal(t, discordTitleMax, utf16Len(e.Title))
	require.Len(t, e.Fields, discordFieldsMax)
	assert.Equal(t, discordFieldValueMax, utf16Len(e.Fields[0].Value))
	assert.Equal(t, "-", e.Fields[1].Value, "Discord rejects an empty value")
	assert.Equal(t, "f24", e.Fields[24].Name)

	total := utf16Len(e.Title) + utf16Len(e.Description)
	for _, f := range e.Fields {
		total += utf16Len(f.Name) + utf16Len(f.Value)
	}
	assert.LessOrEqual(t, total, discordEmbedMax)
	assert.LessOrEqual(t, utf16Len(e.Description), discordDescriptionMax)
	assert.NotEmpty(t, e.Description)
	assert.GreaterOrEqual(t, total, discordEmbedMax-1, "the description takes what the fields leave")
	emoji := strings.TrimSuffix(e.Description, "…")
	assert.Equal(t, strings.Repeat("😀", utf8.RuneCountInString(emoji)), emoji, "a surrogate pair was split")
	for _, s := range []string{e.Title, e.Description, e.Fields[0].Value} {
		assert.True(t, utf8.ValidString(s))
		assert.True(t, strings.HasSuffix(s, "…"))
	}
}
