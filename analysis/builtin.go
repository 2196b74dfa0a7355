package analysis

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// BuiltinRequestRate is the built-in check of how many requests per second the target serves.
const BuiltinRequestRate = "request-rate"

// builtinQuantile is the quantile request-duration reports.
const builtinQuantile = "0.99"

// BuiltinQueries are the query templates behind one built-in check in one metric set; each is
// rendered once per side. Every query aggregates to a single series.
type BuiltinQueries struct {
	// Value is what the check judges, over {{ .Interval }}: the success rate in percent
	// (request-success-rate), the p99 latency in milliseconds (request-duration), or requests
	// per second (request-rate).
	Value string
	// Requests counts the requests Target served over {{ .Window }}. For request-duration it is
	// the latency histogram's count, so that it counts the same requests as Bad.
	Requests string
	// Bad counts the bad outcomes over {{ .Window }}: 5xx responses (request-success-rate) or
	// requests slower than slowerThan (request-duration); 0 when Target served requests but
	// none were bad, no data when it served none. Empty for request-rate, and for
	// request-duration without a slowerThan.
	Bad string
}

// metricSet is where one family of metrics keeps its requests and latencies.
type metricSet struct {
	requests string // the request counter
	code     string // the counter's response-code label
	duration string // the latency histogram, without _bucket, _count or _sum
	unit     time.Duration
	// selector matches the series of Target, the Deployment measured.
	selector string
}

// metricSetOf returns how a metric set selects Target's requests, and false for an unknown set.
func metricSetOf(set v1alpha1.MetricSet) (metricSet, bool) {
	switch set {
	case v1alpha1.MetricSetApp:
		// A kubernetes-pods scrape labels the application's series with its namespace and pod.
		// A Deployment's pods are <deployment>-<replicaset hash>-<pod hash>, so the pattern
		// selects the canary's pods and never the primary's, which have one segment more.
		return metricSet{
			requests: "http_requests_total",
			code:     "code",
			duration: "http_request_duration_seconds",
			unit:     time.Second,
			selector: `namespace="{{ .Namespace }}",pod=~"{{ .Target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"`,
		}, true
	case v1alpha1.MetricSetIstio:
		// The destination's sidecar reports every request it served, whichever client sent it.
		return metricSet{
			requests: "istio_requests_total",
			code:     "response_code",
			duration: "istio_request_duration_milliseconds",
			unit:     time.Millisecond,
			selector: `reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload="{{ .Target }}"`,
		}, true
	case v1alpha1.MetricSetEnvoy:
		// Contour names the cluster of a Service port <namespace>_<service>_<port>; namespaces
		// and Service names cannot hold an underscore, so the pattern matches one Service.
		return metricSet{
			requests: "envoy_cluster_upstream_rq",
			code:     "envoy_response_code",
			duration: "envoy_cluster_upstream_rq_time",
			unit:     time.Millisecond,
			selector: `envoy_cluster_name=~"{{ .Namespace }}_{{ .TargetService }}_[0-9]+"`,
		}, true
	}
	return metricSet{}, false
}

// Builtin returns the queries of a built-in check in a metric set, and false for a name or set
// it does not know. slowerThan is the latency above which request-duration counts a request as
// bad; it must be one of the histogram's bucket bounds, or Bad has no data. Zero leaves Bad
// empty.
func Builtin(set v1alpha1.MetricSet, name string, slowerThan time.Duration) (BuiltinQueries, bool) {
	s, ok := metricSetOf(set)
	if !ok {
		return BuiltinQueries{}, false
	}
	switch name {
	case BuiltinRequestSuccessRate:
		return BuiltinQueries{
			Value:    fmt.Sprintf(`100 * (1 - (%s or vector(0)) / %s)`, s.rate(s.errors()), s.rate("")),
			Requests: s.increase(""),
			// The guard keeps a Target without any requests at no data rather than 0.
			Bad: fmt.Sprintf(`%s or (vector(0) and %s)`, s.increase(s.errors()), s.increase("")),
		}, true
	case BuiltinRequestDuration:
		q := BuiltinQueries{
			Value:    s.quantile(),
			Requests: s.sum("increase", s.duration+"_count", "", "{{ .Window }}"),
		}
		if slowerThan > 0 {
			// A tiny negative difference of two extrapolations reads as none.
			q.Bad = fmt.Sprintf(`clamp_min(%s - %s, 0)`, q.Requests,
				s.sum("increase", s.duration+"_bucket", leMatcher(slowerThan, s.unit), "{{ .Window }}"))
		}
		return q, true
	case BuiltinRequestRate:
		return BuiltinQueries{
			Value:    s.rate(""),
			Requests: s.increase(""),
		}, true
	}
	return BuiltinQueries{}, false
}

// RequestsQuery counts the requests Target served over {{ .Window }} in a metric set, for
// minRequests and for sequential checks whose template counts only bad outcomes. It is empty
// for an unknown set.
func RequestsQuery(set v1alpha1.MetricSet) string {
	s, ok := metricSetOf(set)
	if !ok {
		return ""
	}
	return s.increase("")
}

func (s metricSet) errors() string { return s.code + `=~"5.."` }

// rate is the requests per second over the interval, of those matching extra as well.
func (s metricSet) rate(extra string) string {
	return s.sum("rate", s.requests, extra, "{{ .Interval }}")
}

// increase is the requests over the window, of those matching extra as well.
func (s metricSet) increase(extra string) string {
	return s.sum("increase", s.requests, extra, "{{ .Window }}")
}

// sum adds up fn over lookback of Target's series of metric, also matching extra.
func (s metricSet) sum(fn, metric, extra, lookback string) string {
	matchers := s.selector
	if extra != "" {
		matchers += "," + extra
	}
	return fmt.Sprintf(`sum(%s(%s{%s}[%s]))`, fn, metric, matchers, lookback)
}

// quantile is the latency quantile in milliseconds over the interval.
func (s metricSet) quantile() string {
	q := fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(%s_bucket{%s}[{{ .Interval }}])))`,
		builtinQuantile, s.duration, s.selector)
	if s.unit == time.Second {
		q = "1000 * " + q
	}
	return q
}

// leMatcher matches the bucket whose upper bound is d, written in unit. Exporters write the
// bound the way Go's strconv does ("0.25", "1"); Prometheus 3 rewrites a whole number to "1.0"
// at scrape time, and some client libraries write it so too; the regex takes both.
func leMatcher(d, unit time.Duration) string {
	bound := strconv.FormatFloat(float64(d)/float64(unit), 'g', -1, 64)
	re := regexp.QuoteMeta(bound)
	if !strings.ContainsAny(bound, ".e") {
		re += `(\.0)?`
	}
	return `le=~"` + strings.ReplaceAll(re, `\`, `\\`) + `"`
}
