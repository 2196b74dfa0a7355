package testprom

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Names of the series the Exporter serves, for building queries.
const (
	// RequestsTotal and RequestDuration are the application's own series, per pod.
	RequestsTotal   = "http_requests_total"
	RequestDuration = "http_request_duration_seconds"

	// IstioRequestsTotal and IstioRequestDuration are what an Istio sidecar reports, as the
	// destination, about the requests its pod served.
	IstioRequestsTotal   = "istio_requests_total"
	IstioRequestDuration = "istio_request_duration_milliseconds"

	// EnvoyUpstreamRequests and EnvoyUpstreamRequestTime are what an Envoy proxy (of Contour or
	// Envoy Gateway) reports about each upstream cluster. The counter has no _total suffix.
	EnvoyUpstreamRequests    = "envoy_cluster_upstream_rq"
	EnvoyUpstreamRequestTime = "envoy_cluster_upstream_rq_time"
)

// DefaultServicePort is the port in an Envoy cluster's name when Traffic names none.
const DefaultServicePort = 80

// latencyBuckets are the application histogram's upper bounds in seconds: client_golang's
// defaults, which are what most instrumented applications expose.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// meshLatencyBuckets are the upper bounds in milliseconds of the Istio and Envoy histograms,
// the same as the e2e data plane's (test/e2e/dataplane).
var meshLatencyBuckets = []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// istioLabels are the labels of the Istio series: the pod's namespace and name, as a
// kubernetes-pods scrape of the sidecar adds them, then the e2e data plane's Istio labels.
var istioLabels = []string{
	"namespace", "pod",
	"reporter",
	"destination_workload", "destination_workload_namespace",
	"destination_service_name", "destination_service_namespace",
	"response_code",
}

// Response codes the exporter counts requests under.
const (
	codeOK    = "200"
	codeError = "500"
)

// LatencyBuckets returns the upper bounds, in seconds, of the application histogram's buckets,
// so that a test can tell which bucket a quantile must fall into.
func LatencyBuckets() []float64 { return slices.Clone(latencyBuckets) }

// MeshLatencyBuckets returns the upper bounds, in milliseconds, of the Istio and Envoy
// histograms' buckets.
func MeshLatencyBuckets() []float64 { return slices.Clone(meshLatencyBuckets) }

// Traffic is the load one pod serves per scrape.
type Traffic struct {
	// RequestsPerScrape is how many requests the pod's counters advance by on every scrape.
	// Zero keeps the application's series present but flat, so a success-rate ratio evaluates
	// to 0/0.
	RequestsPerScrape int
	// ErrorRatio is the share of those requests, between 0 and 1, answered with code 500;
	// round(ErrorRatio*RequestsPerScrape) of them, the rest with code 200.
	ErrorRatio float64
	// Latency is the duration every request is observed at in the histograms.
	Latency time.Duration

	// Workload is the Deployment the pod belongs to, which the Istio series name as
	// destination_workload. When empty it is the pod's name without its last two segments
	// (<deployment>-<replicaset hash>-<pod hash>), or the whole name if it has fewer than three.
	Workload string
	// Service is the Service the pod's requests come through, such as podinfo-canary: the
	// Istio series' destination_service_name, and the Envoy cluster
	// <namespace>_<Service>_<Port> that counts the requests. Without it the Istio series name
	// the service "unknown" and no Envoy cluster counts the pod's requests.
	Service string
	// Port is the Service port in the Envoy cluster's name; DefaultServicePort when zero.
	Port int
}

// workload is the destination_workload of the pod's Istio series.
func (t Traffic) workload(pod string) string {
	if t.Workload != "" {
		return t.Workload
	}
	parts := strings.Split(pod, "-")
	if len(parts) < 3 {
		return pod
	}
	return strings.Join(parts[:len(parts)-2], "-")
}

// cluster is the name of the Envoy cluster in front of the pod, "" when it has no Service.
func (t Traffic) cluster(namespace string) string {
	if t.Service == "" {
		return ""
	}
	port := t.Port
	if port == 0 {
		port = DefaultServicePort
	}
	return namespace + "_" + t.Service + "_" + strconv.Itoa(port)
}

