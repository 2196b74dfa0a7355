// Package rollout is the pure rollout core: what a Canary's rollout does next, decided from a
// Snapshot of the world and a clock reading, with no I/O of its own.
//
// ComputePlan turns a Snapshot (the Canary and its status, the two Deployments, what the route
// carries, the checks and webhook answers of this reconcile, a pending manual request) into a
// Plan: the next status, the Routing the route must carry, the canary's replica count, whether
// to promote, the events, and when to look again. The rules behind it live here once: the
// strategies and their stages (StrategyOf, Stages, RoutingFor, SwitchesBeforePromotion,
// CanaryReplicas), when checks are due and over which window (ChecksDue, CheckWindow,
// CheckParams), the webhook gates, the manual requests (PendingRequest, CheckRequest), the
// phases (UnderAnalysis, InRollout, ...), the conditions (SetConditions) and the reasons.
//
// The controller (controllers/) reads the snapshot, records the plan in status, then acts on it;
// the CLI (internal/cli) explains, plans and steers with the same functions; the simulation
// (internal/simulation) drives ComputePlan through thousands of rollouts. The package imports the
// API types and analysis only: no client, no controller-runtime, no provider.
package rollout
