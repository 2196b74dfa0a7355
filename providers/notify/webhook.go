package notify

import (
	"time"
)

// webhookMessage is the generic webhook body: the Message as plain JSON, with fields as an
// object so a receiver can read one by name (`.fields.Phase`).
type webhookMessage struct {
	Canary    string            `json:"canary"`
	Namespace string            `json:"namespace"`
	Severity  Severity          `json:"severity"`
	Reason    string            `json:"reason"`
	Headline  string            `json:"headline"`
	Text      string            `json:"text"`
	Fields    map[string]string `json:"fields"`
	Time      *time.Time        `json:"time,omitempty"`
}

// webhookPayload formats m for a receiver of our own choosing; nothing is truncated. When two
// fields share a name the first is kept, as the `field` template function does.
func webhookPayload(_ Target, m Message) ([]byte, error) {
	w := webhookMessage{
		Canary:    m.Canary,
		Namespace: m.Namespace,
		Severity:  m.Severity,
		Reason:    m.Reason,
		Headline:  m.headline(),
		Text:      m.Text,
		Fields:    make(map[string]string, len(m.Fields)),
	}
	for _, f := range m.Fields {
		if _, ok := w.Fields[f.Name]; !ok {
			w.Fields[f.Name] = f.Value
		}
	}
	if !m.Time.IsZero() {
		ts := m.Time.UTC()
		w.Time = &ts
	}
	return marshal(w)
}
