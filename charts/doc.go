// Package charts holds the tests of the Helm chart in charts/trafficctl, against a real kube-apiserver:
// it lints, every rendering is accepted by server-side dry run, its CRDs and RBAC rules are the
// ones controller-gen generates into config/, the controller parses the arguments it is given,
// and `helm install` sets up a controller whose ServiceAccount may do what it needs and no more.
//
// The tests run the helm binary `make testenv` installs (HELM, or bin/helm).
package charts
