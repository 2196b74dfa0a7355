// Package kubernetes routes a Canary's traffic with nothing but the apex Service (provider
// kubernetes): no mesh, no gateway, no route object.
//
// The Router owns the apex Service and changes only its selector. A blue/green rollout
// (analysis.iterations) switches the selector at once between the primary Deployment's pods and
// the target's. A weighted canary (analysis.stepWeight or stepWeights) cannot split requests by
// percent, so the Service selects the pods of both Deployments through the labels their pod
// templates share outside their selectors, and the controller sets the canary's share through
// replica counts: RatioReplicas says how many canary replicas give a share beside the primary's,
// and Observe reads the share back from the replicas that are available.
//
// Every write is a server-side apply under the Router's field manager. A Service trafficctl
// creates is owned by its Canary and goes with it; a Service that existed before is adopted,
// never owned, so deleting the Canary leaves it in place.
package kubernetes
