// Package dataplane is a small Gateway for the end-to-end tests: it plays one Gateway API
// Gateway on loopback, so that the HTTPRoutes trafficctl writes carry real traffic. It plays an
// Istio ingress gateway too, so that the VirtualServices trafficctl writes carry it as well.
//
// It watches HTTPRoutes, Services and Pods through a controller-runtime cache. Every change of
// a route or a Service rebuilds the routing table (table.go) from the cache and then reports,
// in each attached route's status, that the Gateway has loaded the route's current generation
// (status.go). A request is matched against the table with Gateway API precedence (match.go),
// runs the rule's filters (filters.go), and is proxied to a Ready pod of a weighted choice of
// the rule's Services (backends.go, proxy.go).
//
// When the apiserver knows Istio's CRDs, VirtualServices are watched as well: those whose
// spec.gateways name the Gateway (Options.IstioGateway, "<namespace>/<name>" or, from its
// namespace, "<name>") are compiled into the same table (istio_table.go) and, once loaded,
// get status.observedGeneration and a Reconciled condition as Istio writes them
// (istio_status.go). A request is matched against VirtualServices first and against
// HTTPRoutes only when no VirtualService takes it; within VirtualServices the most specific
// host wins, then the oldest, and within one the first spec.http entry that matches, as in
// Istio (istio_match.go). Destinations are Services named by short name or FQDN, resolved to
// Ready pods like HTTPRoute backends (istio_proxy.go).
//
// The pods come from the cache on every request, because there is no EndpointSlice controller
// to rely on: the apiserver rejects the loopback pod addresses the tests use in EndpointSlices.
//
// What it exports for Prometheus (metrics.go) is labelled like Envoy's and Istio's own
// metrics, so that the queries trafficctl's users write against a mesh work unchanged;
// dataplane_requests_total names the route a request took by route_kind (HTTPRoute or
// VirtualService), route_namespace and route_name.
//
// Deliberate simplifications, each harmless for the tests:
//   - The Gateway object need not exist; its listeners, allowedRoutes and ReferenceGrants are
//     not consulted, so every route naming the Gateway is accepted and cross-namespace
//     backends are allowed.
//   - Regular expressions are Go's RE2 and must match the whole value, as in Envoy and Istio.
//   - Hostname precedence orders candidates but a more specific route that has no matching
//     rule falls through to a less specific one, rather than answering 404 as Envoy's virtual
//     hosts do; the same holds for VirtualServices, and from them to HTTPRoutes.
//   - VirtualServices: DestinationRules are not read, so subsets are ignored; retries, fault
//     injection and CORS are ignored; delegation is not supported; matches on source labels
//     or namespace never hold; Istio's CRDs installed after Start are not noticed.
package dataplane
