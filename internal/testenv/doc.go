// Package testenv starts the real control plane the integration tests run against: etcd and
// kube-apiserver through envtest, with trafficctl's own CRDs and the Gateway API CRDs
// installed from the module the controller is built against.
package testenv
