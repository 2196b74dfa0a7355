package testprom

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Names of the series the Exporter serves, for building queries.
const (
	RequestsTotal   = "http_requests_total"
	RequestDuration = "http_request_duration_seconds"
)

// latencyBuckets are the histogram's upper bounds in seconds: client_golang's defaults, which
// are what most instrumented applications expose.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// LatencyBuckets returns the upper bounds, in seconds, of the latency histogram's buckets, so
// that a test can tell which bucket a quantile must fall into.
func LatencyBuckets() []float64 { return slices.Clone(latencyBuckets) }

// Traffic is the load one pod serves per scrape.
type Traffic struct {
	// RequestsPerScrape is how many requests the pod's counters advance by on every scrape.
	// Zero keeps the series present but flat, so a success-rate ratio evaluates to 0/0.
	RequestsPerScrape int
	// ErrorRatio is the share of those requests, between 0 and 1, answered with code 500;
	// round(ErrorRatio*RequestsPerScrape) of them, the rest with code 200.
	ErrorRatio float64
	// Latency is the duration every request is observed at in the histogram.
	Latency time.Duration
}

type podKey struct{ namespace, pod string }

// podSeries holds the cumulative values of one pod's series.
type podSeries struct {
	traffic Traffic
	ok      uint64
	errors  uint64
	buckets []uint64 // cumulative count per entry of latencyBuckets
	count   uint64
	sumSecs float64
}

// Exporter serves /metrics on a loopback port with series whose growth the test sets. It is
// safe for concurrent use.
type Exporter struct {
	listener  net.Listener
	server    *http.Server
	served    chan struct{}
	series    *collector
	closeOnce sync.Once
}

// collector holds every pod's series and advances them each time the registry gathers.
type collector struct {
	requestsDesc *prometheus.Desc
	durationDesc *prometheus.Desc

	mu      sync.Mutex
	pods    map[podKey]*podSeries
	scrapes int
}

// StartExporter starts an Exporter that is closed when the test ends.
func StartExporter(t testing.TB) *Exporter {
	t.Helper()
	e, err := NewExporter()
	if err != nil {
		t.Fatalf("start metrics exporter: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// NewExporter starts an Exporter on a free port of 127.0.0.1. The caller must Close it.
func NewExporter() (*Exporter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for metrics exporter: %w", err)
	}
	e := &Exporter{
		listener: l,
		served:   make(chan struct{}),
		series: &collector{
			requestsDesc: prometheus.NewDesc(RequestsTotal, "Requests served, by response code.",
				[]string{"namespace", "pod", "code"}, nil),
			durationDesc: prometheus.NewDesc(RequestDuration, "Request latency.",
				[]string{"namespace", "pod"}, nil),
			pods: map[podKey]*podSeries{},
		},
	}
	registry := prometheus.NewPedanticRegistry()
	if err := registry.Register(e.series); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("register exporter collector: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	e.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(e.served)
		_ = e.server.Serve(l) // returns http.ErrServerClosed after Close
	}()
	return e, nil
}

// Addr is the exporter's host:port, the form a Prometheus scrape target takes.
func (e *Exporter) Addr() string { return e.listener.Addr().String() }

// URL is the address of the exporter's /metrics page.
func (e *Exporter) URL() string { return "http://" + e.Addr() + "/metrics" }

// SetTraffic makes the pod's series advance by t on every later scrape, starting them if the
// pod has none yet; counters already served keep their values. It panics on a negative request
// count or latency or an error ratio outside [0, 1], which are mistakes in the test.
func (e *Exporter) SetTraffic(namespace, pod string, t Traffic) {
	if t.RequestsPerScrape < 0 || t.Latency < 0 || t.ErrorRatio < 0 || t.ErrorRatio > 1 || math.IsNaN(t.ErrorRatio) {
		panic(fmt.Sprintf("testprom: invalid traffic for %s/%s: %+v", namespace, pod, t))
	}
	c := e.series
	c.mu.Lock()
	defer c.mu.Unlock()
	key := podKey{namespace, pod}
	s, ok := c.pods[key]
	if !ok {
		s = &podSeries{buckets: make([]uint64, len(latencyBuckets))}
		c.pods[key] = s
	}
	s.traffic = t
}

// RemoveTraffic drops the pod's series from later scrapes, as when the pod is deleted;
// Prometheus then marks them stale. Setting traffic again starts the counters from zero.
func (e *Exporter) RemoveTraffic(namespace, pod string) {
	c := e.series
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pods, podKey{namespace, pod})
}

// Scrapes is how many times /metrics has been served, so that a test can wait for Prometheus
// to have scraped the exporter.
func (e *Exporter) Scrapes() int {
	c := e.series
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scrapes
}

// Close stops serving. It is safe to call more than once.
func (e *Exporter) Close() {
	e.closeOnce.Do(func() {
		_ = e.server.Close()
		<-e.served
	})
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requestsDesc
	ch <- c.durationDesc
}

// Collect implements prometheus.Collector. The registry calls it once per scrape, which is
// when every pod's traffic advances. The registry sorts what it gathers, so the map's order
// does not show.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scrapes++
	for key, s := range c.pods {
		s.advance()
		ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(s.ok), key.namespace, key.pod, "200")
		ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(s.errors), key.namespace, key.pod, "500")
		buckets := make(map[float64]uint64, len(latencyBuckets))
		for i, le := range latencyBuckets {
			buckets[le] = s.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.durationDesc, s.count, s.sumSecs, buckets, key.namespace, key.pod)
	}
}

// advance adds one scrape's worth of requests.
func (s *podSeries) advance() {
	n := uint64(s.traffic.RequestsPerScrape)
	failed := uint64(math.Round(s.traffic.ErrorRatio * float64(n)))
	s.errors += failed
	s.ok += n - failed
	s.count += n
	secs := s.traffic.Latency.Seconds()
	s.sumSecs += float64(n) * secs
	for i, le := range latencyBuckets {
		if secs <= le {
			s.buckets[i] += n
		}
	}
}
