package analysis_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
)

var (
	metricSets = []v1alpha1.MetricSet{v1alpha1.MetricSetApp, v1alpha1.MetricSetIstio, v1alpha1.MetricSetEnvoy}
	builtins   = []string{analysis.BuiltinRequestSuccessRate, analysis.BuiltinRequestDuration, analysis.BuiltinRequestRate}
)

// vars are the values a Canary podinfo in namespace shop renders its queries with, for one
// side: the canary (target podinfo behind podinfo-canary) or the primary.
func vars(target, targetService, interval, window string) analysis.QueryVars {
	return analysis.QueryVars{
		Name:          "podinfo",
		Namespace:     "shop",
		Target:        target,
		TargetService: targetService,
		Service:       "podinfo",
		Primary:       "podinfo-primary",
		Canary:        "podinfo",
		Interval:      interval,
		Window:        window,
	}
}

// side is what one side's pods serve per scrape, and so what its queries must measure.
type side struct {
	name string
	vars analysis.QueryVars
	// perScrape and errorsPerScrape are the requests and 5xx responses of all its pods.
	perScrape, errorsPerScrape float64
	// p99 is the latency bucket, (low, high] in ms, the p99 falls into.
	p99 [2]float64
	// slower is, per bucket bound, how many requests of a scrape are slower than it.
	slower map[time.Duration]float64
}

