// Package e2e runs whole rollouts on one machine: the real control plane, pods as local
// processes, live HTTP traffic through a weighted data plane, a real Prometheus, and the
// trafficctl controller as its built binary. Every scenario asserts on what the traffic saw.
package e2e
