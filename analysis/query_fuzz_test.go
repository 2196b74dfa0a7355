package analysis

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// benign stands for the fuzzed value in the rendering every other is compared with. It holds
// no character any escaping touches, and no template below holds it.
const benign = "benign"

// shapeCase is a query template and the variables it is rendered with: the fuzzed value in
// some of them, fixed values in the others.
type shapeCase struct {
	name  string
	query string
	// vars returns the variables, with v in the fuzzed places.
	vars func(v string) QueryVars
	// outside is the fuzzed value's benign form when it is placed outside strings, where Render
	// takes only numbers and durations; "" when it is placed only in strings.
	outside string
	// raw reports that the value is placed in a raw string, which refuses a backtick and U+FFFD.
	raw bool
	// samples give, for a regex matcher whose regex is more than the value, a string it must
	// match, with benign standing for the value.
	samples map[string]string
}

func everyName(v string) QueryVars {
	return QueryVars{
		Name: v, Namespace: v, Target: v, TargetService: v, Service: v, Primary: v, Canary: v,
		Interval: "1m", Window: "5m", Variables: map[string]string{"v": v, "q": "0.99"},
	}
}

var shapeCases = []shapeCase{
	{
		name:  "equality matchers, dot syntax",
		query: `sum(rate(http_requests_total{namespace="{{ .Namespace }}",pod!="{{ .Target }}",route="/{{ .Variables.v }}/x"}[{{ .Interval }}]))`,
		vars:  everyName,
	},
	{
		name:    "regex matchers around the value, as the built-in checks have",
		query:   `100 * (1 - (sum(rate(http_requests_total{namespace="{{ .Namespace }}",pod=~"{{ .Target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",code=~"5.."}[{{ .Interval }}])) or vector(0)) / sum(rate(http_requests_total{namespace="{{ .Namespace }}",pod=~"{{ .Target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ .Interval }}])))`,
		vars:    everyName,
		samples: map[string]string{"pod": benign + "-7d4b9c-x2x7k"},
	},
	{
		name:    "regex matchers, Flagger syntax",
		query:   `sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}",envoy_response_code !~ "{{ variables.v }}-x"}[{{ interval }}])) / sum(increase(envoy_cluster_upstream_rq{app=~"{{ name }}|{{ primary }}"}[{{ window }}]))`,
		vars:    everyName,
		samples: map[string]string{"app": benign}, // either alternative: both are the value
	},
	{
		name:  "every Flagger variable",
		query: `sum(x{a="{{ name }}",b="{{ namespace }}",c="{{ target }}",d="{{ targetService }}",e="{{ service }}",f="{{ primary }}",g="{{ canary }}",h="{{ variables.v }}"}) by (pod)`,
		vars:  everyName,
	},
	{
		name:  "single quotes",
		query: `up{namespace='{{ namespace }}',pod=~'{{ target }}'} or on(pod) up{service!~'{{ service }}'}`,
		vars:  everyName,
	},
	{
		name:  "raw strings",
		query: "up{namespace=`{{ namespace }}`,pod=~`{{ target }}`,x!=`a{{ variables.v }}b`}",
		vars:  everyName,
		raw:   true,
	},
	{
		name:  "strings that are arguments",
		query: `label_replace(up{namespace="{{ namespace }}"}, "dst", "{{ variables.v }}", "src", "(.*)")`,
		vars:  everyName,
	},
	{
		name:  "a number as a function's argument",
		query: `histogram_quantile({{ variables.q }}, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}"}[{{ interval }}])))`,
		vars: func(v string) QueryVars {
			return QueryVars{Namespace: "shop", Interval: "1m", Variables: map[string]string{"q": v}}
		},
		outside: "0.99",
	},
	{
		name:    "a duration as a range",
		query:   `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}"}[{{ interval }}])))`,
		vars:    func(v string) QueryVars { return QueryVars{Namespace: "shop", Interval: v} },
		outside: "30s",
	},
	{
		name:    "a value in a comment",
		query:   "up{namespace=\"{{ namespace }}\"} # {{ variables.v }}\n+ on() vector(1)",
		vars:    func(v string) QueryVars { return QueryVars{Namespace: "shop", Variables: map[string]string{"v": v}} },
		outside: "5m",
	},
}

