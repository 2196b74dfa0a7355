// Package controllers runs rollouts. The reconciler is the imperative shell: it reads a
// Snapshot of the Canary, its Deployments and its route, and acts on the Plan that the pure
// ComputePlan derives from it. Status is the only memory, written before every action, so a
// controller killed at any point resumes the same step.
package controllers
