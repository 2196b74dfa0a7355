package analysis

import (
	"math"
	"strconv"
	"strings"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Judge holds a value against a threshold range. The bound is rendered for people, such as
// ">= 99" or ">= 99 and <= 100".
func Judge(value float64, r v1alpha1.ThresholdRange) (verdict v1alpha1.Verdict, bound string) {
	bound = Bound(r)
	if r.Min != nil && value < *r.Min {
		return v1alpha1.VerdictFail, bound
	}
	if r.Max != nil && value > *r.Max {
		return v1alpha1.VerdictFail, bound
	}
	return v1alpha1.VerdictPass, bound
}

// Bound renders a threshold range for people.
func Bound(r v1alpha1.ThresholdRange) string {
	var parts []string
	if r.Min != nil {
		parts = append(parts, ">= "+FormatValue(*r.Min))
	}
	if r.Max != nil {
		parts = append(parts, "<= "+FormatValue(*r.Max))
	}
	return strings.Join(parts, " and ")
}

// FormatValue renders a metric value with no more digits than it needs.
func FormatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
