package analysis

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
)

// The built-in checks a Canary may name without a MetricTemplate.
const (
	BuiltinRequestSuccessRate = "request-success-rate"
	BuiltinRequestDuration    = "request-duration"
)

// QueryVars are the values a query is rendered with, for one Canary, one side (the canary or
// the primary) and one window.
type QueryVars struct {
	Name      string // the Canary
	Namespace string
	// Target is the Deployment measured: the canary's (the target), or the primary's when a
	// judge compares the two.
	Target string
	// TargetService is the Service in front of Target: <service>-canary or <service>-primary.
	TargetService string
	Service       string // the apex Service
	Primary       string // the primary Deployment
	Canary        string // the canary Deployment (the target)
	// Interval is the lookback of a rate, as PromQL writes a duration (30s, 1m): the metric's
	// interval, never reaching back before the step began; for a mann-whitney series, its step.
	Interval string
	// Window is the whole time since the step's weights took effect, for counting its requests.
	Window string
	// Variables are the metric's templateVariables.
	Variables map[string]string
}

// Window renders a window length as a PromQL duration, whole seconds, at least 1s.
func Window(d time.Duration) string {
	if d < time.Second {
		d = time.Second
	}
	return model.Duration(d.Truncate(time.Second)).String()
}

// The built-in queries read the application's own metrics, which every pod exposes and a
// kubernetes-pods scrape labels with namespace and pod. A Deployment's pods are named
// <deployment>-<replicaset hash>-<pod hash>, so the pod pattern selects the canary's pods and
// never the primary's (<deployment>-primary-<hash>-<hash> has one segment more).
const (
	successRateQuery = `100 * (1 - (sum(rate(http_requests_total{namespace="{{ .Namespace }}",pod=~"{{ .Target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",code=~"5.."}[{{ .Interval }}])) or vector(0)) / sum(rate(http_requests_total{namespace="{{ .Namespace }}",pod=~"{{ .Target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ .Interval }}])))`
	durationQuery    = `1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ .Namespace }}",pod=~"{{ .Target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ .Interval }}])))`
)

// BuiltinQuery returns the query template of a built-in check, and false for any other name.
func BuiltinQuery(name string) (string, bool) {
	switch name {
	case BuiltinRequestSuccessRate:
		return successRateQuery, true
	case BuiltinRequestDuration:
		return durationQuery, true
	}
	return "", false
}

// Render fills a query template. Every value is escaped for a PromQL double-quoted string, so
// a name can never change the shape of the query; Kubernetes names need no escaping, and
// the escaping keeps it that way if one ever does.
func Render(query string, vars QueryVars) (string, error) {
	tpl, err := template.New("query").Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("query template does not parse: %w", err)
	}
	escaped := QueryVars{
		Name:      escapeLabelValue(vars.Name),
		Namespace: escapeLabelValue(vars.Namespace),
		Target:    escapeLabelValue(vars.Target),
		Service:   escapeLabelValue(vars.Service),
		Primary:   escapeLabelValue(vars.Primary),
		Canary:    escapeLabelValue(vars.Canary),
		Interval:  vars.Interval,
		Window:    vars.Window,
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, escaped); err != nil {
		return "", fmt.Errorf("query template does not render: %w", err)
	}
	return out.String(), nil
}

func escapeLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