// TestBuiltinQueriesAgainstPrometheus renders every built-in query of every metric set for
// both sides and evaluates it on the real Prometheus, scraping an exporter whose canary and
// primary serve different traffic, next to pods of other Deployments and namespaces that
// serve far more, so that a query reading the wrong side or a neighbour shows.
func TestBuiltinQueriesAgainstPrometheus(t *testing.T) {
	const (
		interval = "4s"
		window   = "6s"
	)
	exporter := testprom.StartExporter(t)
	// The canary: two pods of Deployment podinfo behind podinfo-canary, 100 requests per
	// scrape, 10 of them 5xx, 60 at 120ms and 40 at 30ms.
	exporter.SetTraffic("shop", "podinfo-7d9c8-abcde", testprom.Traffic{
		RequestsPerScrape: 60, ErrorRatio: 0.1, Latency: 120 * time.Millisecond, Service: "podinfo-canary", Port: 9898,
	})
	exporter.SetTraffic("shop", "podinfo-7d9c8-fghij", testprom.Traffic{
		RequestsPerScrape: 40, ErrorRatio: 0.1, Latency: 30 * time.Millisecond, Service: "podinfo-canary", Port: 9898,
	})
	// The primary: one pod of podinfo-primary, 200 requests per scrape at 30ms, none failing;
	// its Istio and Envoy series have no 5xx series at all.
	exporter.SetTraffic("shop", "podinfo-primary-5f6b7-xyz12", testprom.Traffic{
		RequestsPerScrape: 200, Latency: 30 * time.Millisecond, Service: "podinfo-primary", Port: 9898,
	})
	// Neighbours that must never be counted: another Deployment of the namespace, a Deployment
	// whose name starts with the target's, and the target's namesake in another namespace.
	noisy := testprom.Traffic{RequestsPerScrape: 1000, ErrorRatio: 0.5, Latency: 2 * time.Second}
	for _, pod := range []struct{ namespace, name, service string }{
		{"shop", "checkout-6c8d9-qwert", "checkout"},
		{"shop", "podinfo-v2-6c8d9-qwert", "podinfo-canary-v2"},
		{"other", "podinfo-7d9c8-abcde", "podinfo-canary"},
		{"other", "podinfo-primary-5f6b7-xyz12", "podinfo-primary"},
	} {
		traffic := noisy
		traffic.Service = pod.service
		exporter.SetTraffic(pod.namespace, pod.name, traffic)
	}
	server := testprom.Start(t, exporter.Addr())
	provider, err := prometheus.New(prometheus.Config{Address: server.URL(), Timeout: 5 * time.Second})
	require.NoError(t, err)

	// Wait until the samples reach back further than the window, so that neither the window
	// nor the interval is cut short by the start of the series.
	server.WaitForSeries(t, fmt.Sprintf(`count_over_time(up{job=%q}[10s]) >= 8`, testprom.JobName), 30*time.Second)

	sides := []side{{
		name:      "canary",
		vars:      vars("podinfo", "podinfo-canary", interval, window),
		perScrape: 100, errorsPerScrape: 10,
		p99:    [2]float64{100, 250},
		slower: map[time.Duration]float64{25 * time.Millisecond: 100, 100 * time.Millisecond: 60, time.Second: 0},
	}, {
		name:      "primary",
		vars:      vars("podinfo-primary", "podinfo-primary", interval, window),
		perScrape: 200, errorsPerScrape: 0,
		p99:    [2]float64{25, 50},
		slower: map[time.Duration]float64{25 * time.Millisecond: 200, 100 * time.Millisecond: 0, time.Second: 0},
	}}
	windowLength, err := time.ParseDuration(window)
	require.NoError(t, err)
	scrapesPerWindow := windowLength.Seconds() / testprom.ScrapeInterval.Seconds()
	perSecond := 1 / testprom.ScrapeInterval.Seconds()

	for _, set := range metricSets {
		for _, s := range sides {
			t.Run(string(set)+"/"+s.name, func(t *testing.T) {
				requests := s.perScrape * scrapesPerWindow
				// increase() extrapolates to the ends of the window, and scrapes jitter.
				const countTolerance = 0.15

				t.Run("requests", func(t *testing.T) {
					assert.InEpsilon(t, requests, evaluate(t, provider, analysis.RequestsQuery(set), s.vars), countTolerance)
				})

				t.Run(analysis.BuiltinRequestSuccessRate, func(t *testing.T) {
					q := builtin(t, set, analysis.BuiltinRequestSuccessRate, 0)
					wantRate := 100 * (1 - s.errorsPerScrape/s.perScrape)
					assert.InDelta(t, wantRate, evaluate(t, provider, q.Value, s.vars), 0.1)
					n := evaluate(t, provider, q.Requests, s.vars)
					assert.InEpsilon(t, requests, n, countTolerance)
					bad := evaluate(t, provider, q.Bad, s.vars)
					if s.errorsPerScrape == 0 {
						assert.Zero(t, bad, "no 5xx responses count as 0, not as no data")
					} else {
						assert.InEpsilon(t, s.errorsPerScrape*scrapesPerWindow, bad, countTolerance)
						// Both counts extrapolate the same samples, so their ratio is exact.
						assert.InDelta(t, s.errorsPerScrape/s.perScrape, bad/n, 0.001)
					}
				})

				t.Run(analysis.BuiltinRequestDuration, func(t *testing.T) {
					q := builtin(t, set, analysis.BuiltinRequestDuration, 0)
					p99 := evaluate(t, provider, q.Value, s.vars)
					assert.Greater(t, p99, s.p99[0], "p99 in ms")
					assert.LessOrEqual(t, p99, s.p99[1], "p99 in ms")
					n := evaluate(t, provider, q.Requests, s.vars)
					assert.InEpsilon(t, requests, n, countTolerance)
					assert.Empty(t, q.Bad, "without slowerThan nothing counts as bad")

					for bound, slow := range s.slower {
						q := builtin(t, set, analysis.BuiltinRequestDuration, bound)
						bad := evaluate(t, provider, q.Bad, s.vars)
						if slow == 0 {
							assert.InDelta(t, 0, bad, 1e-9, "slower than %s", bound)
							continue
						}
						assert.InDelta(t, slow/s.perScrape, bad/n, 0.001, "share slower than %s", bound)
					}
				})

				t.Run(analysis.BuiltinRequestRate, func(t *testing.T) {
					q := builtin(t, set, analysis.BuiltinRequestRate, 0)
					assert.InEpsilon(t, s.perScrape*perSecond, evaluate(t, provider, q.Value, s.vars), 0.1, "requests per second")
					assert.InEpsilon(t, requests, evaluate(t, provider, q.Requests, s.vars), countTolerance)
					assert.Empty(t, q.Bad)
				})
			})
		}

		t.Run(string(set)+"/a target without series has no data", func(t *testing.T) {
			absent := vars("cart", "cart-canary", interval, window)
			for _, name := range builtins {
				q := builtin(t, set, name, 100*time.Millisecond)
				for _, query := range []string{q.Value, q.Requests, q.Bad} {
					if query == "" {
						continue
					}
					rendered, err := analysis.Render(query, absent)
					require.NoError(t, err)
					_, err = provider.Query(t.Context(), rendered, time.Now())
					assert.ErrorIs(t, err, analysis.ErrNoData, "%s: %s", name, rendered)
				}
			}
		})
	}
}

