package controllers_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/rollout"
)

var slow = testprom.Traffic{RequestsPerScrape: 100, Latency: 120 * time.Millisecond}

// Every judge, through a whole rollout against the suite's real Prometheus: the canary's and
// the primary's series differ, so a judge that compares the wrong sides, or none, gets it wrong.
func TestJudgesThroughARollout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		canary, primary testprom.Traffic
		metric          v1alpha1.CanaryMetric
		// template, when set, is the query of a MetricTemplate "custom" the metric refers to.
		template      string
		interval      string
		checkInterval string
		phase         v1alpha1.CanaryPhase
		judge         v1alpha1.Judge
		message       []string
		check         func(t *testing.T, cn *v1alpha1.Canary)
	}{
		{
			name: "ratio: a slower canary fails against the primary", canary: slow, primary: healthy,
			metric: v1alpha1.CanaryMetric{Name: "request-duration", Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareRatio, Tolerance: 0.5}},
			phase:  v1alpha1.PhaseFailed, judge: v1alpha1.JudgeRatio,
			message: []string{"request-duration of the canary is 24", "against the primary's 24.", "beyond the tolerated <= primary x 1.5"},
			check: func(t *testing.T, cn *v1alpha1.Canary) {
				d := cn.Status.Decisions[0]
				assert.Contains(t, d.PrimaryQuery, `podinfo-primary-`, "the primary's query selects the primary's pods")
				assert.NotContains(t, d.Query, `podinfo-primary-`)
				assert.Positive(t, d.SampleSize, "the canary's requests are counted")
			},
		},
		{
			name: "difference: a canary within tolerance of the primary passes", canary: healthy, primary: healthy,
			metric: v1alpha1.CanaryMetric{Name: "request-success-rate", Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareDifference, Tolerance: 1}},
			phase:  v1alpha1.PhaseSucceeded, judge: v1alpha1.JudgeDifference,
			message: []string{"request-success-rate of the canary is 100 against the primary's 100, within >= primary - 1"},
		},
		{
			name: "difference: a canary failing 10% fails", canary: failing, primary: healthy,
			metric: v1alpha1.CanaryMetric{Name: "request-success-rate", Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareDifference, Tolerance: 1}},
			phase:  v1alpha1.PhaseFailed, judge: v1alpha1.JudgeDifference,
			message: []string{"request-success-rate of the canary is 90 against the primary's 100, beyond the tolerated >= primary - 1"},
		},
		{
			name: "mann-whitney: a canary whose latency series lies above the primary's fails", canary: slow, primary: healthy, interval: "12s",
			metric: v1alpha1.CanaryMetric{Name: "request-duration", Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareMannWhitney, Tolerance: 20, Step: "2s"}},
			phase:  v1alpha1.PhaseFailed, judge: v1alpha1.JudgeMannWhitney,
			message: []string{"request-duration of the canary differs from the primary's by +", "95% confidence interval", "Mann-Whitney p = ", "beyond the tolerated 20"},
			check: func(t *testing.T, cn *v1alpha1.Canary) {
				assert.GreaterOrEqual(t, cn.Status.Decisions[0].SampleSize, int64(5), "at least five points a side")
			},
		},
		{
			name: "mann-whitney: alike series pass", canary: healthy, primary: healthy, interval: "12s",
			metric: v1alpha1.CanaryMetric{Name: "request-duration", Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareMannWhitney, Tolerance: 20, Step: "2s"}},
			phase:  v1alpha1.PhaseSucceeded, judge: v1alpha1.JudgeMannWhitney,
			message: []string{"not confidently beyond the tolerated 20"},
		},
		{
			name: "sequential: errors on the canary alone roll back at the first look, under threshold", canary: failing, primary: healthy,
			interval: "6s", checkInterval: "2s",
			metric: v1alpha1.CanaryMetric{Name: "request-success-rate", Sequential: &v1alpha1.SequentialTest{}},
			phase:  v1alpha1.PhaseFailed, judge: v1alpha1.JudgeSequential,
			message: []string{"A sequential check concluded at step 1 of 2 (10% canary traffic) that the canary is worse", "the canary's error rate of ", "is worse than 1.2x the primary's"},
			check: func(t *testing.T, cn *v1alpha1.Canary) {
				assert.Zero(t, cn.Status.FailedChecks, "no count of failed checks was needed")
				d := cn.Status.Decisions[0]
				rate, err := strconv.ParseFloat(d.Value, 64)
				require.NoError(t, err)
				assert.InDelta(t, 10, rate, 1.5, "the canary's error rate, in percent")
				assert.Equal(t, "0", d.PrimaryValue)
				assert.True(t, d.Conclusive)
				require.NotNil(t, d.Evidence)
				assert.Positive(t, d.Evidence.CanaryBad)
				assert.Zero(t, d.Evidence.PrimaryBad)
				assert.GreaterOrEqual(t, d.Evidence.LogWorse, 4.6, "over log(1/0.01)")
			},
		},
		{
			name: "sequential: slow requests on the canary roll it back", canary: slow, primary: healthy,
			interval: "6s", checkInterval: "2s",
			metric: v1alpha1.CanaryMetric{Name: "request-duration", Sequential: &v1alpha1.SequentialTest{SlowerThan: "100ms"}},
			phase:  v1alpha1.PhaseFailed, judge: v1alpha1.JudgeSequential,
			message: []string{"share of requests slower than 100ms of 100%"},
		},
		{
			name: "sequential: a template counts the bad outcomes, the metric set the requests", canary: failing, primary: healthy,
			interval: "6s", checkInterval: "2s",
			template: `sum(increase(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code="500"}[{{ window }}])) or vector(0)`,
			metric:   v1alpha1.CanaryMetric{Name: "server-errors", Sequential: &v1alpha1.SequentialTest{}},
			phase:    v1alpha1.PhaseFailed, judge: v1alpha1.JudgeSequential,
			message: []string{"server-errors: the canary's rate of bad outcomes of 10", "is worse than 1.2x the primary's"},
			check: func(t *testing.T, cn *v1alpha1.Canary) {
				d := cn.Status.Decisions[0]
				assert.Contains(t, d.PrimaryQuery, `pod=~"podinfo-primary-[0-9a-zA-Z]+-[0-9a-zA-Z]+"`, "rendered for the primary too")
			},
		},
		{
			name: "sequential: a healthy canary is promoted, each step lasting its interval", canary: healthy, primary: healthy,
			interval: "4s", checkInterval: "1s",
			metric: v1alpha1.CanaryMetric{Name: "request-success-rate", Sequential: &v1alpha1.SequentialTest{}},
			phase:  v1alpha1.PhaseSucceeded, judge: v1alpha1.JudgeSequential,
			message: []string{"no conclusion yet on the canary's error rate of 0%"},
			check: func(t *testing.T, cn *v1alpha1.Canary) {
				var stepTwo int
				for _, d := range cn.Status.Decisions {
					if d.Step == 2 {
						stepTwo++
					}
				}
				assert.GreaterOrEqual(t, stepTwo, 3, "the step was looked at every second for four seconds")
				require.Len(t, cn.Status.Evidence, 1, "step 1's requests were carried into step 2")
				assert.Positive(t, cn.Status.Evidence[0].CanaryRequests)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.setTraffic(tt.canary, tt.primary)
			c.createTarget("podinfo:1.0")
			c.startController()
			if tt.template != "" {
				c.create(&v1alpha1.MetricTemplate{
					ObjectMeta: metav1.ObjectMeta{Name: "custom", Namespace: c.ns},
					Spec:       v1alpha1.MetricTemplateSpec{Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus}, Query: tt.template},
				})
				tt.metric.TemplateRef = &v1alpha1.CrossNamespaceObjectReference{Name: "custom"}
			}
			c.create(c.newCanary(func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{tt.metric}
				if tt.interval != "" {
					cn.Spec.Analysis.Interval = tt.interval
				}
				cn.Spec.Analysis.CheckInterval = tt.checkInterval
			}))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
			c.setImage("podinfo:2.0")
			cn := c.waitFor("the end of the rollout", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
				return cn.Status.Phase == v1alpha1.PhaseSucceeded || cn.Status.Phase == v1alpha1.PhaseFailed
			})
			require.Equal(t, tt.phase, cn.Status.Phase, readyMessage(cn))
			require.NotEmpty(t, cn.Status.Decisions)
			d := cn.Status.Decisions[0]
			assert.Equal(t, tt.judge, d.Judge)
			text := d.Message
			if tt.phase == v1alpha1.PhaseFailed {
				text = readyMessage(cn)
				assert.Contains(t, text, d.Message, "the rollback says which check failed and why")
			}
			for _, m := range tt.message {
				assert.Contains(t, text, m)
			}
			if tt.phase == v1alpha1.PhaseFailed {
				c.eventuallyWeights([]int32{0, 10, 0}, "rolled back at the first step")
			}
			if tt.check != nil {
				tt.check(t, cn)
			}
		})
	}
}