type podKey struct{ namespace, pod string }

// histogram holds the cumulative values of one classic histogram.
type histogram struct {
	buckets []uint64 // cumulative count per entry of the bounds it is observed with
	count   uint64
	sum     float64
}

func newHistogram(bounds []float64) histogram {
	return histogram{buckets: make([]uint64, len(bounds))}
}

// observe adds n observations of v.
func (h *histogram) observe(bounds []float64, n uint64, v float64) {
	h.count += n
	h.sum += float64(n) * v
	for i, le := range bounds {
		if v <= le {
			h.buckets[i] += n
		}
	}
}

func (h *histogram) metric(desc *prometheus.Desc, bounds []float64, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	for i, le := range bounds {
		buckets[le] = h.buckets[i]
	}
	return prometheus.MustNewConstHistogram(desc, h.count, h.sum, buckets, labels...)
}

// podSeries holds the cumulative values of one pod's series.
type podSeries struct {
	traffic Traffic
	ok      uint64
	errors  uint64
	seconds histogram // the application's, over latencyBuckets
	// meshOK and meshErrors are the Istio histograms of the requests answered 200 and 500,
	// over meshLatencyBuckets; their counts are Istio's request counters.
	meshOK, meshErrors histogram
}

// clusterSeries holds the cumulative values of one Envoy cluster, which counts the requests of
// every pod behind its Service.
type clusterSeries struct {
	ok, errors uint64
	time       histogram // over meshLatencyBuckets
}

// Exporter serves /metrics on a loopback port with series whose growth the test sets. It is
// safe for concurrent use.
//
// Per pod it serves the application's series (RequestsTotal, RequestDuration) and an Istio
// sidecar's (IstioRequestsTotal, IstioRequestDuration with reporter="destination"); per
// Service that Traffic names, an Envoy cluster's (EnvoyUpstreamRequests,
// EnvoyUpstreamRequestTime). The application's series exist from SetTraffic on, for both
// codes; the Istio and Envoy series of a code appear with its first request, as a client
// library creates a labelled series on its first observation. An Envoy cluster belongs to the
// proxy, not to a pod: it keeps its counts when a pod behind it is removed.
type Exporter struct {
	listener  net.Listener
	server    *http.Server
	served    chan struct{}
	series    *collector
	closeOnce sync.Once
}

// collector holds every pod's series and advances them each time the registry gathers.
type collector struct {
	requestsDesc      *prometheus.Desc
	durationDesc      *prometheus.Desc
	istioRequestsDesc *prometheus.Desc
	istioDurationDesc *prometheus.Desc
	envoyRequestsDesc *prometheus.Desc
	envoyTimeDesc     *prometheus.Desc

	mu       sync.Mutex
	pods     map[podKey]*podSeries
	clusters map[string]*clusterSeries
	scrapes  int
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
			istioRequestsDesc: prometheus.NewDesc(IstioRequestsTotal,
				"Requests to each destination workload, as the destination reports them.", istioLabels, nil),
			istioDurationDesc: prometheus.NewDesc(IstioRequestDuration,
				"Duration of requests to each destination workload, in milliseconds.", istioLabels, nil),
			envoyRequestsDesc: prometheus.NewDesc(EnvoyUpstreamRequests,
				"Requests to each upstream cluster, by response code.", []string{"envoy_cluster_name", "envoy_response_code"}, nil),
			envoyTimeDesc: prometheus.NewDesc(EnvoyUpstreamRequestTime,
				"Time of requests to each upstream cluster, in milliseconds.", []string{"envoy_cluster_name"}, nil),
			pods:     map[podKey]*podSeries{},
			clusters: map[string]*clusterSeries{},
		},
	}
	registry := prometheus.NewPedanticRegistry()
	if err := registry.Register(e.series); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("register exporter collector: %w", err)
	}
	mux := http.NewServeMux()
	// OpenMetrics stays off: it would expose the counter envoy_cluster_upstream_rq as
	// envoy_cluster_upstream_rq_total, which is not Envoy's name.
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.HTTPErrorOnError,
		EnableOpenMetrics: false,
	}))
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
// count or latency, an error ratio outside [0, 1] or a port outside 0-65535, which are mistakes
// in the test.
func (e *Exporter) SetTraffic(namespace, pod string, t Traffic) {
	if t.RequestsPerScrape < 0 || t.Latency < 0 || t.ErrorRatio < 0 || t.ErrorRatio > 1 || math.IsNaN(t.ErrorRatio) ||
		t.Port < 0 || t.Port > 65535 {
		panic(fmt.Sprintf("testprom: invalid traffic for %s/%s: %+v", namespace, pod, t))
	}
	c := e.series
	c.mu.Lock()
	defer c.mu.Unlock()
	key := podKey{namespace, pod}
	s, ok := c.pods[key]
	if !ok {
		s = &podSeries{
			seconds:    newHistogram(latencyBuckets),
			meshOK:     newHistogram(meshLatencyBuckets),
			meshErrors: newHistogram(meshLatencyBuckets),
		}
		c.pods[key] = s
	}
	s.traffic = t
}

