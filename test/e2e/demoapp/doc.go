// Command demoapp is the application every e2e pod runs: the node agent starts one process per
// Pod, bound to the Pod's own loopback address, and Prometheus scrapes its /metrics. A release
// is a set of environment variables, so a test can ship a version that is slow, fails a fixed
// share of its requests, or crashes on start, and then assert on what users and Prometheus saw.
//
// Environment:
//
//	LISTEN_ADDR    host:port to serve on (required)
//	VERSION        shown in every answer and its X-Version header (default "unknown")
//	ERROR_RATE     share of / requests answered with 500, between 0 and 1 (default 0);
//	               deterministic: 0.1 fails exactly one request in ten
//	LATENCY        Go duration added to every / request (default 0s)
//	CRASH          "true" exits 1 at once, like a Pod in CrashLoopBackOff
//	POD_NAME       shown in answers; POD_NAMESPACE is accepted for symmetry
//
// An invalid value exits 2. SIGTERM or SIGINT drain open requests and exit 0.
//
// Endpoints: /healthz answers "ok" (the readiness probe); /metrics serves
// http_requests_total{code,method} and the histogram http_request_duration_seconds{code,method}
// for / requests only, without namespace or pod labels, which Prometheus attaches itself, and
// http_shadow_requests_total, the part of them a gateway mirrored (their Host ends in -shadow);
// every other path is the application.
package main
