// Package testprom runs the real Prometheus for integration tests, together with an exporter
// whose application metrics the test drives.
//
// The exporter models what a meshed or instrumented application exposes: a request counter
// http_requests_total{namespace, pod, code} and a latency histogram
// http_request_duration_seconds{namespace, pod}; and, for the same requests, the series an Istio
// sidecar (istio_requests_total, istio_request_duration_milliseconds) and a Contour-style Envoy
// cluster (envoy_cluster_upstream_rq, envoy_cluster_upstream_rq_time) would report, so every
// built-in metric set has data. Each scrape advances the counters by a fixed
// amount per pod, so rates and ratios are exact and tests never depend on wall-clock timing or
// randomness. Prometheus scrapes it every second; tests poll for results with a deadline.
//
// A test of a client's security settings starts the server with Options.TLS (a throwaway
// authority and certificate from GenerateServerCert) and Options.BasicAuth, which Prometheus
// serves through its --web.config.file. Prometheus has no bearer-token auth, so StartAuthProxy
// puts a small proxy in front of it that checks a token and records the headers it received.
//
// Start, StartOptions and StartExporter tie the lifetimes to a test. StartProcess, StartWith and
// NewExporter, with Stop and Close, serve a TestMain that shares one instance across a
// package's tests.
package testprom