func TestMinRequestsHoldsTheStepUntilThereIsTraffic(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(testprom.Traffic{RequestsPerScrape: 1, Latency: 20 * time.Millisecond}, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.MinRequests = ptr.To[int64](1000) }))
	analysisHolds(t, c, rollout.ReasonNoData, v1alpha1.VerdictNoData, "has not enough traffic yet: the canary served")
	assert.Contains(t, c.canary().Status.Decisions[0].Message, "1000 needed (minRequests)")
}

// The istio and envoy sets read the mesh's own series for the same rollout; the exporter
// writes them, with the numbers of the app set.
func TestMetricSets(t *testing.T) {
	t.Parallel()
	for _, set := range []v1alpha1.MetricSet{v1alpha1.MetricSetIstio, v1alpha1.MetricSetEnvoy} {
		t.Run(string(set), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			canary, primary := failing, healthy
			canary.Service, primary.Service = "podinfo-canary", "podinfo-primary"
			c.setTraffic(canary, primary)
			c.createTarget("podinfo:1.0")
			c.startController()
			c.create(c.newCanary(func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.MetricSet = set
				cn.Spec.Analysis.Metrics = append(cn.Spec.Analysis.Metrics,
					v1alpha1.CanaryMetric{Name: "request-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(50.0)}},
					v1alpha1.CanaryMetric{Name: "request-duration", ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(100.0)}})
			}))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
			c.setImage("podinfo:2.0")
			cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
			assert.Contains(t, readyMessage(cn), "request-success-rate is 90, outside >= 99")
			byMetric := map[string]v1alpha1.Decision{}
			for _, d := range cn.Status.Decisions {
				if _, seen := byMetric[d.Metric]; !seen {
					byMetric[d.Metric] = d
				}
			}
			series := map[v1alpha1.MetricSet]string{v1alpha1.MetricSetIstio: "istio_requests_total", v1alpha1.MetricSetEnvoy: "envoy_cluster_upstream_rq"}[set]
			assert.Contains(t, byMetric["request-success-rate"].Query, series)
			assert.Equal(t, v1alpha1.VerdictPass, byMetric["request-rate"].Verdict, byMetric["request-rate"].Message)
			assert.Equal(t, v1alpha1.VerdictPass, byMetric["request-duration"].Verdict, byMetric["request-duration"].Message)
		})
	}
}

