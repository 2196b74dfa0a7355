// Package framework runs trafficctl end to end on one machine: a control plane with the real
// kube-controller-manager and kube-scheduler, a node agent that runs each Pod as a local
// process of the demo app, a weighted data plane for the HTTPRoutes, a real Prometheus, a load
// generator, and the trafficctl controller as its built binary. The e2e tests and `make demo`
// both stand on it.
package framework
