// Package scale measures the controller with many Canaries: a local kube-apiserver with an audit
// log, a watch-based stand-in for the Deployment and Gateway controllers, and the built
// controller binary. `make bench-scale` prints its table; the package's test checks, with a few
// Canaries, that an idle interval writes nothing.
package scale
