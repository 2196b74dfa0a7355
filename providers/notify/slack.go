package notify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Slack's Block Kit limits, in characters.
const (
	slackHeaderMax        = 150
	slackTextMax          = 3000
	slackFieldMax         = 2000
	slackFieldsPerSection = 10
)

// slackPayload formats m as an incoming-webhook message: the headline as the notification
// text, and one attachment, coloured by severity, holding a header, the text, the fields
// (ten per section, Slack's limit) and a context line naming the Canary and the time.
func slackPayload(t Target, m Message) ([]byte, error) {
	headline := m.headline()
	blocks := []slack.Block{
		// plain_text is shown as written, so it is not escaped; only its length is limited.
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(headline, slackHeaderMax), false, false)),
	}
	if strings.TrimSpace(m.Text) != "" {
		blocks = append(blocks, slack.NewSectionBlock(slackMrkdwn(slackEscape(m.Text, slackTextMax)), nil, nil))
	}
	for chunk := range slices.Chunk(m.Fields, slackFieldsPerSection) {
		fields := make([]*slack.TextBlockObject, 0, len(chunk))
		for _, f := range chunk {
			name := slackEscape(f.Name, slackFieldMax/2)
			value := slackEscape(cmp.Or(f.Value, "-"), slackFieldMax-len("**\n")-utf16Len(name))
			fields = append(fields, slackMrkdwn("*"+name+"*\n"+value))
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	if c := slackContext(m); c != "" {
		blocks = append(blocks, slack.NewContextBlock("", slackMrkdwn(c)))
	}

	msg := slack.WebhookMessage{
		Channel:  t.Channel,
		Username: t.Username,
		Text:     slackEscape(headline, slackTextMax),
		Attachments: []slack.Attachment{{
			Color:    fmt.Sprintf("#%06x", colour(m.Severity).rgb),
			Fallback: slackEscape(headline, slackTextMax),
			Blocks:   slack.Blocks{BlockSet: blocks},
		}},
	}
	return marshal(msg)
}

// slackMrkdwn is a mrkdwn text object.
func slackMrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// slackContext is the context line: the Canary, its reason and the time, shown in the
// reader's own time zone by Slack's date formatting.
func slackContext(m Message) string {
	var parts []string
	if o := m.object(); o != "" {
		parts = append(parts, "`"+slackEscape(o, slackTextMax/4)+"`")
	}
	if m.Reason != "" {
		parts = append(parts, slackEscape(m.Reason, slackTextMax/4))
	}
	if !m.Time.IsZero() {
		parts = append(parts, fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>",
			m.Time.Unix(), m.Time.UTC().Format(time.RFC3339)))
	}
	return strings.Join(parts, " · ")
}

// slackEscaper escapes the three characters Slack treats as control characters in text.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackEscape escapes s for Slack and truncates it to limit characters of escaped text,
// never inside an entity.
func slackEscape(s string, limit int) string {
	escaped := slackEscaper.Replace(s)
	if utf16Len(escaped) <= limit {
		return escaped
	}
	budget := limit - utf16Len(ellipsis)
	var b strings.Builder
	n := 0
	for _, r := range s {
		piece := slackEscaper.Replace(string(r))
		w := utf16Len(piece)
		if n+w > budget {
			break
		}
		b.WriteString(piece)
		n += w
	}
	return b.String() + ellipsis
}
