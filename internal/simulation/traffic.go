package simulation

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// Version is how one version of the application behaves.
type Version struct {
	// ErrorRate is the share of requests answered with an error, such as 0.001.
	ErrorRate float64
	// MedianLatency and LatencySigma describe a log-normal latency, in seconds.
	MedianLatency, LatencySigma float64
	// ExtraLatency is added to every request, in seconds, such as a regression of 0.05.
	ExtraLatency float64
}

// Buckets are the latency histogram's upper bounds in seconds: client_golang's defaults, which
// is what an instrumented application exposes.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}

// counters are one side's cumulative counts, as Prometheus would scrape them.
type counters struct {
	requests, errors float64
	buckets          []float64 // cumulative per entry of Buckets, as histogram buckets are
}

func newCounters() counters { return counters{buckets: make([]float64, len(Buckets))} }

func (c counters) clone() counters {
	c.buckets = append([]float64(nil), c.buckets...)
	return c
}

// traffic is the requests of one rollout, second by second, for both sides.
type traffic struct {
	rng     *rand.Rand
	arrival distuv.Poisson
	// history[side][t] is side's counters at the end of second t (history[side][0] is zero).
	history [2][]counters
}

func newTraffic(rng *rand.Rand, rps float64) *traffic {
	t := &traffic{rng: rng, arrival: distuv.Poisson{Lambda: rps, Src: rng}}
	for side := range t.history {
		t.history[side] = []counters{newCounters()}
	}
	return t
}

// second serves one second of requests: canaryShare (0..1) of them to canary, the rest to
// primary. It returns how many the canary served, and how many of those failed.
func (t *traffic) second(canaryShare float64, canary, primary Version) (canaryServed, canaryFailed float64) {
	n := int(t.arrival.Rand())
	var served [2]int
	for range n {
		if t.rng.Float64() < canaryShare {
			served[0]++
		} else {
			served[1]++
		}
	}
	for side, v := range []Version{canary, primary} {
		c := t.history[side][len(t.history[side])-1].clone()
		for range served[side] {
			c.requests++
			if t.rng.Float64() < v.ErrorRate {
				c.errors++
				if side == 0 {
					canaryFailed++
				}
			}
			latency := v.MedianLatency*math.Exp(v.LatencySigma*t.rng.NormFloat64()) + v.ExtraLatency
			for i, le := range Buckets {
				if latency <= le {
					c.buckets[i]++
				}
			}
		}
		t.history[side] = append(t.history[side], c)
	}
	return float64(served[0]), canaryFailed
}

// delta is what side served in the seconds (from, to], clamped to what exists.
func (t *traffic) delta(side, from, to int) counters {
	h := t.history[side]
	from, to = max(0, min(from, len(h)-1)), max(0, min(to, len(h)-1))
	a, b := h[from], h[to]
	d := counters{requests: b.requests - a.requests, errors: b.errors - a.errors, buckets: make([]float64, len(Buckets))}
	for i := range d.buckets {
		d.buckets[i] = b.buckets[i] - a.buckets[i]
	}
	return d
}

// quantile is histogram_quantile as Prometheus computes it: linear within the bucket the rank
// falls into, the lower bound of the first bucket being 0.
func quantile(q float64, c counters) float64 {
	total := c.buckets[len(c.buckets)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, le := range Buckets {
		if c.buckets[i] >= rank {
			if math.IsInf(le, 1) {
				return Buckets[len(Buckets)-2]
			}
			in := c.buckets[i] - below
			if in == 0 {
				return le
			}
			return lower + (le-lower)*(rank-below)/in
		}
		lower, below = le, c.buckets[i]
	}
	return math.NaN()
}

// slower counts the requests slower than bound, which must be a bucket bound.
func slower(c counters, bound float64) (float64, bool) {
	for i, le := range Buckets {
		if math.Abs(le-bound) < 1e-12 {
			return c.buckets[len(c.buckets)-1] - c.buckets[i], true
		}
	}
	return 0, false
}
