package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeSlack decodes a Slack body with slack-go's own types, as Slack would read it.
func decodeSlack(t *testing.T, body []byte) slack.WebhookMessage {
	t.Helper()
	var msg slack.WebhookMessage
	require.NoError(t, json.Unmarshal(body, &msg), "%s", body)
	require.Len(t, msg.Attachments, 1)
	return msg
}

// slackFieldTexts returns the text of every field of every section.
func slackFieldTexts(blocks []slack.Block) []string {
	var texts []string
	for _, b := range blocks {
		if s, ok := b.(*slack.SectionBlock); ok {
			for _, f := range s.Fields {
				texts = append(texts, f.Text)
			}
		}
	}
	return texts
}

func TestSlackMessage(t *testing.T) {
	srv, got := newReceiver(t, http.StatusOK)
	n, err := New(Target{Type: typeSlack, Address: srv.URL + "/services/T/B/x", Channel: "#deploys", Username: "trafficctl"})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), rolledBack()))

	msg := decodeSlack(t, one(t, got).body)
	assert.Equal(t, "#deploys", msg.Channel)
	assert.Equal(t, "trafficctl", msg.Username)
	assert.Equal(t, "shop/podinfo rolled back", msg.Text)

	a := msg.Attachments[0]
	assert.Equal(t, "#a30200", a.Color, "error is red")
	blocks := a.Blocks.BlockSet
	require.Len(t, blocks, 4)

	header, ok := blocks[0].(*slack.HeaderBlock)
	require.True(t, ok, "first block is %T", blocks[0])
	assert.Equal(t, slack.PlainTextType, header.Text.Type)
	assert.Equal(t, "shop/podinfo rolled back", header.Text.Text)

	text, ok := blocks[1].(*slack.SectionBlock)
	require.True(t, ok, "second block is %T", blocks[1])
	assert.Equal(t, slack.MarkdownType, text.Text.Type)
	assert.Equal(t, rolledBack().Text, text.Text.Text)

	fields := slackFieldTexts(blocks)
	assert.Contains(t, fields, "*Failing check*\nrequest-success-rate")
	assert.Contains(t, fields, "*Value*\n97.1")
	assert.Contains(t, fields, "*Bound*\n&gt;= 99", "> is escaped")

	ctx, ok := blocks[3].(*slack.ContextBlock)
	require.True(t, ok, "last block is %T", blocks[3])
	require.Len(t, ctx.ContextElements.Elements, 1)
	c, ok := ctx.ContextElements.Elements[0].(*slack.TextBlockObject)
	require.True(t, ok)
	assert.Contains(t, c.Text, "`shop/podinfo`")
	assert.Contains(t, c.Text, "<!date^1741064767^")
	assert.Contains(t, c.Text, "|2025-03-04T05:06:07Z>")
}

func TestSlackColourFollowsSeverity(t *testing.T) {
	for s, want := range map[Severity]string{SeverityInfo: "#2eb886", SeverityWarn: "#daa038", SeverityError: "#a30200", "bogus": "#2eb886"} {
		m := rolledBack()
		m.Severity = s
		body, err := Payload(Target{Type: typeSlack}, m)
		require.NoError(t, err)
		assert.Equal(t, want, decodeSlack(t, body).Attachments[0].Color, "severity %q", s)
	}
}

func TestSlackSplitsFieldsTenPerSection(t *testing.T) {
	m := rolledBack()
	m.Fields = nil
	for i := range 23 {
		m.Fields = append(m.Fields, Field{Name: fmt.Sprintf("f%d", i), Value: "v"})
	}
	body, err := Payload(Target{Type: typeSlack}, m)
	require.NoError(t, err)

	var sizes []int
	for _, b := range decodeSlack(t, body).Attachments[0].Blocks.BlockSet {
		if s, ok := b.(*slack.SectionBlock); ok && len(s.Fields) > 0 {
			sizes = append(sizes, len(s.Fields))
		}
	}
	assert.Equal(t, []int{10, 10, 3}, sizes)
	assert.Equal(t, "*f22*\nv", slackFieldTexts(decodeSlack(t, body).Attachments[0].Blocks.BlockSet)[22], "fields keep their order")
}

func TestSlackEscapesAndLimits(t *testing.T) {
	m := Message{
		Severity: SeverityWarn,
		Headline: "a < b & " + strings.Repeat("h", 200),
		Text:     "<!channel> & " + strings.Repeat("&", 3000),
		Fields:   []Field{{Name: "<@U123>", Value: ""}},
	}
	body, err := Payload(Target{Type: typeSlack}, m)
	require.NoError(t, err)
	msg := decodeSlack(t, body)
	blocks := msg.Attachments[0].Blocks.BlockSet
	require.Len(t, blocks, 3, "no context without namespace, canary, reason or time")

	header := blocks[0].(*slack.HeaderBlock).Text.Text
	assert.True(t, strings.HasPrefix(header, "a < b & h"), "plain text is not escaped: %q", header)
	assert.Equal(t, slackHeaderMax, utf16Len(header))

	text := blocks[1].(*slack.SectionBlock).Text.Text
	assert.True(t, strings.HasPrefix(text, "&lt;!channel&gt; &amp; &amp;"), "mrkdwn is escaped: %q", text[:30])
	assert.LessOrEqual(t, utf16Len(text), slackTextMax)
	assert.True(t, strings.HasSuffix(text, "&amp;…"), "an entity is never cut: %q", text[len(text)-12:])

	assert.Equal(t, []string{"*&lt;@U123&gt;*\n-"}, slackFieldTexts(blocks), "an empty value shows a dash")
	assert.True(t, strings.HasPrefix(msg.Text, "a &lt; b &amp; h"))
}
