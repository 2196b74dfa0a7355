package dataplane

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"
)

// durationBuckets are the latency buckets, in milliseconds, of Envoy's and Istio's histograms.
var durationBuckets = []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// metrics are what the data plane reports about the requests it proxied, in a registry of its
// own. They carry Envoy's and Istio's names and labels, so that queries written for Envoy
// Gateway or an Istio mesh run unchanged against the tests.
type metrics struct {
	registry *prometheus.Registry

	envoyRequests *prometheus.CounterVec
	envoyTime     *prometheus.HistogramVec
	istioRequests *prometheus.CounterVec
	istioDuration *prometheus.HistogramVec
	requests      *prometheus.CounterVec
}

var istioLabels = []string{
	"reporter",
	"destination_workload", "destination_workload_namespace",
	"destination_service_name", "destination_service_namespace",
	"response_code",
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		envoyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envoy_cluster_upstream_rq",
			Help: "Requests to each upstream cluster, by response code.",
		}, []string{"envoy_cluster_name", "envoy_response_code"}),
		envoyTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "envoy_cluster_upstream_rq_time",
			Help:    "Time of requests to each upstream cluster, in milliseconds.",
			Buckets: durationBuckets,
		}, []string{"envoy_cluster_name"}),
		istioRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests to each destination workload, as the destination reports them.",
		}, istioLabels),
		istioDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Duration of requests to each destination workload, in milliseconds.",
			Buckets: durationBuckets,
		}, istioLabels),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dataplane_requests_total",
			Help: "Requests the data plane answered, by route and backend; for debugging tests.",
		}, []string{"route_kind", "route_namespace", "route_name", "backend", "code"}),
	}
	m.registry.MustRegister(m.envoyRequests, m.envoyTime, m.istioRequests, m.istioDuration, m.requests)
	return m
}

// handler serves the registry. OpenMetrics stays off: it would expose the counter
// envoy_cluster_upstream_rq as envoy_cluster_upstream_rq_total, which is not Envoy's name.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{EnableOpenMetrics: false})
}

// upstream records one request sent (or meant to be sent) to a backend: the one a client's
// request was routed to, or a mirror. ep is the zero endpoint when no pod took it.
func (m *metrics) upstream(b backendRef, ep endpoint, code int, elapsed time.Duration) {
	ms := float64(elapsed) / float64(time.Millisecond)
	codeLabel := strconv.Itoa(code)
	cluster := envoyClusterName(b)
	m.envoyRequests.WithLabelValues(cluster, codeLabel).Inc()
	m.envoyTime.WithLabelValues(cluster).Observe(ms)

	workload, workloadNamespace := ep.workload, ep.pod.Namespace
	if workload == "" {
		workload, workloadNamespace = "unknown", "unknown"
	}
	labels := []string{"destination", workload, workloadNamespace, b.service.Name, b.service.Namespace, codeLabel}
	m.istioRequests.WithLabelValues(labels...).Inc()
	m.istioDuration.WithLabelValues(labels...).Observe(ms)
}

// Kinds of the routes a request can take, as the route_kind label names them.
const (
	kindHTTPRoute      = "HTTPRoute"
	kindVirtualService = "VirtualService"
)

// routeID names the route a request took, of either API; the zero routeID means none.
type routeID struct {
	kind string
	key  types.NamespacedName
}

// routed records one client request; route and backend are empty when none was chosen.
func (m *metrics) routed(route routeID, backend string, code int) {
	m.requests.WithLabelValues(route.kind, route.key.Namespace, route.key.Name, backend, strconv.Itoa(code)).Inc()
}

// envoyClusterName names a backend's cluster <namespace>_<service>_<port>, so that a query can
// select a namespace's clusters with envoy_cluster_name=~"<namespace>_.*".
func envoyClusterName(b backendRef) string {
	return fmt.Sprintf("%s_%s_%d", b.service.Namespace, b.service.Name, b.port)
}