// nastyValues seed the fuzzer; testdata/fuzz/FuzzRenderKeepsShape holds more.
var nastyValues = []string{
	"", benign, "podinfo", "podinfo.v2", "0.99", "5m", "1h30m", "0", "0777",
	`"`, `'`, "`", `\`, `\"`, `\\"`, `"} or vector(1) or up{a="`, `'} or vector(1) or up{a='`,
	"`} or vector(1) or up{a=`", "a\nb", "a\rb", "\x00", "\ufffd", "\xff", "café-日本", "\u200b", "\U0001F600",
	".*", ".+|x", "a|b", "[a-z]", "^$", "(?i)A", `\d`, ")", "))) or vector(1", "1) or vector(1", "5m]) or vector(1",
	"# comment", "a # b\n", "{{ .Name }}", "__trafficctl_value_0__", "1e3", "0x10", "-1", "Inf", "NaN",
}

func FuzzRenderKeepsShape(f *testing.F) {
	for _, v := range nastyValues {
		f.Add(v)
	}
	p := parser.NewParser(parser.Options{})
	benigns := make([]benignRendering, len(shapeCases))
	for i, c := range shapeCases {
		benigns[i] = renderBenign(f, p, c)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for i, c := range shapeCases {
			checkShape(t, p, c, benigns[i], v)
		}
	})
}

// benignRendering is a case rendered with its benign value, which the fuzzed ones must match.
type benignRendering struct {
	query  string
	shape  []string
	values []astValue
}

func renderBenign(f *testing.F, p parser.Parser, c shapeCase) benignRendering {
	f.Helper()
	q, err := Render(c.query, c.vars(benignValue(c)))
	if err != nil {
		f.Fatalf("%s: the benign rendering fails: %v", c.name, err)
	}
	expr, err := p.ParseExpr(q)
	if err != nil {
		f.Fatalf("%s: the benign rendering does not parse: %v\n%s", c.name, err, q)
	}
	shape, values := queryShape(expr)
	return benignRendering{query: q, shape: shape, values: values}
}

func checkShape(t *testing.T, p parser.Parser, c shapeCase, want benignRendering, v string) {
	t.Helper()
	got, err := Render(c.query, c.vars(v))
	if err != nil {
		if r := refusal(c, v); r != "" && strings.Contains(err.Error(), r) {
			return
		}
		t.Fatalf("%s: Render(%q) fails: %v", c.name, v, err)
	}
	gotExpr, err := p.ParseExpr(got)
	if err != nil {
		// A number or duration PromQL refuses for its size (a zero range, a duration that
		// overflows) is no change of shape: the tokens are the same but for its value.
		if c.outside != "" && slices.Equal(promTokens(got), promTokens(want.query)) {
			return
		}
		t.Fatalf("%s: with %q the query does not parse: %v\n%s", c.name, v, err, got)
	}
	gotShape, gotVals := queryShape(gotExpr)
	if !slices.Equal(gotShape, want.shape) {
		t.Fatalf("%s: with %q the query changed shape:\n%s\nwant:\n%s\nquery: %s",
			c.name, v, strings.Join(gotShape, "\n"), strings.Join(want.shape, "\n"), got)
	}
	for i := range want.values {
		if err := checkValue(c, v, want.values[i], gotVals[i]); err != nil {
			t.Fatalf("%s: with %q: %v\nquery: %s", c.name, v, err, got)
		}
	}
}

func benignValue(c shapeCase) string {
	if c.outside != "" {
		return c.outside
	}
	return benign
}

// refusal returns the part of Render's error that may refuse v in case c, or "".
func refusal(c shapeCase, v string) string {
	switch {
	case c.outside != "":
		return "is placed outside a quoted string in the query, so its value must be a number or a duration"
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case c.raw && strings.ContainsAny(v, "`\ufffd"):
		return "so its value cannot hold a backtick or U+FFFD"
	}
	return ""
}

// astValue is a value the query's shape leaves open.
type astValue struct {
	label   string // of a matcher
	matcher labels.MatchType
	isRegex bool
	str     string
	num     float64
	dur     time.Duration
}

// queryShape lists the nodes of e, each with its depth and what makes it what it is (its
// function, operator, grouping, label names and matcher types), and the values it holds.
func queryShape(e parser.Expr) ([]string, []astValue) {
	var nodes []string
	var vals []astValue
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		var detail string
		switch n := n.(type) {
		case *parser.VectorSelector:
			detail = n.Name
			for _, m := range n.LabelMatchers {
				detail += fmt.Sprintf(" %s%s", m.Name, m.Type)
				vals = append(vals, astValue{
					label: m.Name, matcher: m.Type, str: m.Value,
					isRegex: m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp,
				})
			}
		case *parser.Call:
			detail = n.Func.Name
		case *parser.AggregateExpr:
			detail = fmt.Sprintf("%s %v without=%v", n.Op, n.Grouping, n.Without)
		case *parser.BinaryExpr:
			detail = fmt.Sprintf("%s bool=%v", n.Op, n.ReturnBool)
			if n.VectorMatching != nil {
				detail += fmt.Sprintf(" %+v", *n.VectorMatching)
			}
		case *parser.UnaryExpr:
			detail = n.Op.String()
		case *parser.StringLiteral:
			vals = append(vals, astValue{str: n.Val})
		case *parser.NumberLiteral:
			vals = append(vals, astValue{num: n.Val})
		case *parser.MatrixSelector:
			vals = append(vals, astValue{dur: n.Range})
		}
		nodes = append(nodes, fmt.Sprintf("%d %T %s", len(path), n, detail))
		return nil
	})
	return nodes, vals
}

