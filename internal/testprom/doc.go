// Package testprom runs the real Prometheus for integration tests, together with an exporter
// whose application metrics the test drives.
//
// The exporter models what a meshed or instrumented application exposes: a request counter
// http_requests_total{namespace, pod, code} and a latency histogram
// http_request_duration_seconds{namespace, pod}. Each scrape advances the counters by a fixed
// amount per pod, so rates and ratios are exact and tests never depend on wall-clock timing or
// randomness. Prometheus scrapes it every second; tests poll for results with a deadline.
//
// Start and StartExporter tie the lifetimes to a test. StartProcess and NewExporter, with Stop
// and Close, serve a TestMain that shares one instance across a package's tests.
package testprom
