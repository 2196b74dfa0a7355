// Package prometheus answers analysis queries from a Prometheus server over its HTTP API.
//
// An instant query (Query) must reduce to one number: a scalar, or a vector with exactly one
// sample. A range query (QueryRange) must reduce to one series, whose numbers come back in time
// order. A query that matches nothing, or whose value is NaN or infinite (a ratio over zero
// requests), fails with an error wrapping analysis.ErrNoData, so that the caller can tell "no
// traffic yet" apart from a broken query or an unreachable server; a range query leaves such
// points out and fails only when none remain.
//
// Bearer tokens, passwords and header values are sent to the server and nowhere else: no error
// shows them, and a server that refuses them (401 or 403) is reported by its status alone,
// never by the body it answered with.
package prometheus
