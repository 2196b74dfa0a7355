package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/gonum/stat"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Side is the version a query measures.
type Side int

// The two sides of a rollout.
const (
	SideCanary Side = iota
	SidePrimary
)

func (s Side) String() string {
	if s == SidePrimary {
		return "primary"
	}
	return "canary"
}

// Counts are one side's requests and bad outcomes since the step began, and the query that
// counted the bad outcomes.
type Counts struct {
	Requests, Bad float64
	Query         string
}

// ErrNoData is returned (wrapped) by a Source whose query succeeded with no value to judge: an
// empty result, or NaN from a ratio over no requests. It is declared here, by the caller, and
// wrapped by every metric provider.
var ErrNoData = errors.New("query returned no data")

// Source answers one check's queries for either side. The controller's asks Prometheus; the
// decision-quality simulation reads its own counters. Errors wrapping ErrNoData mean
// the query had nothing to judge.
type Source interface {
	// Value is the check's value over its lookback, with the query that measured it.
	Value(ctx context.Context, side Side) (float64, string, error)
	// Series is the check's value at every step across the step so far, each point measuring its
	// own slice of time.
	Series(ctx context.Context, side Side, step time.Duration) ([]float64, string, error)
	// Counts are the requests and bad outcomes since the step began.
	Counts(ctx context.Context, side Side) (Counts, error)
	// Requests is how many requests side served over the check's lookback, or since the step
	// began.
	Requests(ctx context.Context, side Side, sinceStep bool) (float64, error)
}

// Params are what a check needs beyond its spec and its source.
type Params struct {
	// MinRequests the canary must have served before the check gives a verdict; 0 for none.
	MinRequests int64
	// Carried is the evidence a sequential check gathered in the rollout's completed steps.
	Carried *v1alpha1.Evidence
}

// Defaults of the judges' optional fields.
const (
	DefaultTolerance         = 1.2
	DefaultFalseRollbackRate = 0.01
	DefaultConfidence        = 0.95
	DefaultSeriesStep        = 10 * time.Second
)

// Evaluate runs one check through its judge and records the decision: what was asked, what came
// back, what it was held against and on how many requests.
func Evaluate(ctx context.Context, m v1alpha1.CanaryMetric, src Source, p Params) v1alpha1.Decision {
	switch {
	case m.Sequential != nil:
		return sequential(ctx, m, src, p)
	case m.Compare != nil && m.Compare.Method == v1alpha1.CompareMannWhitney:
		return mannWhitney(ctx, m, src, p)
	case m.Compare != nil:
		return compare(ctx, m, src, p)
	default:
		return threshold(ctx, m, src, p)
	}
}

// sampleSize counts the canary's requests for the record and holds back a verdict below
// minRequests. A count that cannot be had only matters when there is a minimum.
func sampleSize(ctx context.Context, m v1alpha1.CanaryMetric, src Source, p Params, sinceStep bool, d *v1alpha1.Decision) (enough bool) {
	n, err := src.Requests(ctx, SideCanary, sinceStep)
	if err == nil {
		d.SampleSize = int64(math.Round(n))
	}
	if p.MinRequests <= 0 {
		return true
	}
	if err != nil {
		setOutcome(d, m, fmt.Errorf("counting the canary's requests for minRequests: %w", err))
		return false
	}
	if d.SampleSize < p.MinRequests {
		d.Verdict = v1alpha1.VerdictNoData
		d.Message = fmt.Sprintf("%s has not enough traffic yet: the canary served %d requests, %d needed (minRequests).", m.Name, d.SampleSize, p.MinRequests)
		return false
	}
	return true
}

// setOutcome records a query that could not be judged: no data, or an error.
func setOutcome(d *v1alpha1.Decision, m v1alpha1.CanaryMetric, err error) {
	if errors.Is(err, ErrNoData) {
		d.Verdict = v1alpha1.VerdictNoData
		d.Message = fmt.Sprintf("%s has no data yet: %v.", m.Name, err)
		return
	}
	d.Verdict = v1alpha1.VerdictError
	d.Message = fmt.Sprintf("%s could not be evaluated: %v.", m.Name, err)
}