// RemoveTraffic drops the pod's series from later scrapes, as when the pod is deleted;
// Prometheus then marks them stale. Setting traffic again starts the counters from zero. The
// Envoy cluster the pod was behind keeps the requests it counted.
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
	ch <- c.istioRequestsDesc
	ch <- c.istioDurationDesc
	ch <- c.envoyRequestsDesc
	ch <- c.envoyTimeDesc
}

// Collect implements prometheus.Collector. The registry calls it once per scrape, which is
// when every pod's traffic advances. The registry sorts what it gathers, so the maps' order
// does not show.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scrapes++
	for key, s := range c.pods {
		ok, failed := s.advance()
		if name := s.traffic.cluster(key.namespace); name != "" {
			cl := c.clusters[name]
			if cl == nil {
				cl = &clusterSeries{time: newHistogram(meshLatencyBuckets)}
				c.clusters[name] = cl
			}
			cl.ok += ok
			cl.errors += failed
			cl.time.observe(meshLatencyBuckets, ok+failed, milliseconds(s.traffic.Latency))
		}

		ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(s.ok), key.namespace, key.pod, codeOK)
		ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(s.errors), key.namespace, key.pod, codeError)
		ch <- s.seconds.metric(c.durationDesc, latencyBuckets, key.namespace, key.pod)

		service := s.traffic.Service
		if service == "" {
			service = "unknown"
		}
		for _, byCode := range []struct {
			code string
			h    *histogram
		}{{codeOK, &s.meshOK}, {codeError, &s.meshErrors}} {
			if byCode.h.count == 0 {
				continue
			}
			labels := []string{key.namespace, key.pod, "destination",
				s.traffic.workload(key.pod), key.namespace, service, key.namespace, byCode.code}
			ch <- prometheus.MustNewConstMetric(c.istioRequestsDesc, prometheus.CounterValue, float64(byCode.h.count), labels...)
			ch <- byCode.h.metric(c.istioDurationDesc, meshLatencyBuckets, labels...)
		}
	}
	for name, cl := range c.clusters {
		if cl.ok > 0 {
			ch <- prometheus.MustNewConstMetric(c.envoyRequestsDesc, prometheus.CounterValue, float64(cl.ok), name, codeOK)
		}
		if cl.errors > 0 {
			ch <- prometheus.MustNewConstMetric(c.envoyRequestsDesc, prometheus.CounterValue, float64(cl.errors), name, codeError)
		}
		if cl.time.count > 0 {
			ch <- cl.time.metric(c.envoyTimeDesc, meshLatencyBuckets, name)
		}
	}
}

// advance adds one scrape's worth of requests and returns how many were answered 200 and 500.
func (s *podSeries) advance() (ok, failed uint64) {
	n := uint64(s.traffic.RequestsPerScrape)
	failed = uint64(math.Round(s.traffic.ErrorRatio * float64(n)))
	ok = n - failed
	s.errors += failed
	s.ok += ok
	s.seconds.observe(latencyBuckets, n, s.traffic.Latency.Seconds())
	ms := milliseconds(s.traffic.Latency)
	s.meshOK.observe(meshLatencyBuckets, ok, ms)
	s.meshErrors.observe(meshLatencyBuckets, failed, ms)
	return ok, failed
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
