package scale

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
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
	// metric is the series it was read from.
	metric string
}

// The lateness histograms, best first: the controller's own, with buckets from 1ms to 300s, and
// controller-runtime's workqueue wait of the canary queue, whose buckets are powers of ten (the
// only one a controller built before trafficctl_reconcile_lateness_seconds has).
const (
	latenessMetric  = "trafficctl_reconcile_lateness_seconds"
	queueWaitMetric = "workqueue_queue_duration_seconds"
)

// scrapeLateness reads how long each Canary waited in the workqueue after it was due.
func scrapeLateness(url string) (histogram, error) {
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
	read := func(m *dto.Metric, name string) histogram {
		h := m.GetHistogram()
		out := histogram{total: float64(h.GetSampleCount()), metric: name}
		for _, b := range h.GetBucket() {
			out.bounds = append(out.bounds, b.GetUpperBound())
			out.counts = append(out.counts, float64(b.GetCumulativeCount()))
		}
		return out
	}
	if fam, ok := families[latenessMetric]; ok && len(fam.GetMetric()) > 0 {
		return read(fam.GetMetric()[0], latenessMetric), nil
	}
	for _, m := range families[queueWaitMetric].GetMetric() {
		if label(m, "name") == "canary" {
			return read(m, queueWaitMetric), nil
		}
	}
	return histogram{}, fmt.Errorf("%s has neither %s nor %s of queue canary", url, latenessMetric, queueWaitMetric)
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
	out := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), total: h.total - earlier.total, metric: h.metric}
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

// pprofAddress is the --pprof-bind-address among the controller's args, "" when there is none.
func pprofAddress(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--pprof-bind-address="); ok {
			return v
		}
		if a == "--pprof-bind-address" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// liveHeap asks the controller's pprof endpoint for a heap profile after a garbage collection
// (gc=1) and reads the bytes allocated and not freed from the runtime statistics it ends with.
func liveHeap(base string) (int64, error) {
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(base + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return 0, fmt.Errorf("reading the controller's heap: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s/debug/pprof/heap has no HeapAlloc", base)
}
