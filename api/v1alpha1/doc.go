// Package v1alpha1 holds the trafficctl.io/v1alpha1 API: Canary, which declares how a
// Deployment's new revisions reach users, and MetricTemplate, which names a query that gates
// each step.
//
// Field names follow Flagger's wherever the meaning is the same, so a Flagger user moves over
// by changing the apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=trafficctl.io
package v1alpha1
