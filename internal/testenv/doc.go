// Package testenv starts the real control plane the integration tests run against: etcd and
// kube-apiserver through envtest, with trafficctl's own CRDs, the Gateway API CRDs and the Istio CRDs
// installed from the modules the controller is built against.
package testenv
