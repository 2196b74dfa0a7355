package analysis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
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

// Render fills a query template, a Go text/template, in either of two syntaxes: fields of
// QueryVars ({{ .Namespace }}, {{ .Variables.key }}) or Flagger's functions ({{ namespace }},
// {{ variables.key }}), so a Flagger MetricTemplate works unchanged. A reference to anything
// else (a field, a function or a templateVariables key) is an error that names it.
//
// No value can change the shape of the query, whatever it holds. The template runs with a
// marker in place of each value; Render then reads the output as the PromQL lexer does, and
// puts each value in with the escaping its place needs:
//   - in a quoted string ("..." or '...'), escaped for that quote;
//   - in the string of a regex matcher (=~ or !~), regexp-quoted first, so that podinfo.v2
//     matches only itself; a value inside a character class ([...]) is not supported, nor
//     are regexes that are function arguments (label_replace), which are plain strings here;
//   - in a raw string (`...`), as it is (regexp-quoted for a matcher), and refused if it holds
//     a backtick;
//   - anywhere else, comments included, only if it is a number without sign, exponent or
//     leading zero (0.99) or a duration (5m, 1h30m), else refused.
//
// A value that is not valid UTF-8 is refused; Kubernetes objects cannot hold one.
//
// Because the template sees markers, not values, template logic cannot look at a value:
// eq, ne, lt, le, gt, ge, len and slice are refused, index takes only .Variables, and an if
// on a value is always true.
func Render(query string, vars QueryVars) (string, error) {
	if strings.Contains(query, markerPrefix) {
		return "", fmt.Errorf("query template contains %q, which is reserved for rendering", markerPrefix)
	}
	trees, err := parseQuery(query)
	if err != nil {
		return "", fmt.Errorf("query template does not parse: %w", err)
	}
	if err := checkRefs(trees, vars.Variables); err != nil {
		return "", err
	}
	vals := newQueryValues(vars)
	tpl := template.New(queryTemplateName).Option("missingkey=error").Funcs(vals.fns)
	for name, tree := range trees {
		if _, err := tpl.AddParseTree(name, tree); err != nil {
			return "", fmt.Errorf("query template does not parse: %w", err)
		}
	}
	var out strings.Builder
	if err := tpl.Execute(&out, vals.fields); err != nil {
		return "", fmt.Errorf("query template does not render: %w", err)
	}
	return vals.place(out.String())
}

const queryTemplateName = "query"

// parseQuery parses a query template without resolving its functions, so that checkRefs can
// name an unknown one in the words of a query template rather than text/template's.
func parseQuery(query string) (map[string]*parse.Tree, error) {
	tree := parse.New(queryTemplateName)
	tree.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := tree.Parse(query, "", "", trees); err != nil {
		return nil, err
	}
	return trees, nil
}

// queryVar is one value of QueryVars, with its names in both syntaxes.
type queryVar struct {
	field string // {{ .Field }}
	fn    string // {{ fn }}, Flagger's name
	get   func(QueryVars) string
}

// queryVarList lists the values of QueryVars but Variables, in the order errors list them.
var queryVarList = []queryVar{
	{"Name", "name", func(v QueryVars) string { return v.Name }},
	{"Namespace", "namespace", func(v QueryVars) string { return v.Namespace }},
	{"Target", "target", func(v QueryVars) string { return v.Target }},
	{"TargetService", "targetService", func(v QueryVars) string { return v.TargetService }},
	{"Service", "service", func(v QueryVars) string { return v.Service }},
	{"Primary", "primary", func(v QueryVars) string { return v.Primary }},
	{"Canary", "canary", func(v QueryVars) string { return v.Canary }},
	{"Interval", "interval", func(v QueryVars) string { return v.Interval }},
	{"Window", "window", func(v QueryVars) string { return v.Window }},
}

const (
	variablesField = "Variables"
	variablesFn    = "variables"
)

// refusedFuncs are the text/template built-ins that would look at a value, which is a marker
// while the template runs, and so would silently give the wrong answer. Render replaces index
// too, with one that refuses a missing key and a value.
var refusedFuncs = []string{"eq", "ne", "lt", "le", "gt", "ge", "len", "slice"}

// queryValues holds the values of one Render and the markers that stand in for them.
type queryValues struct {
	names  []string // the name errors use, by marker index
	values []string // by marker index
	fields map[string]any
	fns    template.FuncMap
}

func newQueryValues(vars QueryVars) *queryValues {
	q := &queryValues{fields: map[string]any{}, fns: template.FuncMap{}}
	for _, v := range queryVarList {
		m := q.add(v.fn, v.get(vars))
		q.fields[v.field] = m
		q.fns[v.fn] = func() string { return m }
	}
	keys := make([]string, 0, len(vars.Variables))
	for k := range vars.Variables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	variables := make(map[string]string, len(keys))
	for _, k := range keys {
		variables[k] = q.add(variablesFn+"."+k, vars.Variables[k])
	}
	q.fields[variablesField] = variables
	q.fns[variablesFn] = func() map[string]string { return variables }
	q.fns["index"] = indexVariables
	for _, name := range refusedFuncs {
		q.fns[name] = func(...any) (any, error) {
			return nil, fmt.Errorf("a query template cannot use %s on a value, because values are filled in after the template runs", name)
		}
	}
	return q
}

// add registers a value and returns its marker.
func (q *queryValues) add(name, value string) string {
	q.names = append(q.names, name)
	q.values = append(q.values, value)
	return marker(len(q.values) - 1)
}

// indexVariables is index for query templates: it looks a key up in .Variables (or in the
// template's data), and unlike text/template's it refuses a missing key, and a value to index,
// which is a marker while the template runs.
func indexVariables(item any, keys ...any) (any, error) {
	for _, k := range keys {
		key, isString := k.(string)
		var found bool
		switch m := item.(type) {
		case map[string]string:
			item, found = m[key]
		case map[string]any:
			item, found = m[key]
		default:
			isString = false
		}
		if !isString {
			return nil, errors.New("a query template can index only .Variables, by a string key")
		}
		if !found {
			return nil, fmt.Errorf("templateVariables has no key %q", key)
		}
	}
	return item, nil
}