func threshold(ctx context.Context, m v1alpha1.CanaryMetric, src Source, p Params) v1alpha1.Decision {
	r := ptr.Deref(m.ThresholdRange, v1alpha1.ThresholdRange{})
	d := v1alpha1.Decision{Metric: m.Name, Judge: v1alpha1.JudgeThreshold, Bound: Bound(r)}
	value, query, err := src.Value(ctx, SideCanary)
	d.Query = query
	if err != nil {
		setOutcome(&d, m, err)
		return d
	}
	if !sampleSize(ctx, m, src, p, false, &d) {
		return d
	}
	d.Value = FormatValue(value)
	d.Verdict, _ = Judge(value, r)
	within := "within"
	if d.Verdict == v1alpha1.VerdictFail {
		within = "outside"
	}
	d.Message = fmt.Sprintf("%s is %s, %s %s%s.", m.Name, d.Value, within, d.Bound, overRequests(d.SampleSize))
	return d
}

func overRequests(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(", over %s canary requests", formatCount(n))
}

// Direction is the way a difference from the primary is a regression: the comparison's own, or
// the built-in check's.
func Direction(m v1alpha1.CanaryMetric) v1alpha1.ComparisonDirection {
	if m.Compare != nil && m.Compare.Direction != "" {
		return m.Compare.Direction
	}
	switch m.Name {
	case BuiltinRequestSuccessRate:
		return v1alpha1.DirectionDecrease
	case BuiltinRequestDuration:
		return v1alpha1.DirectionIncrease
	}
	return v1alpha1.DirectionEither
}

func compare(ctx context.Context, m v1alpha1.CanaryMetric, src Source, p Params) v1alpha1.Decision {
	c := *m.Compare
	judge := v1alpha1.JudgeRatio
	if c.Method == v1alpha1.CompareDifference {
		judge = v1alpha1.JudgeDifference
	}
	dir := Direction(m)
	d := v1alpha1.Decision{Metric: m.Name, Judge: judge, Bound: compareBound(judge, dir, c.Tolerance)}
	canary, query, err := src.Value(ctx, SideCanary)
	d.Query = query
	if err != nil {
		setOutcome(&d, m, err)
		return d
	}
	primary, pquery, err := src.Value(ctx, SidePrimary)
	d.PrimaryQuery = pquery
	if err != nil {
		setOutcome(&d, m, fmt.Errorf("the primary's value, to compare with: %w", err))
		return d
	}
	if !sampleSize(ctx, m, src, p, false, &d) {
		return d
	}
	if n, err := src.Requests(ctx, SidePrimary, false); err == nil {
		d.PrimarySampleSize = int64(math.Round(n))
	}
	d.Value, d.PrimaryValue = FormatValue(canary), FormatValue(primary)

	var low, high float64 // the canary's passing range, from the primary's value
	if judge == v1alpha1.JudgeRatio {
		low, high = primary*(1-c.Tolerance), primary*(1+c.Tolerance)
	} else {
		low, high = primary-c.Tolerance, primary+c.Tolerance
	}
	worse := (dir != v1alpha1.DirectionDecrease && canary > high) || (dir != v1alpha1.DirectionIncrease && canary < low)
	how := fmt.Sprintf("%s of the canary is %s against the primary's %s", m.Name, d.Value, d.PrimaryValue)
	if worse {
		d.Verdict = v1alpha1.VerdictFail
		d.Message = fmt.Sprintf("%s, beyond the tolerated %s%s.", how, d.Bound, overRequests(d.SampleSize))
	} else {
		d.Verdict = v1alpha1.VerdictPass
		d.Message = fmt.Sprintf("%s, within %s%s.", how, d.Bound, overRequests(d.SampleSize))
	}
	return d
}

func compareBound(judge v1alpha1.Judge, dir v1alpha1.ComparisonDirection, tol float64) string {
	t := FormatValue(tol)
	var hi, lo string
	if judge == v1alpha1.JudgeRatio {
		hi, lo = "primary x "+FormatValue(1+tol), "primary x "+FormatValue(1-tol)
	} else {
		hi, lo = "primary + "+t, "primary - "+t
	}
	switch dir {
	case v1alpha1.DirectionIncrease:
		return "<= " + hi
	case v1alpha1.DirectionDecrease:
		return ">= " + lo
	}
	return ">= " + lo + " and <= " + hi
}

