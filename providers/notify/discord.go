package notify

import (
	"cmp"
	"time"
)

// Discord's embed limits, in characters.
const (
	discordTitleMax       = 256
	discordDescriptionMax = 4096
	discordFieldNameMax   = 256
	discordFieldValueMax  = 1024
	discordFieldsMax      = 25
	discordUsernameMax    = 80
	// discordEmbedMax bounds the title, description and fields of an embed together.
	discordEmbedMax = 6000
)

// discordMessage is the body of a Discord webhook execution, reduced to what an alert uses.
type discordMessage struct {
	Username string         `json:"username,omitempty"`
	Embeds   []discordEmbed `json:"embeds"`
}

// discordEmbed is one rich embed.
type discordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Fields      []discordField `json:"fields,omitempty"`
	Timestamp   string         `json:"timestamp,omitempty"`
}

// discordField is one fact of an embed.
type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// discordPayload formats m as one embed coloured by severity, truncated to Discord's limits
// (which would otherwise reject the whole message): a 256-character title, a 4096-character
// description, 25 fields of 1024-character values, and 6000 characters in all, taken from the
// description last.
func discordPayload(t Target, m Message) ([]byte, error) {
	e := discordEmbed{
		Title: truncate(m.headline(), discordTitleMax),
		Color: colour(m.Severity).rgb,
	}
	if !m.Time.IsZero() {
		e.Timestamp = m.Time.UTC().Format(time.RFC3339)
	}
	used := utf16Len(e.Title)
	for i, f := range m.Fields {
		if i == discordFieldsMax {
			break
		}
		df := discordField{
			Name:   truncate(cmp.Or(f.Name, "-"), discordFieldNameMax),
			Value:  truncate(cmp.Or(f.Value, "-"), discordFieldValueMax),
			Inline: true,
		}
		n := utf16Len(df.Name) + utf16Len(df.Value)
		if used+n > discordEmbedMax {
			break
		}
		e.Fields = append(e.Fields, df)
		used += n
	}
	e.Description = truncate(m.Text, min(discordDescriptionMax, discordEmbedMax-used))
	return marshal(discordMessage{
		Username: truncate(t.Username, discordUsernameMax),
		Embeds:   []discordEmbed{e},
	})
}
