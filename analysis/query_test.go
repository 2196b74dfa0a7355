package analysis

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// The app set's values render to Flagger's queries, with the pod pattern that keeps the
// primary's pods out.
func TestRenderBuiltins(t *testing.T) {
	vars := QueryVars{Namespace: "shop", Target: "podinfo", Interval: Window(30 * time.Second)}
	q, ok := Builtin(v1alpha1.MetricSetApp, BuiltinRequestSuccessRate, 0)
	require.True(t, ok)
	out, err := Render(q.Value, vars)
	require.NoError(t, err)
	assert.Equal(t, `100 * (1 - (sum(rate(http_requests_total{namespace="shop",pod=~"podinfo-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code=~"5.."}[30s])) or vector(0)) / sum(rate(http_requests_total{namespace="shop",pod=~"podinfo-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[30s])))`, out)

	q, ok = Builtin(v1alpha1.MetricSetApp, BuiltinRequestDuration, 0)
	require.True(t, ok)
	out, err = Render(q.Value, vars)
	require.NoError(t, err)
	assert.Equal(t, `1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",pod=~"podinfo-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[30s])))`, out)

	_, ok = Builtin(v1alpha1.MetricSetApp, "latency", 0)
	assert.False(t, ok)
}

// renderVars has a distinct value for every variable, so a test sees which one was filled in.
func renderVars() QueryVars {
	return QueryVars{
		Name: "podinfo", Namespace: "shop", Target: "podinfo", TargetService: "podinfo-canary",
		Service: "podinfo", Primary: "podinfo-primary", Canary: "podinfo-canary",
		Interval: "1m", Window: "5m30s",
		Variables: map[string]string{"q": "0.99", "route": "/api", "my-key": "v"},
	}
}

func TestRenderSyntaxes(t *testing.T) {
	tests := []struct {
		dot, flagger, want string
	}{
		{"{{ .Name }}", "{{ name }}", "podinfo"},
		{"{{ .Namespace }}", "{{ namespace }}", "shop"},
		{"{{ .Target }}", "{{ target }}", "podinfo"},
		{"{{ .TargetService }}", "{{ targetService }}", "podinfo-canary"},
		{"{{ .Service }}", "{{ service }}", "podinfo"},
		{"{{ .Primary }}", "{{ primary }}", "podinfo-primary"},
		{"{{ .Canary }}", "{{ canary }}", "podinfo-canary"},
		{"{{ .Interval }}", "{{ interval }}", "1m"},
		{"{{ .Window }}", "{{ window }}", "5m30s"},
		{"{{ .Variables.route }}", "{{ variables.route }}", "/api"},
		{`{{ index .Variables "my-key" }}`, `{{ index variables "my-key" }}`, "v"},
		{"{{ $.Namespace }}", "{{ with .Variables }}{{ namespace }}{{ end }}", "shop"},
	}
	for _, tt := range tests {
		t.Run(tt.flagger, func(t *testing.T) {
			for _, tpl := range []string{tt.dot, tt.flagger} {
				out, err := Render(`up{a="`+tpl+`"}`, renderVars())
				require.NoError(t, err, tpl)
				assert.Equal(t, `up{a="`+tt.want+`"}`, out, tpl)
			}
		})
	}
}

// TestRenderFlaggerTemplate renders a MetricTemplate from Flagger's documentation unchanged.
func TestRenderFlaggerTemplate(t *testing.T) {
	q := `sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",envoy_response_code!~"5.*"}[{{ interval }}]))
/
sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100`
	out, err := Render(q, renderVars())
	require.NoError(t, err)
	assert.Equal(t, `sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",envoy_response_code!~"5.*"}[1m]))
/
sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[1m])) * 100`, out)
}

