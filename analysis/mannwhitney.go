package analysis

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// minSeriesPoints is the fewest points per side a Mann-Whitney comparison judges on: with fewer,
// even a complete separation of the two series is not significant at 95%.
const minSeriesPoints = 5

// ShiftEstimate compares two samples without assuming a distribution: the Hodges-Lehmann
// estimate of how far x lies above y (the median of all pairwise differences), its confidence
// interval, and the two-sided p-value of the Mann-Whitney U test that the two are alike.
type ShiftEstimate struct {
	Shift, Low, High float64
	P                float64
}

// EstimateShift compares x (the canary's series) with y (the primary's) at the given
// confidence. U's distribution is taken as normal, with the correction for ties, which is close
// from five points a side; both need at least minSeriesPoints.
func EstimateShift(x, y []float64, confidence float64) ShiftEstimate {
	n1, n2 := float64(len(x)), float64(len(y))
	u, tieTerm := mannWhitneyU(x, y)
	mean := n1 * n2 / 2
	sd := math.Sqrt(n1 * n2 / 12 * ((n1 + n2 + 1) - tieTerm/((n1+n2)*(n1+n2-1))))

	est := ShiftEstimate{P: 1}
	if sd > 0 {
		// Continuity correction towards the mean.
		z := math.Max(math.Abs(u-mean)-0.5, 0) / sd
		est.P = math.Min(1, 2*distuv.UnitNormal.Survival(z))
	}

	diffs := make([]float64, 0, len(x)*len(y))
	for _, a := range x {
		for _, b := range y {
			diffs = append(diffs, a-b)
		}
	}
	slices.Sort(diffs)
	est.Shift = stat.Quantile(0.5, stat.LinInterp, diffs, nil)
	// The interval's ends are the k-th smallest and largest differences, where k is U's lower
	// critical value at the confidence (without the tie correction, as usual for the interval).
	zc := distuv.UnitNormal.Quantile(1 - (1-confidence)/2)
	k := int(math.Floor(mean - zc*math.Sqrt(n1*n2*(n1+n2+1)/12)))
	k = min(max(k, 0), len(diffs)/2)
	if k == 0 {
		est.Low, est.High = math.Inf(-1), math.Inf(1)
	} else {
		est.Low, est.High = diffs[k-1], diffs[len(diffs)-k]
	}
	return est
}

// mannWhitneyU is U of x (how many pairs have x above y, ties counting a half) and the tie
// term sum(t^3 - t) over groups of tied values in the pooled sample.
func mannWhitneyU(x, y []float64) (u, tieTerm float64) {
	type obs struct {
		v    float64
		from int
	}
	pooled := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		pooled = append(pooled, obs{v, 0})
	}
	for _, v := range y {
		pooled = append(pooled, obs{v, 1})
	}
	slices.SortFunc(pooled, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	var rankSumX float64
	for i := 0; i < len(pooled); {
		j := i
		for j < len(pooled) && pooled[j].v == pooled[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mid-rank of positions i..j-1, 1-based
		for _, o := range pooled[i:j] {
			if o.from == 0 {
				rankSumX += rank
			}
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		i = j
	}
	n1 := float64(len(x))
	return rankSumX - n1*(n1+1)/2, tieTerm
}
