// Package istio splits a Canary's traffic by writing destination weights into an Istio
// VirtualService (networking.istio.io/v1), and keeps a DestinationRule for each of the primary and
// canary Services.
//
// It handles two kinds of VirtualService. One trafficctl owns is created and updated whole, and is
// garbage-collected with its Canary through a controller owner reference. One the user owns
// (service.virtualServiceRef) is patched, not replaced: only the destinations of the HTTP routes
// that send traffic to the apex Service change, the originals are kept in an annotation, and
// Release puts them back. The DestinationRules are trafficctl's in both cases, owned by the
// Canary, and carry service.trafficPolicy.
//
// Every write is a server-side apply under the Router's own field manager, built as an
// unstructured object so that only the fields trafficctl means to own are sent, and fields this
// module's Istio types do not know survive. spec.http is an atomic list in the VirtualService
// schema, so a patch to a user's VirtualService carries the whole list, recomputed from the live
// object and guarded by its resourceVersion, and nothing else of the spec: the user keeps
// ownership of hosts, gateways, tcp and tls routes, labels and every other field.
//
// Istio reports whether it has reconciled a VirtualService only when istiod's status feature is
// on. Without a status there is no signal to wait for, so a VirtualService without one counts as
// accepted, as Flagger assumes.
package istio
