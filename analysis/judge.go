package analysis

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/metrics"
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

// Decide turns one query's outcome into a Decision: a value is judged against the range, no
// data is NoData, any other error is Error. Neither NoData nor Error counts as a failed check.
func Decide(m v1alpha1.CanaryMetric, query string, value float64, queryErr error) v1alpha1.Decision {
	d := v1alpha1.Decision{Metric: m.Name, Query: query, Bound: Bound(ptr.Deref(m.ThresholdRange, v1alpha1.ThresholdRange{}))}
	switch {
	case errors.Is(queryErr, metrics.ErrNoData):
		d.Verdict = v1alpha1.VerdictNoData
		d.Message = fmt.Sprintf("%s has no data yet: %v.", m.Name, queryErr)
	case queryErr != nil:
		d.Verdict = v1alpha1.VerdictError
		d.Message = fmt.Sprintf("%s could not be evaluated: %v.", m.Name, queryErr)
	default:
		d.Value = FormatValue(value)
		d.Verdict, _ = Judge(value, *m.ThresholdRange)
		if d.Verdict == v1alpha1.VerdictPass {
			d.Message = fmt.Sprintf("%s is %s, within %s.", m.Name, d.Value, d.Bound)
		} else {
			d.Message = fmt.Sprintf("%s is %s, outside %s.", m.Name, d.Value, d.Bound)
		}
	}
	return d
}
