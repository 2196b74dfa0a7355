// Package hooks calls the webhooks a Canary declares (confirm-rollout, pre-rollout, rollout,
// confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event) and reports what
// each answered. It decides nothing: whether a refusal halts the rollout, pauses it or is
// ignored is the controller's call, so that the rules live in one place.
//
// # Outcomes
//
// A call ends in one of three outcomes. Approved is a 2xx answer. Refused is any other HTTP
// answer, redirects included (the default client does not follow them, so that a signed body
// is never replayed to a second address). Failed is no usable answer at all: a timeout, a
// refused connection, bytes that are not HTTP, an invalid URL, or a context cancelled by the
// caller. Result.Message says which in a sentence that names the webhook but never its URL,
// because URLs often carry tokens and messages end up in events and status that many can read.
//
// # Retries
//
// Request.Retries further attempts are made after a Failed attempt or a 5xx or 429 answer,
// waiting 1s, 2s, 4s and so on, capped at 30s, between them. Any other answer is final: a 4xx
// is the receiver's considered refusal and asking again would not change it. Each attempt
// has its own Request.Timeout, so a call lasts at most about (Retries+1)*Timeout plus the
// waits. All attempts of one call send the same body, so a CloudEvents receiver sees the same
// event id on every retry and can drop duplicates.
//
// # Bodies
//
// With FormatJSON the body is the Payload as JSON, the shape Flagger's webhooks send, so
// receivers written for Flagger (its load tester, for one) keep working. With
// FormatCloudEvents it is a CloudEvents 1.0 event in structured mode (Content-Type
// application/cloudevents+json) whose data is the same Payload:
//
//	specversion      1.0
//	id               a random UUID, the same on every retry
//	source           /apis/trafficctl.io/v1alpha1/namespaces/<namespace>/canaries/<name>
//	type             io.trafficctl.canary.<hook type>, e.g. io.trafficctl.canary.confirm-rollout
//	subject          <name>
//	time             Payload.Time
//	datacontenttype  application/json
//	data             the Payload
//
// Every request is a POST with User-Agent trafficctl.
//
// # Signatures
//
// A webhook with a signing key gets two more headers on every attempt, so that its receiver
// can tell a call from trafficctl apart from a forged one:
//
//	X-Trafficctl-Timestamp: <unix seconds when the attempt was made>
//	X-Trafficctl-Signature: sha256=<lowercase hex of HMAC-SHA256(key, timestamp + "." + body)>
//
// To check a call in any language: take the timestamp header exactly as sent, append a dot
// and the raw request body bytes (before any JSON parsing), compute HMAC-SHA256 over that with
// the shared key, hex-encode it, prefix "sha256=", and compare with the signature header in
// constant time. Then reject timestamps too far from your clock (five minutes is usual), which
// is what stops a recorded call being replayed later. Verify does the first part for
// receivers written in Go; the freshness check is left to the receiver, which owns the clock.
package hooks
