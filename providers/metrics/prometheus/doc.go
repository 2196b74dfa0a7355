// Package prometheus answers analysis queries from a Prometheus server over its HTTP API.
//
// Every query must reduce to one number: a scalar, or a vector with exactly one sample. A
// query that matches nothing, or whose value is NaN or infinite (a ratio over zero requests),
// fails with an error wrapping metrics.ErrNoData, so that the caller can tell "no traffic yet"
// apart from a broken query or an unreachable server.
package prometheus