// A MetricTemplate that cannot become a query a Prometheus answers with one value holds the
// step with the metric and the reason named, and rolls nothing back (onError: wait).
func TestBrokenTemplatesHoldTheStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, query string
		variables   map[string]string
		message     []string
	}{
		{"a template that does not parse", `sum(rate(http_requests_total{namespace="{{ .Namespace }"}[1m]))`, nil,
			[]string{"bad-query could not be evaluated", "query template does not parse"}},
		{"an unknown variable", `sum(rate(http_requests_total{route="{{ variables.route }}"}[{{ interval }}]))`, map[string]string{"path": "/"},
			[]string{"bad-query could not be evaluated", `unknown variable "variables.route"`, "templateVariables: path"}},
		{"a query Prometheus rejects", `sum(rate(http_requests_total{namespace="{{ namespace }}"}[{{ interval }}])`, nil,
			[]string{"bad-query could not be evaluated", "rejected query", "bad_data"}},
		{"a query with several series", `rate(http_requests_total{namespace="{{ namespace }}"}[{{ interval }}])`, nil,
			[]string{"bad-query could not be evaluated", "series, but the query must aggregate to one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.setTraffic(healthy, healthy)
			c.createTarget("podinfo:1.0")
			c.startController()
			c.create(&v1alpha1.MetricTemplate{
				ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: c.ns},
				Spec:       v1alpha1.MetricTemplateSpec{Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus}, Query: tt.query},
			})
			c.create(c.newCanary(func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{{
					Name: "bad-query", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "bad"},
					TemplateVariables: tt.variables, ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(1.0)},
				}}
			}))
			analysisHolds(t, c, rollout.ReasonAnalysisUnavailable, v1alpha1.VerdictError, tt.message[0])
			ready := readyMessage(c.canary())
			for _, m := range tt.message {
				assert.Contains(t, ready, m, "the condition names the metric and the cause")
			}
			events := strings.Join(c.eventsEventually(rollout.ReasonAnalysisUnavailable, 1), "\n")
			assert.Contains(t, events, tt.message[len(tt.message)-1], "and so does an event")
		})
	}
}

// A value cannot widen a template's selection: with the quote closed by the value, the query
// would match every namespace's requests; escaped, it matches none.
func TestTemplateVariablesCannotChangeTheQuery(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(&v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "by-code", Namespace: c.ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus},
			Query:    `sum(rate(http_requests_total{namespace="{{ namespace }}",code="{{ variables.code }}"}[{{ interval }}]))`,
		},
	})
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{{
			Name: "rps-by-code", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "by-code"},
			TemplateVariables: map[string]string{"code": `200"} or sum(rate(http_requests_total[1m])) or up{a="`},
			ThresholdRange:    &v1alpha1.ThresholdRange{Min: ptr.To(1.0)},
		}}
	}))
	analysisHolds(t, c, rollout.ReasonNoData, v1alpha1.VerdictNoData, "no data")
	assert.Contains(t, c.canary().Status.Decisions[0].Query, `code="200\"} or sum(rate(http_requests_total[1m])) or up{a=\""`)
}