func mannWhitney(ctx context.Context, m v1alpha1.CanaryMetric, src Source, p Params) v1alpha1.Decision {
	c := *m.Compare
	confidence := ptr.Deref(c.Confidence, DefaultConfidence)
	step := DefaultSeriesStep
	if s, err := time.ParseDuration(c.Step); err == nil && s > 0 {
		step = s
	}
	dir := Direction(m)
	d := v1alpha1.Decision{Metric: m.Name, Judge: v1alpha1.JudgeMannWhitney, Bound: shiftBound(dir, c.Tolerance, confidence)}
	x, query, err := src.Series(ctx, SideCanary, step)
	d.Query = query
	if err != nil {
		setOutcome(&d, m, err)
		return d
	}
	y, pquery, err := src.Series(ctx, SidePrimary, step)
	d.PrimaryQuery = pquery
	if err != nil {
		setOutcome(&d, m, fmt.Errorf("the primary's series, to compare with: %w", err))
		return d
	}
	// The record counts points, not requests: ask for the requests only to hold minRequests.
	if p.MinRequests > 0 && !sampleSize(ctx, m, src, p, true, &d) {
		return d
	}
	if len(x) < minSeriesPoints || len(y) < minSeriesPoints {
		d.Verdict = v1alpha1.VerdictNoData
		d.Message = fmt.Sprintf("%s has not enough points yet to compare: %d for the canary and %d for the primary, %d each needed (one every %s).", m.Name, len(x), len(y), minSeriesPoints, step)
		return d
	}
	est := EstimateShift(x, y, confidence)
	d.SampleSize, d.PrimarySampleSize = int64(len(x)), int64(len(y))
	d.Value, d.PrimaryValue = signed(est.Shift), FormatValue(median(y))
	worse := (dir != v1alpha1.DirectionDecrease && est.Low > c.Tolerance) || (dir != v1alpha1.DirectionIncrease && est.High < -c.Tolerance)
	how := fmt.Sprintf("%s of the canary differs from the primary's by %s (%s%% confidence interval %s to %s; Mann-Whitney p = %s over %d and %d points)",
		m.Name, signed(est.Shift), FormatValue(confidence*100), signed(est.Low), signed(est.High), formatP(est.P), len(x), len(y))
	if worse {
		d.Verdict = v1alpha1.VerdictFail
		d.Message = how + ", beyond the tolerated " + FormatValue(c.Tolerance) + "."
	} else {
		d.Verdict = v1alpha1.VerdictPass
		d.Message = how + ", not confidently beyond the tolerated " + FormatValue(c.Tolerance) + "."
	}
	return d
}

// median of a series, for the record of the primary's level.
func median(y []float64) float64 {
	s := slices.Clone(y)
	slices.Sort(s)
	return stat.Quantile(0.5, stat.LinInterp, s, nil)
}

func shiftBound(dir v1alpha1.ComparisonDirection, tol, confidence float64) string {
	t := FormatValue(tol)
	c := FormatValue(confidence*100) + "% confidence"
	switch dir {
	case v1alpha1.DirectionIncrease:
		return "shift <= +" + t + " (" + c + ")"
	case v1alpha1.DirectionDecrease:
		return "shift >= -" + t + " (" + c + ")"
	}
	return "shift within +/-" + t + " (" + c + ")"
}