// checkValue checks that a value of the query rendered with v is what the benign rendering's
// value, want, says it must be.
func checkValue(c shapeCase, v string, want, got astValue) error {
	switch {
	case c.outside != "":
		if want.num == promSeconds(c.outside) && got.num != promSeconds(v) {
			return fmt.Errorf("the number is %v, not %v", got.num, promSeconds(v))
		}
		if want.dur == promRange(c.outside) && got.dur != promRange(v) {
			return fmt.Errorf("the range is %v, not %v", got.dur, promRange(v))
		}
		if want.num != promSeconds(c.outside) && got.num != want.num || want.dur != promRange(c.outside) && got.dur != want.dur {
			return fmt.Errorf("a value the variable is not in changed: %+v, want %+v", got, want)
		}
		if got.str != want.str {
			return fmt.Errorf("a string the variable is not in changed: %q, want %q", got.str, want.str)
		}
	case !strings.Contains(want.str, benign):
		if got != want {
			return fmt.Errorf("a value the variable is not in changed: %+v, want %+v", got, want)
		}
	case !want.isRegex:
		if exp := strings.ReplaceAll(want.str, benign, v); got.str != exp {
			return fmt.Errorf("%s holds %q, not %q", got.label, got.str, exp)
		}
	default:
		return checkRegex(c, v, want, got)
	}
	return nil
}

// checkRegex checks that a regex matcher matches the value literally: the string it stands in
// and nothing near it, where near is what the benign rendering's regex does not match.
func checkRegex(c shapeCase, v string, want, got astValue) error {
	re, err := regexp.Compile("^(?:" + got.str + ")$")
	if err != nil {
		return fmt.Errorf("%s=~%q does not compile: %w", got.label, got.str, err)
	}
	benignRe := regexp.MustCompile("^(?:" + want.str + ")$")
	sample, ok := c.samples[got.label]
	if !ok {
		sample = want.str // the regex is literal text but for the value
	}
	if s := strings.ReplaceAll(sample, benign, v); !re.MatchString(s) {
		return fmt.Errorf("%s=~%q does not match %q", got.label, got.str, s)
	}
	for _, near := range []func(string) string{
		func(s string) string { return s + "x" },
		func(s string) string { return "x" + s },
		func(string) string { return "" },
		mutateFirst,
	} {
		if near(v) == v || benignRe.MatchString(strings.ReplaceAll(sample, benign, near(benign))) {
			continue // the same string, or one the template's own regex takes
		}
		if s := strings.ReplaceAll(sample, benign, near(v)); re.MatchString(s) {
			return fmt.Errorf("%s=~%q matches %q too", got.label, got.str, s)
		}
	}
	return nil
}

// mutateFirst changes the first character of v.
func mutateFirst(v string) string {
	r, n := utf8.DecodeRuneInString(v)
	if r == 'a' {
		return "b" + v[n:]
	}
	return "a" + v[n:]
}

// promSeconds is a number or duration as PromQL reads it, in seconds.
func promSeconds(v string) float64 {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f
	}
	d, _ := model.ParseDuration(v)
	return time.Duration(d).Seconds()
}

// promRange is a number or duration as PromQL reads it as a range.
func promRange(v string) time.Duration {
	return time.Duration(math.Round(promSeconds(v) * float64(time.Second)))
}

// promTokens lists the PromQL tokens of q, numbers and durations alike.
func promTokens(q string) []string {
	l := parser.Lex(q)
	var out []string
	for {
		var it parser.Item
		l.NextItem(&it)
		switch it.Typ {
		case parser.EOF:
			return out
		case parser.ERROR:
			return append(out, "error "+it.Val)
		case parser.NUMBER, parser.DURATION:
			out = append(out, "number or duration")
		default:
			out = append(out, fmt.Sprintf("%d %s", it.Typ, it.Val))
		}
	}
}
