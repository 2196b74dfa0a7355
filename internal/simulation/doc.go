// Package simulation drives the real rollout planner and the real judges through simulated
// rollouts, with an injected clock and simulated traffic instead of a cluster and Prometheus,
// so a policy's decision quality (false rollbacks, time to roll back, users hurt, time to
// promote) can be measured over thousands of rollouts in seconds.
//
// Only the outside world is simulated: requests arrive as a Poisson process and are split by
// the weights the planner wrote; each fails or is slow with its version's probability; the
// route accepts every routing and Deployments are ready at once. Everything that decides is
// the controller's own code: ChecksDue, ComputePlan and analysis.Evaluate.
package simulation
