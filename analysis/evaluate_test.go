package analysis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// fakeSource answers with fixed values per side; unset parts answer no data.
type fakeSource struct {
	values   [2]float64
	valueErr [2]error
	series   [2][]float64
	counts   [2]Counts
	requests [2]float64
}

var _ Source = (*fakeSource)(nil)

func (f *fakeSource) Value(_ context.Context, s Side) (float64, string, error) {
	return f.values[s], fmt.Sprintf("value of %s", s), f.valueErr[s]
}

func (f *fakeSource) Series(_ context.Context, s Side, _ time.Duration) ([]float64, string, error) {
	return f.series[s], fmt.Sprintf("series of %s", s), nil
}

func (f *fakeSource) Counts(_ context.Context, s Side) (Counts, error) {
	c := f.counts[s]
	c.Query = fmt.Sprintf("bad outcomes of %s", s)
	return c, nil
}

func (f *fakeSource) Requests(_ context.Context, s Side, _ bool) (float64, error) {
	return f.requests[s], nil
}

func TestEvaluate(t *testing.T) {
	successRate := func(mods ...func(*v1alpha1.CanaryMetric)) v1alpha1.CanaryMetric {
		m := v1alpha1.CanaryMetric{Name: BuiltinRequestSuccessRate}
		for _, mod := range mods {
			mod(&m)
		}
		return m
	}
	threshold := func(m *v1alpha1.CanaryMetric) { m.ThresholdRange = &v1alpha1.ThresholdRange{Min: ptr.To(99.0)} }
	difference := func(m *v1alpha1.CanaryMetric) {
		m.Compare = &v1alpha1.MetricComparison{Method: v1alpha1.CompareDifference, Tolerance: 1}
	}
	tests := []struct {
		name    string
		metric  v1alpha1.CanaryMetric
		src     fakeSource
		params  Params
		verdict v1alpha1.Verdict
		judge   v1alpha1.Judge
		message string
		check   func(t *testing.T, d v1alpha1.Decision)
	}{
		{
			name: "threshold fails outside its range", metric: successRate(threshold),
			src:     fakeSource{values: [2]float64{90.12345, 100}, requests: [2]float64{312, 3000}},
			verdict: v1alpha1.VerdictFail, judge: v1alpha1.JudgeThreshold,
			message: "request-success-rate is 90.123, outside >= 99, over 312 canary requests.",
			check: func(t *testing.T, d v1alpha1.Decision) {
				assert.Equal(t, "90.123", d.Value)
				assert.Equal(t, "value of canary", d.Query)
				assert.Equal(t, int64(312), d.SampleSize)
				assert.Empty(t, d.PrimaryQuery, "a threshold does not look at the primary")
			},
		},
		{
			name: "no data is NoData", metric: successRate(threshold),
			src:     fakeSource{valueErr: [2]error{fmt.Errorf("query: %w", ErrNoData)}},
			verdict: v1alpha1.VerdictNoData, judge: v1alpha1.JudgeThreshold, message: "request-success-rate has no data yet",
		},
		{
			name: "a provider error is Error", metric: successRate(threshold),
			src:     fakeSource{valueErr: [2]error{errors.New("dial tcp 127.0.0.1:1: connection refused")}},
			verdict: v1alpha1.VerdictError, judge: v1alpha1.JudgeThreshold, message: "could not be evaluated: dial tcp 127.0.0.1:1: connection refused.",
		},
		{
			name: "too few requests give no verdict", metric: successRate(threshold), params: Params{MinRequests: 100},
			src:     fakeSource{values: [2]float64{50, 100}, requests: [2]float64{12, 3000}},
			verdict: v1alpha1.VerdictNoData, judge: v1alpha1.JudgeThreshold,
			message: "request-success-rate has not enough traffic yet: the canary served 12 requests, 100 needed (minRequests).",
		},
		{
			name: "difference: a success rate more than tolerance below the primary's fails", metric: successRate(difference),
			src:     fakeSource{values: [2]float64{98.5, 99.9}, requests: [2]float64{500, 5000}},
			verdict: v1alpha1.VerdictFail, judge: v1alpha1.JudgeDifference,
			message: "request-success-rate of the canary is 98.5 against the primary's 99.9, beyond the tolerated >= primary - 1, over 500 canary requests.",
			check: func(t *testing.T, d v1alpha1.Decision) {
				assert.Equal(t, "99.9", d.PrimaryValue)
				assert.Equal(t, "value of primary", d.PrimaryQuery)
				assert.Equal(t, int64(5000), d.PrimarySampleSize)
			},
		},
		{
			name: "difference: a success rate above the primary's passes, whatever the tolerance", metric: successRate(difference),
			src:     fakeSource{values: [2]float64{100, 95}},
			verdict: v1alpha1.VerdictPass, judge: v1alpha1.JudgeDifference,
		},
		{
			name:    "ratio: latency over primary x 1.1 fails",
			metric:  v1alpha1.CanaryMetric{Name: BuiltinRequestDuration, Compare: &v1alpha1.MetricComparison{Tolerance: 0.1}},
			src:     fakeSource{values: [2]float64{120, 100}},
			verdict: v1alpha1.VerdictFail, judge: v1alpha1.JudgeRatio, message: "beyond the tolerated <= primary x 1.1",
		},
		{
			name:    "ratio either way: a request rate far below the primary's fails",
			metric:  v1alpha1.CanaryMetric{Name: BuiltinRequestRate, Compare: &v1alpha1.MetricComparison{Tolerance: 0.5}},
			src:     fakeSource{values: [2]float64{10, 100}},
			verdict: v1alpha1.VerdictFail, judge: v1alpha1.JudgeRatio, message: "beyond the tolerated >= primary x 0.5 and <= primary x 1.5",
		},
		{
			name:    "the primary without data gives no verdict",
			metric:  successRate(difference),
			src:     fakeSource{values: [2]float64{99, 0}, valueErr: [2]error{nil, fmt.Errorf("empty: %w", ErrNoData)}},
			verdict: v1alpha1.VerdictNoData, judge: v1alpha1.JudgeDifference, message: "the primary's value, to compare with",
		},
		{
			name:    "mann-whitney waits for five points a side",
			metric:  v1alpha1.CanaryMetric{Name: BuiltinRequestDuration, Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareMannWhitney, Tolerance: 5}},
			src:     fakeSource{series: [2][]float64{{1, 2, 3}, {1, 2, 3, 4, 5, 6}}},
			verdict: v1alpha1.VerdictNoData, judge: v1alpha1.JudgeMannWhitney, message: "not enough points yet to compare: 3 for the canary and 6 for the primary",
		},
		{
			name:   "mann-whitney fails a series confidently above the primary's by more than tolerance",
			metric: v1alpha1.CanaryMetric{Name: BuiltinRequestDuration, Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareMannWhitney, Tolerance: 5}},
			src: fakeSource{series: [2][]float64{
				{150, 152, 149, 151, 153, 150, 148, 152}, {100, 101, 99, 102, 100, 98, 101, 100},
			}},
			verdict: v1alpha1.VerdictFail, judge: v1alpha1.JudgeMannWhitney, message: "differs from the primary's by +50 (95% confidence interval +49 to +52",
			check: func(t *testing.T, d v1alpha1.Decision) {
				assert.Equal(t, "100", d.PrimaryValue, "the primary's median")
				assert.Equal(t, int64(8), d.SampleSize)
			},
		},
		{
			name:   "mann-whitney passes a shift inside tolerance",
			metric: v1alpha1.CanaryMetric{Name: BuiltinRequestDuration, Compare: &v1alpha1.MetricComparison{Method: v1alpha1.CompareMannWhitney, Tolerance: 5}},
			src: fakeSource{series: [2][]float64{
				{101, 102, 99, 103, 100, 98, 101, 102}, {100, 101, 99, 102, 100, 98, 101, 100},
			}},
			verdict: v1alpha1.VerdictPass, judge: v1alpha1.JudgeMannWhitney, message: "not confidently beyond the tolerated 5",
		},
		{
			name:    "sequential: no canary requests is not enough traffic",
			metric:  successRate(func(m *v1alpha1.CanaryMetric) { m.Sequential = &v1alpha1.SequentialTest{} }),
			src:     fakeSource{counts: [2]Counts{{}, {Requests: 1000, Bad: 1}}},
			verdict: v1alpha1.VerdictNoData, judge: v1alpha1.JudgeSequential, message: "has not enough traffic yet in this step: the canary served 0 requests (1 needed)",
		},
		{
			name:   "sequential: evidence carried from earlier steps counts",
			metric: successRate(func(m *v1alpha1.CanaryMetric) { m.Sequential = &v1alpha1.SequentialTest{} }),
			src:    fakeSource{counts: [2]Counts{{Requests: 100}, {Requests: 1900}}},
			params: Params{Carried: &v1alpha1.Evidence{Metric: "request-success-rate", CanaryRequests: 50, CanaryBad: 3, PrimaryRequests: 950, LogWorse: 5}},
			// 5 nats carried are over log(100), and a step without bad outcomes changes nothing.
			verdict: v1alpha1.VerdictFail, judge: v1alpha1.JudgeSequential, message: "the canary's error rate of 2% (3 of 150 requests) against the primary's 0% (0 of 2850)",
			check: func(t *testing.T, d v1alpha1.Decision) {
				assert.True(t, d.Conclusive)
				assert.Equal(t, int64(150), d.Evidence.CanaryRequests)
				assert.InDelta(t, 5.0, d.Evidence.LogWorse, 1e-9)
			},
		},
		{
			name:    "sequential: a step's evidence against lowers what was carried",
			metric:  successRate(func(m *v1alpha1.CanaryMetric) { m.Sequential = &v1alpha1.SequentialTest{} }),
			src:     fakeSource{counts: [2]Counts{{Requests: 100, Bad: 0}, {Requests: 1900, Bad: 2}}},
			params:  Params{Carried: &v1alpha1.Evidence{Metric: "request-success-rate", CanaryRequests: 50, CanaryBad: 3, PrimaryRequests: 950, LogWorse: 5}},
			verdict: v1alpha1.VerdictPass, judge: v1alpha1.JudgeSequential, message: "the evidence that it is worse than 1.2x the primary's is 62 and that it is not 1.1, of the 100 needed",
			check: func(t *testing.T, d v1alpha1.Decision) {
				assert.False(t, d.Conclusive)
				assert.Less(t, d.Evidence.LogWorse, 5.0, "two primary errors and none on the canary speak against it")
			},
		},
		{
			name:    "sequential: few bad outcomes are no conclusion yet",
			metric:  v1alpha1.CanaryMetric{Name: BuiltinRequestDuration, Sequential: &v1alpha1.SequentialTest{SlowerThan: "250ms"}},
			src:     fakeSource{counts: [2]Counts{{Requests: 100, Bad: 1}, {Requests: 1900, Bad: 19}}},
			verdict: v1alpha1.VerdictPass, judge: v1alpha1.JudgeSequential, message: "no conclusion yet on the canary's share of requests slower than 250ms of 1%",
			check: func(t *testing.T, d v1alpha1.Decision) {
				assert.False(t, d.Conclusive)
				assert.Equal(t, "<= primary x 1.2 (false rollbacks <= 1%)", d.Bound)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(context.Background(), tt.metric, &tt.src, tt.params)
			assert.Equal(t, tt.verdict, d.Verdict, d.Message)
			assert.Equal(t, tt.judge, d.Judge)
			assert.Equal(t, tt.metric.Name, d.Metric)
			assert.Contains(t, d.Message, tt.message)
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}
