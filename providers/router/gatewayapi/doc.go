// Package gatewayapi carries a Canary's routing in a Gateway API HTTPRoute
// (gateway.networking.k8s.io/v1): the weighted split between the primary and canary Services, and
// the rules of the rollout's strategy.
//
// The strategies take these forms. An A/B cohort is one rule per analysis.match entry, sending the
// requests that meet it to the canary Service alone; Gateway API header and query matches are
// Exact or RegularExpression, so a prefix becomes a regular expression, and cookies a regular
// expression on the Cookie header. Sticky sessions are a rule sending requests with the canary's
// cookie to the canary (and, with primaryCookieName, one sending the primary's cookie to the
// primary), plus a Set-Cookie response header on each backend of the split. A mirror is a
// RequestMirror filter to the canary Service on the split rule. The cohort and sticky rules are
// named trafficctl-..., stand before the rule they derive from, and match more headers or query
// parameters than it, so they win for the requests they select. Observe reads the routing back
// from these rules.
//
// It handles two kinds of route. A route trafficctl owns is created and updated whole, and is
// garbage-collected with its Canary through a controller owner reference: its rules are the
// strategy's rules, then a catch-all rule named split. A route the user owns
// (service.httpRouteRef) is patched, not replaced: each rule that sends traffic to the apex
// Service gets the strategy's rules before it, copies of it with the strategy's conditions added
// to its matches, and is itself split, with the mirror added. The original backendRefs are kept
// in an annotation, and Release removes every rule and filter trafficctl added and puts them
// back, so the route is again exactly what the user wrote. A route that the rollout's rules would
// take past a Gateway API limit (16 rules, 64 matches in a rule, 128 in all) is reported, not
// written.
//
// Every write is a server-side apply under the Router's own field manager. spec.rules is an
// atomic list in the HTTPRoute schema, so a patch to a user's route carries the whole rules list,
// recomputed from the live object and guarded by its resourceVersion, and nothing else of the
// spec: the user keeps ownership of parentRefs, hostnames, labels and every other field.
package gatewayapi
