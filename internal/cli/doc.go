// Package cli is the trafficctl command line: one file per verb, in the style of kubectl's
// rollout commands (an Options struct with Complete, Validate and Run; kubeconfig flags from
// cli-runtime; output through IOStreams so tests read it). cmd/trafficctl only wires it in.
package cli
