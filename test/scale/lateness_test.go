package scale

import (
	"math"
	"testing"
)

func TestHistogramQuantile(t *testing.T) {
	// 100 waits: 90 under 1ms, 5 between 1ms and 1s, 5 between 1s and 10s.
	h := histogram{bounds: []float64{0.001, 1, 10, 100}, counts: []float64{90, 95, 100, 100}, total: 100}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.5, 0.001 * 50 / 90},
		{0.9, 0.001},
		{0.99, 1 + 9*4.0/5},
		{1, 10},
	} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := h.over(1); math.Abs(got-0.05) > 1e-9 {
		t.Errorf("over(1) = %v, want 0.05", got)
	}
	earlier := histogram{bounds: h.bounds, counts: []float64{80, 80, 80, 80}, total: 80}
	// Since then: 10 under 1ms, 5 up to 1s, 5 up to 10s.
	if got := h.since(earlier).quantile(0.75); got != 1 {
		t.Errorf("the 20 waits since: p75 %v, want 1s", got)
	}
	if got := describeBound(0.0421234); got != "42.12ms" {
		t.Errorf("describeBound = %q", got)
	}
}
