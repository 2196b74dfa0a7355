package simulation

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// source answers one check's queries from the simulated counters, the way the built-in
// queries answer them from Prometheus: rates over the lookback, counts since the step began.
type source struct {
	traffic   *traffic
	metric    v1alpha1.CanaryMetric
	now       int // seconds since the rollout began
	stepStart int
	lookback  int
}

var _ analysis.Source = (*source)(nil)

func side(s analysis.Side) int {
	if s == analysis.SidePrimary {
		return 1
	}
	return 0
}

func (s *source) value(c counters) (float64, error) {
	switch s.metric.Name {
	case analysis.BuiltinRequestSuccessRate:
		if c.requests == 0 {
			return 0, fmt.Errorf("no requests in the window: %w", analysis.ErrNoData)
		}
		return 100 * (1 - c.errors/c.requests), nil
	case analysis.BuiltinRequestDuration:
		v := quantile(0.99, c)
		if math.IsNaN(v) {
			return 0, fmt.Errorf("no requests in the window: %w", analysis.ErrNoData)
		}
		return 1000 * v, nil
	case analysis.BuiltinRequestRate:
		return c.requests / float64(max(s.lookback, 1)), nil
	}
	return 0, fmt.Errorf("the simulation has no metric %q", s.metric.Name)
}

func (s *source) Value(_ context.Context, sd analysis.Side) (float64, string, error) {
	v, err := s.value(s.traffic.delta(side(sd), s.now-s.lookback, s.now))
	return v, "simulated " + s.metric.Name, err
}

func (s *source) Series(_ context.Context, sd analysis.Side, step time.Duration) ([]float64, string, error) {
	width := int(step / time.Second)
	var out []float64
	for end := s.stepStart + width; end <= s.now; end += width {
		if v, err := s.value(s.traffic.delta(side(sd), end-width, end)); err == nil {
			out = append(out, v)
		}
	}
	return out, "simulated " + s.metric.Name + " series", nil
}

func (s *source) Counts(_ context.Context, sd analysis.Side) (analysis.Counts, error) {
	c := s.traffic.delta(side(sd), s.stepStart, s.now)
	out := analysis.Counts{Requests: c.requests, Query: "simulated " + s.metric.Name + " outcomes"}
	switch s.metric.Name {
	case analysis.BuiltinRequestSuccessRate:
		out.Bad = c.errors
	case analysis.BuiltinRequestDuration:
		bound, err := time.ParseDuration(s.metric.Sequential.SlowerThan)
		if err != nil {
			return out, err
		}
		slow, ok := slower(c, bound.Seconds())
		if !ok {
			return out, fmt.Errorf("no histogram bucket at %s: %w", bound, analysis.ErrNoData)
		}
		out.Bad = slow
	default:
		return out, fmt.Errorf("the simulation counts no outcomes of %q", s.metric.Name)
	}
	return out, nil
}

func (s *source) Requests(_ context.Context, sd analysis.Side, sinceStep bool) (float64, error) {
	from := s.now - s.lookback
	if sinceStep {
		from = s.stepStart
	}
	return s.traffic.delta(side(sd), from, s.now).requests, nil
}
