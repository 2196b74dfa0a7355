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

// quantile is the upper bound of the bucket that holds quantile q: the wait is at most that.
// The buckets of controller-runtime's workqueue histogram are powers of ten.
func (h histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := q * h.total
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	if i == len(h.counts) {
		return math.Inf(1)
	}
	return h.bounds[i]
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

// describe puts a quantile's bound in words: "≤ 10ms".
func describeBound(s float64) string {
	if math.IsInf(s, 1) {
		return "> 1000s"
	}
	if s == 0 {
		return "—"
	}
	return "≤ " + time.Duration(math.Round(s*1e9)).String()
}
