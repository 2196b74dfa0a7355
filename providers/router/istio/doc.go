// Package istio carries a Canary's routing in an Istio VirtualService (networking.istio.io/v1):
// the weighted split between the primary and canary Services, the A/B cohort and sticky-session
// routes that go before it, and the mirror to the canary. It also keeps a DestinationRule for each
// of the primary and canary Services.
//
// It handles two kinds of VirtualService. One trafficctl owns is created and updated whole, and is
// garbage-collected with its Canary through a controller owner reference: its HTTP routes are the
// strategy's routes (named trafficctl-cohort-<i>, trafficctl-sticky-canary and
// trafficctl-sticky-primary) followed by the split route, named after the apex Service, all
// restricted to service.match and carrying service's timeout, retries, headers and CORS policy. One
// the user owns (service.virtualServiceRef) is patched, not replaced: the HTTP routes that send
// traffic to the apex Service (apex routes) get the split as destinations and trafficctl's mirror,
// the strategy's routes are inserted before each of them as copies with the strategy's conditions
// added to their matches, the apex routes' original destinations and mirrors are kept in an
// annotation, and Release removes the added routes and puts the originals back, so the
// VirtualService is again exactly what the user wrote. The DestinationRules are trafficctl's in
// both cases, owned by the Canary, and carry service.trafficPolicy.
//
// Observe reads the routing back from the HTTP routes themselves: the weights, mirror and the
// sticky-session cookie's value from the split route, and the cohort from the presence of the
// cohort routes.
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
