// Command demo runs trafficctl end to end on this machine, the way `make demo` shows it: a
// local cluster, pods as local processes, live traffic through a weighted data plane,
// Prometheus, and the controller binary; then a healthy rollout and a faulty one, with live
// progress and a summary. Everything it starts stops when it ends, Ctrl-C included.
package main
