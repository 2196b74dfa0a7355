package analysis

import (
	"math"

	"gonum.org/v1/gonum/floats"
)

// The sequential test weighs the canary's rate of bad outcomes (errors, slow requests) against
// the primary's.
//
// Model: bad outcomes arrive on each side as a Poisson process, at rates n_c*p_c and n_p*p_p
// for n requests at bad-outcome probability p. Given that a bad outcome happened, it came from
// the canary with probability theta = rho*r / (1 + rho*r), where r = n_c/n_p is the split of
// requests and rho = p_c/p_p the ratio of bad-outcome rates. Conditioning on the split removes
// the primary's unknown rate, so the test needs no baseline and works at any weight, for A/B
// cohorts too.
//
// Hypotheses, at the tolerance rho0: "worse" rejects rho <= rho0; "not worse" rejects
// rho >= rho0. For each, the e-value is the likelihood ratio mixed over a grid of alternatives
// beyond rho0 (a uniform prior on log(rho/rho0)). Under its hypothesis each such ratio is a
// non-negative supermartingale, and so is their mixture and the product of one mixture per
// step, so by Ville's inequality the chance that it ever reaches 1/alpha is at most alpha: the
// test may look after every request without raising its error rate.

// The grids of alternatives, as log(rho/rho0): up to 150 times worse than tolerance for
// "worse", and down to 20 times better for "not worse" (a canary better than that is rare and
// needs no finer prior).
var (
	worseGrid    = logRatioGrid(0.05, 5)
	notWorseGrid = logRatioGrid(-0.05, -3)
)

func logRatioGrid(step, end float64) []float64 {
	n := int(math.Round(end / step))
	grid := make([]float64, n)
	for i := range grid {
		grid[i] = float64(i+1) * step
	}
	return grid
}

// StepEvidence is what one step's counts say about each hypothesis: the natural logs of the
// mixture likelihood ratios.
type StepEvidence struct {
	LogWorse, LogNotWorse float64
}

// WeighOutcomes returns the evidence of one step in which the canary served canaryRequests with
// canaryBad bad outcomes and the primary primaryRequests with primaryBad, against the tolerance
// rho0 (>= 1). Counts are rounded: Prometheus' increase() extrapolates to fractions.
func WeighOutcomes(canaryRequests, canaryBad, primaryRequests, primaryBad, rho0 float64) StepEvidence {
	kc, kp := math.Round(math.Max(canaryBad, 0)), math.Round(math.Max(primaryBad, 0))
	if canaryRequests <= 0 || primaryRequests <= 0 || kc+kp == 0 {
		return StepEvidence{}
	}
	// r0 is the odds of a bad outcome coming from the canary at the tolerance.
	r0 := rho0 * canaryRequests / primaryRequests
	return StepEvidence{
		LogWorse:    mixture(worseGrid, kc, kp, r0),
		LogNotWorse: mixture(notWorseGrid, kc, kp, r0),
	}
}

// mixture is log of the mean over grid of the likelihood ratios of rho0*e^beta against rho0.
func mixture(grid []float64, kc, kp, r0 float64) float64 {
	k := kc + kp
	base := math.Log1p(r0)
	terms := make([]float64, len(grid))
	for i, beta := range grid {
		terms[i] = kc*beta - k*(math.Log1p(r0*math.Exp(beta))-base)
	}
	return floats.LogSumExp(terms) - math.Log(float64(len(grid)))
}
