package notify

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/atc0005/go-teams-notify/v2/adaptivecard"
)

// teamsCardVersion is the Adaptive Card version Teams renders from a Workflows webhook.
const teamsCardVersion = "1.4"

// teamsPayload formats m for a Teams Workflows (Power Automate) webhook: a message with one
// Adaptive Card holding the headline coloured by severity, the text, and the fields as facts.
// The card is built with go-teams-notify's adaptivecard types and checked by its validation,
// so a card Teams would reject fails here, where the error can name the cause.
func teamsPayload(_ Target, m Message) ([]byte, error) {
	card := adaptivecard.Card{
		Type:    adaptivecard.TypeAdaptiveCard,
		Schema:  adaptivecard.AdaptiveCardSchema,
		Version: teamsCardVersion,
		Body: []adaptivecard.Element{{
			Type:   adaptivecard.TypeElementTextBlock,
			Text:   m.headline(),
			Weight: adaptivecard.WeightBolder,
			Size:   adaptivecard.SizeMedium,
			Color:  colour(m.Severity).teams,
			Wrap:   true,
		}},
	}
	if strings.TrimSpace(m.Text) != "" {
		card.Body = append(card.Body, adaptivecard.NewTextBlock(m.Text, true))
	}
	if len(m.Fields) > 0 {
		facts := adaptivecard.NewFactSet()
		for _, f := range m.Fields {
			facts.Facts = append(facts.Facts, adaptivecard.Fact{Title: cmp.Or(f.Name, "-"), Value: cmp.Or(f.Value, "-")})
		}
		card.Body = append(card.Body, adaptivecard.Element(facts))
	}
	msg := adaptivecard.NewMessage()
	if err := msg.Attach(card); err != nil {
		return nil, err
	}
	if err := msg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid adaptive card: %w", err)
	}
	return marshal(msg)
}
