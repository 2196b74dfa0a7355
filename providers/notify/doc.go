// Package notify turns what happened to a Canary into one alert message and delivers it to
// Slack, Microsoft Teams, Discord or a generic JSON webhook.
//
// A Message is provider neutral; a Target says where and how to send it. New validates a
// Target once, so a user learns about a bad address, proxy or template when the alert provider
// is read rather than when the first rollback happens, and returns a Notifier for it. Payload
// shows the exact body a Notifier would send, for tests and for `trafficctl` previews.
//
// A Target's Address, Token and Proxy come from a Secret: an incoming-webhook URL is itself the
// credential. No error from this package contains them, not even when the transport fails, and
// no error contains a response body, because receivers may echo the request back.
package notify