func TestRenderEscapesValues(t *testing.T) {
	tests := []struct {
		name  string
		query string
		value string // the namespace, and templateVariable v
		want  string
	}{
		{"a value cannot close its string", `up{namespace="{{ .Namespace }}"}`, `x"} or vector(1) or up{a="`, `up{namespace="x\"} or vector(1) or up{a=\""}`},
		{"backslashes and line breaks", `up{namespace="{{ namespace }}"}`, "a\\b\nc\rd\te", `up{namespace="a\\b\nc\rd\te"}`},
		{"characters that do not print", `up{namespace="{{ namespace }}"}`, "a\x00b\u200bc\U000e0001\ufffd", `up{namespace="a\u0000b\u200bc\U000e0001\ufffd"}`},
		{"unicode that prints is kept", `up{namespace="{{ namespace }}"}`, "café-日本", `up{namespace="café-日本"}`},
		{"single quotes escape their own quote", `up{namespace='{{ namespace }}'}`, `it's "x"`, `up{namespace='it\'s "x"'}`},
		{"a raw string holds the value as it is", "up{namespace=`{{ namespace }}`}", `a\"b'`, "up{namespace=`a\\\"b'`}"},
		{"a regex matcher matches the value literally", `up{pod=~"{{ target }}-[0-9a-z]+"}`, `podinfo.v2`, `up{pod=~"podinfo\\.v2-[0-9a-z]+"}`},
		{"regex metacharacters", `up{pod=~"{{ variables.v }}"}`, `a.*|b(c)\`, `up{pod=~"a\\.\\*\\|b\\(c\\)\\\\"}`},
		{"a negative regex matcher, spaced", `up{pod !~  "{{ .Variables.v }}"}`, `a.b`, `up{pod !~  "a\\.b"}`},
		{"a regex matcher after a comment", "up{pod=~ # pods\n\"{{ target }}\"}", `a.b`, "up{pod=~ # pods\n\"a\\\\.b\"}"},
		{"a regex matcher in a raw string", "up{pod=~`{{ target }}`}", `a.b`, "up{pod=~`a\\.b`}"},
		{"an equality matcher is not a regex", `up{pod="{{ target }}",x=~"y"}`, `a.b`, `up{pod="a.b",x=~"y"}`},
		{"quotes in a comment open no string", "up # it's {{ variables.v }}\n", "5m", "up # it's 5m\n"},
		{"an escaped quote does not end the string", `up{a="\"{{ target }}"}`, `"`, `up{a="\"\""}`},
		{"an escaped backslash ends its escape", `up{a="\\{{ target }}"}`, `"`, `up{a="\\\""}`},
		{"a number outside strings", `histogram_quantile({{ variables.v }}, x)`, "0.95", `histogram_quantile(0.95, x)`},
		{"a duration outside strings", `rate(x[{{ variables.v }}])`, "1h30m", `rate(x[1h30m])`},
		{"printf %q quotes a value in the template", `up{a={{ printf "%q" .Namespace }}}`, `x"y`, `up{a="x\"y"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := QueryVars{Namespace: tt.value, Target: tt.value, Variables: map[string]string{"v": tt.value}}
			out, err := Render(tt.query, vars)
			require.NoError(t, err)
			assert.Equal(t, tt.want, out)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	long := strings.Repeat("a", 200) + ") or vector(1"
	tests := []struct {
		name  string
		query string
		value string // the namespace, and templateVariable v
		want  string
	}{
		{"does not parse", `up{namespace="{{ .Namespace }"}`, "", "query template does not parse: "},
		{"unknown field", `up{x="{{ .Nope }}"}`, "", `query template references unknown variable ".Nope" (known: .Name, .Namespace, .Target, .TargetService, .Service, .Primary, .Canary, .Interval, .Window, .Variables.<key>; templateVariables: v)`},
		{"unknown function", `up{x="{{ ingress }}"}`, "", `query template references unknown variable "ingress" (known: name, namespace, target, targetService, service, primary, canary, interval, window, variables.<key>; templateVariables: v)`},
		{"unknown function in a pipeline", `up{x="{{ .Name | lower }}"}`, "", `unknown variable "lower"`},
		{"unknown key, Flagger's syntax", `up{x="{{ variables.foo }}"}`, "", `query template references unknown variable "variables.foo" (known: name,`},
		{"unknown key, dot syntax", `up{x="{{ .Variables.foo }}"}`, "", `unknown variable ".Variables.foo" (known: .Name,`},
		{"unknown key through index", `up{x="{{ index .Variables "foo" }}"}`, "", `unknown variable ".Variables.foo"`},
		{"unknown field through $", `{{ with .Variables }}{{ $.Nope }}{{ end }}`, "", `unknown variable ".Nope"`},
		{"unknown key found when the template runs", `{{ with .Variables }}{{ .foo }}{{ end }}`, "", `query template does not render: `},
		{"index on a value", `up{x="{{ index .Name 0 }}"}`, "", `a query template can index only .Variables, by a string key`},
		{"a key missing when the template runs", `{{ $k := "nope" }}up{x="{{ index .Variables $k }}"}`, "", `templateVariables has no key "nope"`},
		{"the marker prefix is reserved", `up{x="__trafficctl_value_0__"}`, "", `query template contains "__trafficctl_value_", which is reserved for rendering`},
		{"template logic cannot compare values", `{{ if eq .Namespace "shop" }}up{{ end }}`, "shop", `a query template cannot use eq on a value, because values are filled in after the template runs`},
		{"template logic cannot cut values", `up{x="{{ slice .Namespace 1 }}"}`, "shop", `cannot use slice on a value`},
		{"a value changed before it is placed", `up{x="{{ printf "%.20s" .Namespace }}"}`, "shop", `query template changes a value before placing it (with printf, for example), so it cannot be escaped`},
		{"a value outside strings must be a number or a duration", `histogram_quantile({{ variables.v }}, x)`, "1) or vector(1", `variable "variables.v" is placed outside a quoted string in the query, so its value must be a number or a duration, such as 0.99 or 5m; got "1) or vector(1"`},
		{"a name outside strings", `up{ {{ namespace }}="x"}`, "shop", `variable "namespace" is placed outside a quoted string`},
		{"a long value is cut in the message", `x[{{ variables.v }}]`, long, `got "` + strings.Repeat("a", 64) + `"... (213 bytes)`},
		{"an integer with a leading zero would be octal", `vector({{ variables.v }})`, "0777", `got "0777"`},
		{"a number that overflows", `vector({{ variables.v }})`, "1" + strings.Repeat("0", 400), `must be a number or a duration`},
		{"a duration with its units out of order", `x[{{ variables.v }}]`, "5m1h", `got "5m1h"`},
		{"a value in a comment could end it", "up # {{ namespace }}", "x\nor vector(1)", `variable "namespace" is placed outside a quoted string`},
		{"a backtick in a raw string", "up{x=`{{ namespace }}`}", "a`b", "variable \"namespace\" is placed in a raw string (`...`) in the query, so its value cannot hold a backtick or U+FFFD; got \"a`b\""},
		{"a value after a backslash", `up{x="\{{ namespace }}"}`, `"`, `query template places "namespace" inside an escape sequence (just after a backslash), where it cannot be escaped`},
		{"a value in an escape's digits", `up{x="\x4{{ namespace }}"}`, `1`, `places "namespace" inside an escape sequence`},
		{"invalid UTF-8", `up{x="{{ namespace }}"}`, "a\xffb", `variable "namespace" is not valid UTF-8: "a\xffb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := QueryVars{Namespace: tt.value, Variables: map[string]string{"v": tt.value}}
			_, err := Render(tt.query, vars)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRenderWithoutTemplateVariables(t *testing.T) {
	_, err := Render(`up{x="{{ variables.a }}"}`, QueryVars{})
	assert.ErrorContains(t, err, `unknown variable "variables.a" (known: name, namespace, target, targetService, service, primary, canary, interval, window, variables.<key>; templateVariables: none)`)
}
