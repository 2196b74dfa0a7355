package main

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are client_golang's default buckets, in seconds, which most instrumented
// applications expose; the p99 check reads its quantile from them.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// app serves the application path and records it in its own registry.
type app struct {
	c        config
	served   atomic.Uint64 // requests answered so far; numbers them for the error schedule
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// shadow counts the requests a gateway mirrored here, so a test can tell them from requests
	// a user is waiting on; they are in requests too, as every request is.
	shadow prometheus.Counter
}

// newHandler builds the whole app, /healthz and /metrics included, with a private registry so
// that each handler, and each test, counts from zero.
func newHandler(c config) http.Handler {
	a := &app{
		c: c,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "Requests to the application, by status code and method.",
		}, []string{"code", "method"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "Time to answer a request to the application.",
			Buckets: latencyBuckets,
		}, []string{"code", "method"}),
		shadow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "http_shadow_requests_total",
			Help: "Requests to the application mirrored by a gateway, whose Host ends in -shadow.",
		}),
	}
	// Series that exist from the start make a success ratio over a healthy pod 0/n, not empty.
	for _, code := range []string{"200", "500"} {
		a.requests.WithLabelValues(code, http.MethodGet)
		a.duration.WithLabelValues(code, http.MethodGet)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.requests, a.duration, a.shadow)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", a)
	return mux
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if a.c.latency > 0 {
		t := time.NewTimer(a.c.latency)
		select {
		case <-r.Context().Done():
			// The client left; it saw no answer, so neither the schedule nor the metrics count it.
			t.Stop()
			return
		case <-t.C:
		}
	}
	code, body := http.StatusOK, fmt.Sprintf("version %s pod %s\n", a.c.version, a.c.podName)
	if i := a.served.Add(1) - 1; fails(i, a.c.errorRate) {
		code, body = http.StatusInternalServerError, "error from version "+a.c.version
	}
	w.Header().Set("X-Version", a.c.version)
	if a.c.greeting != "" {
		w.Header().Set("X-Greeting", a.c.greeting)
	}
	if a.c.configFile != "" {
		if data, err := os.ReadFile(a.c.configFile); err == nil {
			w.Header().Set("X-Config-File", strings.TrimSpace(string(data)))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, body)

	labels := prometheus.Labels{"code": strconv.Itoa(code), "method": methodLabel(r.Method)}
	a.requests.With(labels).Inc()
	a.duration.With(labels).Observe(time.Since(start).Seconds())
	if isShadow(r.Host) {
		a.shadow.Inc()
	}
}

// isShadow reports whether a request's Host carries the mark Envoy and Istio put on a mirrored
// copy: podinfo.example.com becomes podinfo.example.com-shadow, with the port kept.
func isShadow(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.HasSuffix(host, "-shadow")
}

// fails reports whether request i (from 0) is one of the errors: the count of errors after n
// requests is floor(n*rate), so a rate of 0.1 fails exactly the 10th, 20th, ... request.
func fails(i uint64, rate float64) bool {
	return math.Floor(float64(i+1)*rate) > math.Floor(float64(i)*rate)
}

// methodLabel keeps the method label to the standard methods, so a stray client cannot grow
// the number of series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
