package notify

import (
	"fmt"
	"strings"
	"text/template"
)

// templates are a Target's parsed HeadlineTemplate and TextTemplate; a nil one keeps the
// message's own Headline or Text.
type templates struct {
	headline, text *template.Template
}

// parseTemplates parses t's templates and renders them once over an empty Message, so a field
// that Message does not have (a typo such as {{ .Cannary }}) is reported by New instead of at
// the first alert. The errors are the parser's, which quote the template and never a secret.
func parseTemplates(t Target) (templates, error) {
	var ts templates
	var err error
	if ts.headline, err = parseTemplate("headline", t.HeadlineTemplate); err != nil {
		return templates{}, err
	}
	if ts.text, err = parseTemplate("text", t.TextTemplate); err != nil {
		return templates{}, err
	}
	if _, err := ts.apply(Message{}); err != nil {
		return templates{}, err
	}
	return ts, nil
}

// parseTemplate parses one template; an empty or blank source means no template.
func parseTemplate(name, src string) (*template.Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	// The "field" placeholder lets the parser accept calls to it; execute binds it to the
	// message being rendered.
	tmpl, err := template.New(name).Funcs(template.FuncMap{"field": Message{}.field}).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s template does not parse: %w", name, err)
	}
	return tmpl, nil
}

// apply returns m with Headline and Text replaced by the rendered templates. Both render over
// the message as given, so a text template's {{ .Headline }} is the original headline.
func (ts templates) apply(m Message) (Message, error) {
	out := m
	if ts.headline != nil {
		h, err := execute(ts.headline, m)
		if err != nil {
			return Message{}, err
		}
		// A headline is one line: a YAML block scalar leaves a trailing newline.
		out.Headline = strings.Join(strings.Fields(h), " ")
	}
	if ts.text != nil {
		s, err := execute(ts.text, m)
		if err != nil {
			return Message{}, err
		}
		out.Text = strings.TrimSpace(s)
	}
	return out, nil
}

// execute renders tmpl over m. It clones tmpl to bind "field" to m, so one Notifier can render
// messages concurrently.
func execute(tmpl *template.Template, m Message) (string, error) {
	c, err := tmpl.Clone()
	if err != nil {
		return "", fmt.Errorf("%s template: %w", tmpl.Name(), err)
	}
	var b strings.Builder
	if err := c.Funcs(template.FuncMap{"field": m.field}).Execute(&b, m); err != nil {
		return "", fmt.Errorf("%s template does not render: %w", tmpl.Name(), err)
	}
	return b.String(), nil
}
