package scale

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// histogram is a cumulative histogram as Prometheus exposes it: counts of observations at most
// each upper bound.
type histogram struct {
	bounds []float64
	counts []float64
	total  float64
}

// scrapeQueueDuration reads workqueue_queue_duration_seconds of the canary controller's queue:
// how long each Canary waited in the workqueue before a worker took it.
func scrapeQueueDuration(url string) (histogram, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return histogram{}, fmt.Errorf("parsing %s: %w", url, err)
	}
	fam, ok := families["workqueue_queue_duration_seconds"]
	if !ok {
		return histogram{}, fmt.Errorf("%s has no workqueue_queue_duration_seconds", url)
	}
	for _, m := range fam.GetMetric() {
		if label(m, "name") != "canary" {
			continue
		}
		h := m.GetHistogram()
		out := histogram{total: float64(h.GetSampleCount())}
		for _, b := range h.GetBucket() {
			out.bounds = append(out.bounds, b.GetUpperBound())
			out.counts = append(out.counts, float64(b.GetCumulativeCount()))
		}
		return out, nil
	}
	return histogram{}, fmt.Errorf("%s has no workqueue_queue_duration_seconds of queue canary", url)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// since is what was observed after earlier.
func (h histogram) since(earlier histogram) histogram {
	out := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), total: h.total - earlier.total}
	for i := range h.counts {
		out.counts[i] = h.counts[i]
		if i < len(earlier.counts) {
			out.counts[i] -= earlier.counts[i]
		}
	}
	return out
}

// quantile is quantile q of the waits, interpolated linearly within its bucket as Prometheus'
// histogram_quantile does. The buckets of controller-runtime's workqueue histogram are powers of
// ten, so read it with its bucket (bucket gives the bounds).
func (h histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := q * h.total
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	if i == len(h.counts) {
		return math.Inf(1)
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = h.bounds[i-1], h.counts[i-1]
	}
	in := h.counts[i] - below
	if in <= 0 {
		return h.bounds[i]
	}
	return lower + (h.bounds[i]-lower)*(rank-below)/in
}

// over is the share of waits longer than bound seconds.
func (h histogram) over(bound float64) float64 {
	if h.total == 0 {
		return 0
	}
	for i, b := range h.bounds {
		if b >= bound {
			return 1 - h.counts[i]/h.total
		}
	}
	return 0
}

// describeBound puts a quantile in words: "42ms".
func describeBound(s float64) string {
	if math.IsInf(s, 1) {
		return "> 1000s"
	}
	if s == 0 {
		return "—"
	}
	d := time.Duration(math.Round(s * 1e9))
	switch {
	case d >= time.Second:
		d = d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		d = d.Round(10 * time.Microsecond)
	}
	return d.String()
}
