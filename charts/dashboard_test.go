package charts_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exported is every series the dashboard may query, with its labels: what the controller and
// controller-runtime export. A query of any other series, or by any other label, shows nothing.
var exported = map[string][]string{
	"trafficctl_canary_phase":                          {"namespace", "name", "phase"},
	"trafficctl_canary_weight":                         {"namespace", "name"},
	"trafficctl_canary_failed_checks":                  {"namespace", "name"},
	"trafficctl_canary_check_value":                    {"namespace", "name", "metric"},
	"trafficctl_rollout_duration_seconds_bucket":       {"result", "le"},
	"trafficctl_rollouts_total":                        {"namespace", "name", "result", "reason"},
	"trafficctl_notifications_total":                   {"kind", "provider", "outcome"},
	"trafficctl_reconcile_lateness_seconds_bucket":     {"le"},
	"controller_runtime_reconcile_time_seconds_bucket": {"controller", "le"},
	"workqueue_depth":                                  {"name", "controller"},
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job", "pod"}

// panelQueries is each panel the dashboard must have, by title, and the series it shows.
var panelQueries = map[string]string{
	"Canaries by phase":                    "trafficctl_canary_phase",
	"Canary weight":                        "trafficctl_canary_weight",
	"Failed checks":                        "trafficctl_canary_failed_checks",
	"Check values":                         "trafficctl_canary_check_value",
	"Rollout duration p50 / p95 by result": "trafficctl_rollout_duration_seconds_bucket",
	"Promotions vs rollbacks by reason":    "trafficctl_rollouts_total",
	"Alert delivery failures":              "trafficctl_notifications_total",
	"Reconcile latency p99":                "controller_runtime_reconcile_time_seconds_bucket",
	"Queue depth":                          "workqueue_depth",
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int            `json:"id"`
		Title      string         `json:"title"`
		Type       string         `json:"type"`
		Datasource *datasourceRef `json:"datasource"`
		GridPos    struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			RefID      string         `json:"refId"`
			Expr       string         `json:"expr"`
			Datasource *datasourceRef `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

var promDatasource = &datasourceRef{Type: "prometheus", UID: "${datasource}"}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "trafficctl.json"))
	require.NoError(t, err)
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	require.NoError(t, dec.Decode(&d), "the dashboard is JSON")
	return d
}

func TestDashboardIsGrafanaJSON(t *testing.T) {
	d := loadDashboard(t)
	assert.Equal(t, "trafficctl", d.UID)
	assert.NotEmpty(t, d.Title)
	assert.GreaterOrEqual(t, d.SchemaVersion, 36, "a dashboard Grafana 9 and later read as is")

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		switch v.Type {
		case "datasource":
			assert.JSONEq(t, `"prometheus"`, string(v.Query), "variable %s picks a Prometheus", v.Name)
		case "query":
			assert.Equal(t, promDatasource, v.Datasource, "variable %s", v.Name)
			checkQuery(t, labelValuesSelector(t, v.Definition))
		}
	}
	assert.Equal(t, map[string]string{"datasource": "datasource", "namespace": "query", "canary": "query"}, vars)

	ids := map[int]bool{}
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d is unique", p.ID)
		ids[p.ID] = true
		assert.Equal(t, promDatasource, p.Datasource, "panel %q", p.Title)
		assert.Positive(t, p.GridPos.W, "panel %q has a place", p.Title)
		assert.Positive(t, p.GridPos.H, "panel %q has a place", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
		refs := map[string]bool{}
		for _, target := range p.Targets {
			assert.Equal(t, promDatasource, target.Datasource, "panel %q", p.Title)
			assert.False(t, refs[target.RefID], "panel %q: refId %s is unique", p.Title, target.RefID)
			refs[target.RefID] = true
		}
	}
}

func TestDashboardQueriesExportedSeries(t *testing.T) {
	d := loadDashboard(t)
	used := map[string]bool{}
	for _, p := range d.Panels {
		var shown []string
		for _, target := range p.Targets {
			shown = append(shown, checkQuery(t, target.Expr)...)
		}
		for _, s := range shown {
			used[s] = true
		}
		if want, ok := panelQueries[p.Title]; ok {
			assert.Contains(t, shown, want, "panel %q", p.Title)
		}
	}
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
	}
	for title := range panelQueries {
		assert.Contains(t, titles, title)
	}
	for series := range exported {
		assert.True(t, used[series], "a panel shows %s", series)
	}
}

// grafanaVariables stand in for what Grafana substitutes before it sends a query.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "2m",
	"$__range", "6h",
	"$namespace", ".*",
	"$canary", ".*",
)

// checkQuery parses a panel's PromQL the way Prometheus does and checks that it selects only
// exported series, by their own labels; it returns the series.
func checkQuery(t *testing.T, expr string) []string {
	t.Helper()
	q := grafanaVariables.Replace(expr)
	require.NotContains(t, q, "$", "no variable but $namespace, $canary, $__rate_interval and $__range: %s", expr)
	root, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	require.NoError(t, err, expr)

	var series []string
	parser.Inspect(root, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			name := n.Name
			labelNames, ok := exported[name]
			if !assert.True(t, ok, "%s is an exported series: %s", name, expr) {
				return nil
			}
			series = append(series, name)
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					assert.Contains(t, labelNames, m.Name, "%s has a label %s: %s", name, m.Name, expr)
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				break
			}
			for _, l := range n.Grouping {
				for _, s := range selected(n.Expr) {
					assert.True(t, slices.Contains(exported[s], l) || slices.Contains(targetLabels, l),
						"%s has a label %s to aggregate by: %s", s, l, expr)
				}
			}
		}
		return nil
	})
	require.NotEmpty(t, series, expr)
	return series
}

// selected is the series an expression selects.
func selected(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+), *([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// labelValuesSelector turns a variable's label_values(SELECTOR, LABEL) into a query by that
// label, so that checkQuery checks both the series and the label.
func labelValuesSelector(t *testing.T, definition string) string {
	t.Helper()
	m := labelValues.FindStringSubmatch(definition)
	require.NotNil(t, m, "a label_values(selector, label) query: %s", definition)
	return "count by (" + m[2] + ") (" + m[1] + ")"
}
