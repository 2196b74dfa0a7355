package notify

import (
	"strings"
	"time"
	"unicode/utf16"
)

// Severity says how much a message matters, so an alert can ask for rollbacks only and stay
// quiet on every step: a Canary alert with severity S receives messages of S and above.
type Severity string

const (
	// SeverityInfo marks progress nobody has to act on, such as a step advancing.
	SeverityInfo Severity = "info"
	// SeverityWarn marks something worth a look that did not stop the rollout, such as a
	// failed check still within its threshold.
	SeverityWarn Severity = "warn"
	// SeverityError marks a rollout that failed or was rolled back.
	SeverityError Severity = "error"
)

// Rank orders severities so a filter can compare them (info 0, warn 1, error 2); an unknown
// severity ranks -1, below everything, so a typo never pages anyone.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 0
	case SeverityWarn:
		return 1
	case SeverityError:
		return 2
	default:
		return -1
	}
}

// Field is one labelled fact shown in the message (Phase, Revision, Image, Weight, Failing
// check, Value, Bound, Duration ...); providers lay fields out as a table, so a reader finds the
// failing check without reading the whole text.
type Field struct {
	Name  string
	Value string
}

// Message is what happened to one Canary, ready to be formatted for any provider; the
// controller builds it once and every alert of the Canary formats the same facts.
type Message struct {
	// Canary is the Canary's name.
	Canary string
	// Namespace is the Canary's namespace.
	Namespace string
	// Severity decides the colour and which alerts receive the message.
	Severity Severity
	// Reason is the machine reason, e.g. RolledBack, Succeeded, StepAdvanced.
	Reason string
	// Headline is one line, e.g. "shop/podinfo rolled back".
	Headline string
	// Text is the full explanation (the event message).
	Text string
	// Fields are the facts shown as a table, in order.
	Fields []Field
	// Time is when it happened; the zero time is left out of the message.
	Time time.Time
}

// field returns the value of the first field called name, or "" when there is none.
func (m Message) field(name string) string {
	for _, f := range m.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// object is "namespace/canary", the name readers search for.
func (m Message) object() string {
	switch {
	case m.Namespace == "":
		return m.Canary
	case m.Canary == "":
		return m.Namespace
	default:
		return m.Namespace + "/" + m.Canary
	}
}

// headline is the headline to show: every provider needs a non-empty title.
func (m Message) headline() string {
	if h := strings.TrimSpace(m.Headline); h != "" {
		return h
	}
	h := strings.TrimSpace(m.object() + " " + m.Reason)
	if h == "" {
		return "trafficctl"
	}
	return h
}

// palette is the colour of each severity: Slack and Discord use the RGB value, Teams names a
// colour of its theme.
type palette struct {
	rgb   int
	teams string
}

var palettes = map[Severity]palette{
	SeverityInfo:  {rgb: 0x2eb886, teams: "good"},
	SeverityWarn:  {rgb: 0xdaa038, teams: "warning"},
	SeverityError: {rgb: 0xa30200, teams: "attention"},
}

// colour returns the palette of s; an unknown severity looks like info.
func colour(s Severity) palette {
	if p, ok := palettes[s]; ok {
		return p
	}
	return palettes[SeverityInfo]
}

// ellipsis ends a truncated text so the reader knows there was more.
const ellipsis = "…"

// truncate shortens s to at most limit characters, cutting between runes and ending with an
// ellipsis. Characters are counted in UTF-16 code units, as Discord and Slack count them, so a
// rune outside the Basic Multilingual Plane (most emoji) counts two; that count is never below
// the rune count, so the result fits a limit counted either way.
func truncate(s string, limit int) string {
	if limit <= 0 {
		return ""
	}
	if utf16Len(s) <= limit {
		return s
	}
	budget := limit - utf16Len(ellipsis)
	var b strings.Builder
	n := 0
	for _, r := range s {
		w := utf16.RuneLen(r)
		if n+w > budget {
			break
		}
		b.WriteRune(r)
		n += w
	}
	return b.String() + ellipsis
}

// utf16Len counts s in UTF-16 code units. Ranging over a string yields valid runes only
// (invalid bytes become U+FFFD), so every rune counts one or two.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
