// Package gatewayapi splits a Canary's traffic by writing backend weights into a Gateway API
// HTTPRoute (gateway.networking.k8s.io/v1).
//
// It handles two kinds of route. A route trafficctl owns is created and updated whole, and is
// garbage-collected with its Canary through a controller owner reference. A route the user owns
// (service.httpRouteRef) is patched, not replaced: only the backendRefs of the rules that send
// traffic to the apex Service change, the originals are kept in an annotation, and Release puts
// them back.
//
// Every write is a server-side apply under the Router's own field manager. spec.rules is an
// atomic list in the HTTPRoute schema, so a patch to a user's route carries the whole rules list,
// recomputed from the live object and guarded by its resourceVersion, and nothing else of the
// spec: the user keeps ownership of parentRefs, hostnames, labels and every other field.
package gatewayapi
