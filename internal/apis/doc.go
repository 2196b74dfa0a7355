// Package apis knows every API trafficctl reads or writes: Kubernetes' own, Gateway API, Istio's
// networking API and trafficctl.io. The controller, the CLI and the tests share one scheme.
package apis