func builtin(t *testing.T, set v1alpha1.MetricSet, name string, slowerThan time.Duration) analysis.BuiltinQueries {
	t.Helper()
	q, ok := analysis.Builtin(set, name, slowerThan)
	require.True(t, ok, "%s has no %s", set, name)
	return q
}

// evaluate renders a query and returns its value now.
func evaluate(t *testing.T, provider *prometheus.Provider, query string, vars analysis.QueryVars) float64 {
	t.Helper()
	require.NotEmpty(t, query)
	rendered, err := analysis.Render(query, vars)
	require.NoError(t, err)
	v, err := provider.Query(t.Context(), rendered, time.Now())
	require.NoError(t, err, rendered)
	return v
}

func TestBuiltinUnknown(t *testing.T) {
	_, ok := analysis.Builtin(v1alpha1.MetricSetApp, "latency", time.Second)
	assert.False(t, ok)
	_, ok = analysis.Builtin("linkerd", analysis.BuiltinRequestSuccessRate, 0)
	assert.False(t, ok)
	assert.Empty(t, analysis.RequestsQuery("linkerd"))
}

// TestBuiltinSlowerThanMatchesOneBucket checks the le matcher of request-duration's Bad
// against the bounds exporters write and the ones Prometheus 3 normalizes them to.
func TestBuiltinSlowerThanMatchesOneBucket(t *testing.T) {
	tests := []struct {
		set        v1alpha1.MetricSet
		slowerThan time.Duration
		matches    []string
		not        []string
	}{
		{v1alpha1.MetricSetApp, 250 * time.Millisecond, []string{"0.25"}, []string{"0.5", "2.5", "0x25", "0.255"}},
		{v1alpha1.MetricSetApp, 100 * time.Millisecond, []string{"0.1"}, []string{"0.01", "1", "0.1.0"}},
		{v1alpha1.MetricSetApp, time.Second, []string{"1", "1.0"}, []string{"10", "0.1", "1.5", "+Inf"}},
		{v1alpha1.MetricSetApp, 2500 * time.Millisecond, []string{"2.5"}, []string{"25", "2.50.0"}},
		{v1alpha1.MetricSetIstio, 250 * time.Millisecond, []string{"250", "250.0"}, []string{"25", "2500", "0.25", "250.5"}},
		{v1alpha1.MetricSetEnvoy, time.Second, []string{"1000", "1000.0"}, []string{"1", "10000"}},
		{v1alpha1.MetricSetEnvoy, 1500 * time.Microsecond, []string{"1.5"}, []string{"15", "1.5.0"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.set, tt.slowerThan), func(t *testing.T) {
			q := builtin(t, tt.set, analysis.BuiltinRequestDuration, tt.slowerThan)
			m := regexp.MustCompile(`le=~("(?:[^"\\]|\\.)*")`).FindStringSubmatch(q.Bad)
			require.NotNil(t, m, "no le matcher in %s", q.Bad)
			pattern, err := strconv.Unquote(m[1]) // PromQL and Go read \\ the same way
			require.NoError(t, err)
			re := regexp.MustCompile("^(?:" + pattern + ")$") // Prometheus anchors =~ at both ends
			for _, le := range tt.matches {
				assert.True(t, re.MatchString(le), "%q must match %q", pattern, le)
			}
			for _, le := range tt.not {
				assert.False(t, re.MatchString(le), "%q must not match %q", pattern, le)
			}
		})
	}
}

// TestBuiltinQueriesDocumented keeps docs/metrics.md showing the queries as they render for
// its example, a Canary podinfo in namespace shop with a 1m interval and a 500ms slowerThan.
func TestBuiltinQueriesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	require.NoError(t, err)
	for _, set := range metricSets {
		for _, name := range builtins {
			q := builtin(t, set, name, 500*time.Millisecond)
			for _, v := range []analysis.QueryVars{
				vars("podinfo", "podinfo-canary", "1m", "5m"),
				vars("podinfo-primary", "podinfo-primary", "1m", "5m"),
			} {
				for _, query := range []string{q.Value, q.Requests, q.Bad} {
					if query == "" {
						continue
					}
					rendered, err := analysis.Render(query, v)
					require.NoError(t, err)
					assert.True(t, strings.Contains(string(doc), "\n"+rendered+"\n"),
						"docs/metrics.md does not show the %s %s query for %s:\n%s", set, name, v.Target, rendered)
				}
			}
		}
	}
}
