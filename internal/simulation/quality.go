package simulation

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Policy is a named analysis configuration to measure.
type Policy struct {
	Name     string
	Analysis v1alpha1.CanaryAnalysis
}

// Steps are the weights every policy goes through: a first step of 5%.
var Steps = []int32{5, 10, 25, 50}

// ThresholdPolicy is Flagger's documented example: checks every minute, five failed checks roll
// back, success rate at least 99% over a minute and p99 latency at most 500 ms over 30 s.
func ThresholdPolicy() Policy {
	return Policy{Name: "threshold (Flagger's example)", Analysis: v1alpha1.CanaryAnalysis{
		Interval: "1m", Threshold: 5, StepWeights: Steps,
		Metrics: []v1alpha1.CanaryMetric{
			{Name: analysis.BuiltinRequestSuccessRate, Interval: "1m", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(99.0)}},
			{Name: analysis.BuiltinRequestDuration, Interval: "30s", ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(500.0)}},
		},
	}}
}

// SequentialPolicy is trafficctl's: the same steps of a minute, looked at every 10 s by two
// sequential tests on request outcomes (errors, and requests slower than 100 ms), each
// tolerating 1.2x the primary's rate (the default) with at most 0.5% false rollbacks, so at
// most 1% for the two together.
func SequentialPolicy() Policy {
	test := func(slowerThan string) *v1alpha1.SequentialTest {
		return &v1alpha1.SequentialTest{FalseRollbackRate: ptr.To(0.005), SlowerThan: slowerThan}
	}
	return Policy{Name: "sequential (trafficctl)", Analysis: v1alpha1.CanaryAnalysis{
		Interval: "1m", CheckInterval: "10s", Threshold: 5, StepWeights: Steps,
		Metrics: []v1alpha1.CanaryMetric{
			{Name: analysis.BuiltinRequestSuccessRate, Sequential: test("")},
			{Name: analysis.BuiltinRequestDuration, Sequential: test("100ms")},
		},
	}}
}

// Scenario is a canary version measured against the baseline.
type Scenario struct {
	Name   string
	Canary Version
	// Bad is true when rolling back is the right outcome.
	Bad bool
}

// Baseline is the primary's behaviour, and a healthy canary's: 0.1% errors, a log-normal
// latency with a median of 40 ms and a p99 of about 130 ms.
var Baseline = Version{ErrorRate: 0.001, MedianLatency: 0.040, LatencySigma: 0.5}

// Scenarios are a healthy canary, one with 2% errors and one 50 ms slower.
func Scenarios() []Scenario {
	errors, slow := Baseline, Baseline
	errors.ErrorRate = 0.02
	slow.ExtraLatency = 0.050
	return []Scenario{
		{Name: "healthy", Canary: Baseline},
		{Name: "2% errors", Canary: errors, Bad: true},
		{Name: "+50 ms latency", Canary: slow, Bad: true},
	}
}

// RPS is the traffic every rollout gets.
const RPS = 100

// Summary is a policy's record on one scenario.
type Summary struct {
	Policy, Scenario string
	Rollouts         int
	RolledBack       int
	// Rollback and Promotion are the durations of the rollouts that ended that way.
	Rollback, Promotion []time.Duration
	// FailedRequests and CanaryRequests are what the canary served users, per rollout.
	FailedRequests, CanaryRequests []float64
}

// Measure runs n rollouts of the scenario under the policy, seeded so that every run of the
// measurement sees the same traffic.
func Measure(p Policy, s Scenario, n int, seed uint64) Summary {
	spec := v1alpha1.CanarySpec{
		TargetRef: v1alpha1.TargetReference{Name: "podinfo"},
		Service:   v1alpha1.CanaryService{Port: 9898},
		Analysis:  p.Analysis,
	}
	sum := Summary{Policy: p.Name, Scenario: s.Name, Rollouts: n}
	for i := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		o := Run(spec, s.Canary, Baseline, Traffic{RPS: RPS}, rng)
		if o.Promoted {
			sum.Promotion = append(sum.Promotion, o.Duration)
		} else {
			sum.RolledBack++
			sum.Rollback = append(sum.Rollback, o.Duration)
		}
		sum.FailedRequests = append(sum.FailedRequests, o.CanaryFailed)
		sum.CanaryRequests = append(sum.CanaryRequests, o.CanaryRequests)
	}
	return sum
}

// RollbackRate is the share of rollouts rolled back.
func (s Summary) RollbackRate() float64 { return float64(s.RolledBack) / float64(s.Rollouts) }

// TimeToRollback is the p-th percentile of the time to roll back over every rollout, a
// promoted one counting as never; 0 means never.
func (s Summary) TimeToRollback(p float64) time.Duration {
	all := slices.Clone(s.Rollback)
	for range s.Promotion {
		all = append(all, never)
	}
	if d := Percentile(all, p); d != never {
		return d
	}
	return 0
}

// never stands for the time to roll back a promoted canary.
const never = time.Duration(1<<63 - 1)

// Percentile is the p-th percentile (0..1) of values, the zero value when there are none.
func Percentile[T cmp.Ordered](values []T, p float64) T {
	if len(values) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(values)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// WriteTable prints the summaries side by side, a row per measure and a column per policy.
func WriteTable(w io.Writer, healthy, errors, slow []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	names := make([]string, len(healthy))
	for i, s := range healthy {
		names[i] = s.Policy
	}
	row := func(label string, f func(i int) string) {
		cells := []string{label}
		for i := range healthy {
			cells = append(cells, f(i))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("", func(i int) string { return names[i] })
	row("false rollbacks (healthy canary)", func(i int) string { return pct(healthy[i].RollbackRate()) })
	row("healthy canary: median time to promote", func(i int) string { return Percentile(healthy[i].Promotion, 0.5).String() })
	for _, bad := range []struct {
		label string
		sums  []Summary
	}{{"2% errors", errors}, {"+50 ms", slow}} {
		row(bad.label+": rolled back", func(i int) string { return pct(bad.sums[i].RollbackRate()) })
		row(bad.label+": median time to rollback", func(i int) string { return orNever(bad.sums[i].TimeToRollback(0.5)) })
		row(bad.label+": p95 time to rollback", func(i int) string { return orNever(bad.sums[i].TimeToRollback(0.95)) })
		row(bad.label+": canary requests served, median", func(i int) string { return fmt.Sprintf("%.0f", Percentile(bad.sums[i].CanaryRequests, 0.5)) })
		row(bad.label+": failed requests served, median (p95)", func(i int) string {
			return fmt.Sprintf("%.0f (%.0f)", Percentile(bad.sums[i].FailedRequests, 0.5), Percentile(bad.sums[i].FailedRequests, 0.95))
		})
	}
	return tw.Flush()
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

func orNever(d time.Duration) string {
	if d == 0 {
		return "never (promoted)"
	}
	return d.String()
}
