package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"gonum.org/v1/gonum/stat/distuv"
)

func TestEstimateShiftOnKnownSamples(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5}
	y := []float64{6, 7, 8, 9, 10}
	est := EstimateShift(x, y, 0.95)
	assert.Equal(t, -5.0, est.Shift, "the median of the pairwise differences")
	// U = 0: z = (12.5 - 0.5) / sqrt(25*11/12) = 2.507, p = 2*(1-Phi(z)) = 0.0122.
	assert.InDelta(t, 0.0122, est.P, 0.0005)
	// k = floor(12.5 - 1.96*4.787) = 3: the 3rd smallest and largest of the 25 differences
	// -9, -8, -8, -7, ..., -2, -2, -1.
	assert.Equal(t, -8.0, est.Low)
	assert.Equal(t, -2.0, est.High)

	same := EstimateShift([]float64{3, 3, 3, 3, 3}, []float64{3, 3, 3, 3, 3}, 0.95)
	assert.Equal(t, 1.0, same.P, "identical series are alike")
	assert.Equal(t, 0.0, same.Shift)
}

// The interval must cover the true shift as often as its confidence says, or the judge would
// fail healthy canaries more often than it promises.
func TestEstimateShiftCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const trials, n, shift = 2000, 12, 5.0
	normal := distuv.Normal{Mu: 100, Sigma: 5, Src: rng}
	var missed, rejectedAlike int
	for range trials {
		x, y := make([]float64, n), make([]float64, n)
		for i := range n {
			x[i], y[i] = normal.Rand()+shift, normal.Rand()
		}
		est := EstimateShift(x, y, 0.95)
		if est.Low > shift || est.High < shift {
			missed++
		}
		if est.P < 0.05 {
			rejectedAlike++
		}
	}
	missRate := float64(missed) / trials
	assert.InDelta(t, 0.05, missRate, 0.02, "the 95%% interval misses the true shift about 5%% of the time")
	assert.Greater(t, float64(rejectedAlike)/trials, 0.5, "a shift of one standard deviation over 12 points a side is usually seen")
}

// stream is Poisson traffic to a canary at a share of the requests, whose bad-outcome rate is rho
// times the primary's, counted since the start.
type stream struct {
	rps, share                    float64
	nc, kc, np, kp                float64
	canaryPoisson, primaryPoisson distuv.Poisson
}

func newStream(seed uint64, rps, share, baseRate, rho float64) *stream {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := &stream{rps: rps, share: share}
	s.canaryPoisson = distuv.Poisson{Lambda: rps * share * baseRate * rho, Src: rng}
	s.primaryPoisson = distuv.Poisson{Lambda: rps * (1 - share) * baseRate, Src: rng}
	return s
}

func (s *stream) second() {
	s.nc += s.rps * s.share
	s.np += s.rps * (1 - s.share)
	s.kc += s.canaryPoisson.Rand()
	s.kp += s.primaryPoisson.Rand()
}

// However often it looks, a canary exactly at the tolerance is declared worse at most as often
// as falseRollbackRate allows, and so is one declared not worse.
func TestWeighOutcomesKeepsItsErrorRateUnderRepeatedLooks(t *testing.T) {
	const runs, alpha, tolerance = 1500, 0.05, 1.5
	// Monte Carlo noise on a rate near alpha over these runs is about 0.6 points; allow two of it.
	const slack = 2 * 0.0056
	need := math.Log(1 / alpha)
	var worse, notWorse int
	for run := range runs {
		s := newStream(uint64(run), 100, 0.1, 0.01, tolerance)
		for sec := range 300 { // five minutes, a look every two seconds
			s.second()
			if sec%2 == 0 {
				continue
			}
			ev := WeighOutcomes(s.nc, s.kc, s.np, s.kp, tolerance)
			if ev.LogWorse >= need {
				worse++
				break
			}
		}
		s = newStream(uint64(run)+runs, 100, 0.1, 0.01, tolerance)
		for sec := range 300 {
			s.second()
			if sec%2 == 1 && WeighOutcomes(s.nc, s.kc, s.np, s.kp, tolerance).LogNotWorse >= need {
				notWorse++
				break
			}
		}
	}
	t.Logf("at the tolerance, %d of %d runs concluded worse and %d not worse", worse, runs, notWorse)
	assert.LessOrEqual(t, float64(worse)/runs, alpha+slack, "false 'worse' conclusions at the tolerance")
	assert.LessOrEqual(t, float64(notWorse)/runs, alpha+slack, "false 'not worse' conclusions at the tolerance")
	assert.Positive(t, worse+notWorse, "the bound is approached, so the test is not vacuous")
}

func TestWeighOutcomesDecidesClearCases(t *testing.T) {
	need := math.Log(100)
	lookUntil := func(s *stream, limit int, done func(StepEvidence) bool) int {
		for sec := 1; sec <= limit; sec++ {
			s.second()
			if done(WeighOutcomes(s.nc, s.kc, s.np, s.kp, 1.5)) {
				return sec
			}
		}
		return -1
	}
	// 2% errors against 0.1% on 5% of 100 rps: one canary error every 10 seconds.
	var detected []int
	for seed := range 200 {
		sec := lookUntil(newStream(uint64(seed), 100, 0.05, 0.001, 20), 600, func(e StepEvidence) bool { return e.LogWorse >= need })
		assert.Positive(t, sec, "a 20x worse canary is always caught within ten minutes (seed %d)", seed)
		detected = append(detected, sec)
	}
	assert.Less(t, medianInt(detected), 60, "and usually within a minute")

	// A canary ten times better than tolerance at 50% of traffic with 5% slow requests is
	// shown not worse.
	sec := lookUntil(newStream(1, 100, 0.5, 0.05, 0.15), 600, func(e StepEvidence) bool { return e.LogNotWorse >= need })
	assert.Positive(t, sec)

	assert.Equal(t, StepEvidence{}, WeighOutcomes(100, 0, 1000, 0, 1.5), "no bad outcomes, no evidence")
	assert.Equal(t, StepEvidence{}, WeighOutcomes(0, 0, 1000, 3, 1.5), "no canary traffic, no evidence")
}

func medianInt(v []int) int {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// The cost of one look of a sequential check, for the notes: it runs once per check interval
// per Canary, inside a reconcile.
func BenchmarkWeighOutcomes(b *testing.B) {
	for b.Loop() {
		WeighOutcomes(3000, 7, 57000, 57, 1.2)
	}
}

// A Mann-Whitney comparison of an hour of 10-second points a side.
func BenchmarkEstimateShift(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := make([]float64, 360), make([]float64, 360)
	for i := range x {
		x[i], y[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	b.ResetTimer()
	for b.Loop() {
		EstimateShift(x, y, 0.95)
	}
}