func sequential(ctx context.Context, m v1alpha1.CanaryMetric, src Source, p Params) v1alpha1.Decision {
	s := *m.Sequential
	tol := ptr.Deref(s.Tolerance, DefaultTolerance)
	alpha := ptr.Deref(s.FalseRollbackRate, DefaultFalseRollbackRate)
	need := 1 / alpha
	d := v1alpha1.Decision{
		Metric: m.Name, Judge: v1alpha1.JudgeSequential,
		Bound: fmt.Sprintf("<= primary x %s (false rollbacks <= %s%%)", FormatValue(tol), FormatValue(alpha*100)),
	}
	canary, err := src.Counts(ctx, SideCanary)
	d.Query = canary.Query
	if err != nil {
		setOutcome(&d, m, err)
		return d
	}
	primary, err := src.Counts(ctx, SidePrimary)
	d.PrimaryQuery = primary.Query
	if err != nil {
		setOutcome(&d, m, fmt.Errorf("the primary's counts, to compare with: %w", err))
		return d
	}
	step := WeighOutcomes(canary.Requests, canary.Bad, primary.Requests, primary.Bad, tol)
	ev := v1alpha1.Evidence{Metric: m.Name}
	if p.Carried != nil {
		ev = *p.Carried
		ev.Metric = m.Name
	}
	ev.CanaryRequests += int64(math.Round(canary.Requests))
	ev.CanaryBad += int64(math.Round(canary.Bad))
	ev.PrimaryRequests += int64(math.Round(primary.Requests))
	ev.PrimaryBad += int64(math.Round(primary.Bad))
	ev.LogWorse += step.LogWorse
	ev.LogNotWorse += step.LogNotWorse
	d.Evidence = &ev
	d.SampleSize, d.PrimarySampleSize = ev.CanaryRequests, ev.PrimaryRequests
	d.Value = FormatValue(rate(ev.CanaryBad, ev.CanaryRequests))
	d.PrimaryValue = FormatValue(rate(ev.PrimaryBad, ev.PrimaryRequests))

	minimum := max(p.MinRequests, 1)
	if canary.Requests < float64(minimum) || primary.Requests <= 0 {
		d.Verdict = v1alpha1.VerdictNoData
		d.Message = fmt.Sprintf("%s has not enough traffic yet in this step: the canary served %s requests (%s needed) and the primary %s.",
			m.Name, formatCount(int64(math.Round(canary.Requests))), formatCount(minimum), formatCount(int64(math.Round(primary.Requests))))
		return d
	}
	what := outcomeName(m, s)
	rates := fmt.Sprintf("the canary's %s of %s%% (%s of %s requests) against the primary's %s%% (%s of %s)", what,
		d.Value, formatCount(ev.CanaryBad), formatCount(ev.CanaryRequests), d.PrimaryValue, formatCount(ev.PrimaryBad), formatCount(ev.PrimaryRequests))
	worse, notWorse := math.Exp(ev.LogWorse), math.Exp(ev.LogNotWorse)
	switch {
	case ev.LogWorse >= math.Log(need):
		d.Verdict, d.Conclusive = v1alpha1.VerdictFail, true
		d.Message = fmt.Sprintf("%s: %s is worse than %sx the primary's: the evidence reached %s, over the %s needed (falseRollbackRate %s%%).",
			m.Name, rates, FormatValue(tol), formatEvidence(worse), formatEvidence(need), FormatValue(alpha*100))
	case ev.LogNotWorse >= math.Log(need):
		d.Verdict, d.Conclusive = v1alpha1.VerdictPass, true
		d.Message = fmt.Sprintf("%s: %s is not worse than %sx the primary's: the evidence reached %s, over the %s needed.",
			m.Name, rates, FormatValue(tol), formatEvidence(notWorse), formatEvidence(need))
	default:
		d.Verdict = v1alpha1.VerdictPass
		d.Message = fmt.Sprintf("%s: no conclusion yet on %s: the evidence that it is worse than %sx the primary's is %s and that it is not %s, of the %s needed.",
			m.Name, rates, FormatValue(tol), formatEvidence(worse), formatEvidence(notWorse), formatEvidence(need))
	}
	return d
}

// outcomeName says what the sequential check counts, for messages.
func outcomeName(m v1alpha1.CanaryMetric, s v1alpha1.SequentialTest) string {
	switch {
	case m.TemplateRef != nil:
		return "rate of bad outcomes"
	case m.Name == BuiltinRequestDuration:
		return "share of requests slower than " + s.SlowerThan
	}
	return "error rate"
}

func rate(bad, requests int64) float64 {
	if requests <= 0 {
		return 0
	}
	return 100 * float64(bad) / float64(requests)
}

func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 10000 {
		return s
	}
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

func formatEvidence(e float64) string {
	switch {
	case e >= 1e6:
		return strconv.FormatFloat(e, 'e', 1, 64)
	case e >= 10:
		return strconv.FormatFloat(math.Round(e), 'f', -1, 64)
	default:
		return strconv.FormatFloat(e, 'g', 2, 64)
	}
}

func formatP(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

func signed(v float64) string {
	if v > 0 {
		return "+" + FormatValue(v)
	}
	return FormatValue(v)
}
