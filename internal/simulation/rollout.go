package simulation

import (
	"context"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Outcome is how one simulated rollout ended.
type Outcome struct {
	// Promoted is true when the new version reached Succeeded, false when it was rolled back.
	Promoted bool
	// Duration is from the new revision's detection to Succeeded or Failed.
	Duration time.Duration
	// CanaryRequests and CanaryFailed count what the canary served users, and how many of those
	// failed, before the rollout ended.
	CanaryRequests, CanaryFailed float64
	// Reason is the Ready condition's reason at the end.
	Reason string
}

// limit ends a rollout that has not finished; it is well past any policy's promotion.
const limit = time.Hour

var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Traffic is who sends the requests.
type Traffic struct {
	// RPS is the mean rate of requests, arriving as a Poisson process.
	RPS float64
	// CohortShare is the share of requests (0..1) that match an A/B experiment's analysis.match,
	// and go to the canary while the route carries the cohort rules.
	CohortShare float64
}

// Run drives one rollout of the canary version against the primary version through the
// planner and the judges, one reconcile per simulated second, with the given traffic.
func Run(spec v1alpha1.CanarySpec, canary, primary Version, traffic Traffic, rng *rand.Rand) Outcome {
	rps := traffic.RPS
	cn := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "shop", Generation: 1},
		Spec:       *spec.DeepCopy(),
		Status: v1alpha1.CanaryStatus{
			Phase: v1alpha1.PhaseSucceeded, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1",
		},
	}
	t := newTraffic(rng, rps)
	route := rollout.State{Found: true, Accepted: true, Routing: rollout.Primary()}
	primaryRevision := "rev1"
	// The target is at none when the release arrives, and has the pods it is scaled to at once.
	target := rollout.Workload{Found: true, Ready: true, Observed: true, Revision: "rev2"}
	var out Outcome
	for sec := 0; time.Duration(sec)*time.Second < limit; sec++ {
		now := epoch.Add(time.Duration(sec) * time.Second)
		snap := rollout.Snapshot{
			Canary:  cn,
			Target:  target,
			Primary: rollout.Workload{Found: true, Ready: true, Replicas: 2, Revision: primaryRevision},
			Route:   route,
			Now:     now,
		}
		if rollout.ChecksDue(snap) {
			snap.Checks = runChecks(snap, t, sec)
		}
		plan := rollout.ComputePlan(snap)
		cn.Status = plan.Status
		// The world does what it is told at once.
		route = rollout.State{Found: true, Accepted: true, Routing: plan.Routing}
		if plan.PromotePrimary {
			primaryRevision = cn.Status.LastAppliedSpec
		}
		if plan.CanaryReplicas != nil {
			target.Replicas, target.Pods = *plan.CanaryReplicas, *plan.CanaryReplicas
		}
		if sec > 0 && (cn.Status.Phase == v1alpha1.PhaseSucceeded || cn.Status.Phase == v1alpha1.PhaseFailed) {
			out.Promoted = cn.Status.Phase == v1alpha1.PhaseSucceeded
			out.Duration = time.Duration(sec) * time.Second
			out.Reason = plan.Reason
			return out
		}
		// Users' requests of the next second follow the route as it now stands.
		share := float64(route.Routing.Weights.Canary) / 100
		if route.Routing.Cohort {
			share = traffic.CohortShare + (1-traffic.CohortShare)*share
		}
		served, failed := t.second(share, canary, primary)
		out.CanaryRequests += served
		out.CanaryFailed += failed
	}
	out.Duration = limit
	out.Reason = "Unfinished"
	return out
}

func runChecks(s rollout.Snapshot, t *traffic, sec int) []v1alpha1.Decision {
	cn := s.Canary
	stepStart := int(cn.Status.StepStartedAt.Sub(epoch) / time.Second)
	var decisions []v1alpha1.Decision
	for _, m := range cn.Spec.Analysis.Metrics {
		src := &source{traffic: t, metric: m, now: sec, stepStart: stepStart, lookback: int(rollout.CheckWindow(s, m) / time.Second)}
		decisions = append(decisions, analysis.Evaluate(context.Background(), m, src, rollout.CheckParams(cn, m)))
	}
	return decisions
}
