package rollout

import (
	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Strategy is how a rollout exposes the canary, chosen by the Canary's analysis fields.
type Strategy string

// The strategies. Each runs on every router that can carry it; CRD validation keeps provider
// kubernetes to BlueGreen and ReplicaRatio.
const (
	// StrategyCanary sends a growing share of traffic to the canary, step by step.
	StrategyCanary Strategy = "Canary"
	// StrategyABTesting sends the requests matching analysis.match, and only those, to the canary
	// for analysis.iterations intervals.
	StrategyABTesting Strategy = "ABTesting"
	// StrategyBlueGreen keeps users off the canary (mirrored traffic aside) for
	// analysis.iterations intervals, then switches all traffic to it at once.
	StrategyBlueGreen Strategy = "BlueGreen"
	// StrategyReplicaRatio is a weighted canary without a mesh: one Service selects both
	// Deployments and the canary's share is its share of the ready pods.
	StrategyReplicaRatio Strategy = "ReplicaRatio"
)

// StrategyOf reads the strategy off the spec.
func StrategyOf(cn *v1alpha1.Canary) Strategy {
	a := cn.Spec.Analysis
	switch {
	case a.Iterations != nil && len(a.Match) > 0:
		return StrategyABTesting
	case a.Iterations != nil:
		return StrategyBlueGreen
	case cn.Spec.Provider == v1alpha1.ProviderKubernetes:
		return StrategyReplicaRatio
	default:
		return StrategyCanary
	}
}

// Stage is one analysis step: what the route carries while its checks run.
type Stage struct {
	// Weight is the canary's share of the split, in percent.
	Weight int32
	// Cohort sends the A/B cohort to the canary.
	Cohort bool
	// Mirror is the share of requests copied to the canary, in percent.
	Mirror int32
}

// Stages lists a rollout's analysis steps in order. A weighted canary with mirror starts with
// a mirrored step at weight 0; blue/green and A/B run analysis.iterations equal steps.
func Stages(cn *v1alpha1.Canary) []Stage {
	a := cn.Spec.Analysis
	var mirror int32
	if a.Mirror {
		mirror = 100
		if a.MirrorWeight != nil {
			mirror = *a.MirrorWeight
		}
	}
	var stages []Stage
	switch StrategyOf(cn) {
	case StrategyABTesting:
		for range *a.Iterations {
			stages = append(stages, Stage{Cohort: true})
		}
	case StrategyBlueGreen:
		for range *a.Iterations {
			stages = append(stages, Stage{Mirror: mirror})
		}
	default:
		if mirror > 0 {
			stages = append(stages, Stage{Mirror: mirror})
		}
		for _, w := range Steps(a) {
			stages = append(stages, Stage{Weight: w})
		}
	}
	return stages
}

// RoutingFor is what the route must carry for a rollout standing at st: the current stage's
// extra rules on top of st.CanaryWeight. Outside a rollout (and once finalising) it is the
// resting routing, everything on the primary.
func RoutingFor(cn *v1alpha1.Canary, st *v1alpha1.CanaryStatus) Routing {
	r := Routing{Weights: ForCanary(st.CanaryWeight)}
	if st.Phase != v1alpha1.PhaseProgressing && st.Phase != v1alpha1.PhasePromoting {
		return r
	}
	if held(st) {
		// An analysis outage sends everything back to the primary, mirrored and cohort traffic
		// included.
		return Primary()
	}
	stages := Stages(cn)
	if st.Step >= 1 && int(st.Step) <= len(stages) {
		stage := stages[st.Step-1]
		r.Cohort = stage.Cohort
		// Blue/green stops mirroring once it switches: the canary then gets every request.
		if st.CanaryWeight < 100 {
			r.Mirror = stage.Mirror
		}
	}
	// Once everyone is switched to the canary for the promotion, nobody needs pinning.
	if cn.Spec.Analysis.SessionAffinity != nil && st.Step >= 1 && st.CanaryWeight < 100 {
		r.Sticky = st.LastAppliedSpec
	}
	return r
}

// RatioWeight is the canary's real share under StrategyReplicaRatio when it asks for weight
// beside primary replicas: pods come whole, so 5% beside 9 primaries is 1 pod, 10%.
func RatioWeight(primary, weight int32) int32 {
	return Share(primary, RatioReplicas(primary, weight))
}

// Steps lists the canary's weight at each step: stepWeights as written, or stepWeight,
// 2*stepWeight, ... up to maxWeight (100 when unset), ending at maxWeight exactly.
func Steps(a v1alpha1.CanaryAnalysis) []int32 {
	if len(a.StepWeights) > 0 {
		return a.StepWeights
	}
	if a.StepWeight == nil || *a.StepWeight <= 0 {
		return nil
	}
	limit := int32(100)
	if a.MaxWeight != nil {
		limit = *a.MaxWeight
	}
	var steps []int32
	for w := *a.StepWeight; w < limit; w += *a.StepWeight {
		steps = append(steps, w)
	}
	return append(steps, limit)
}

// SwitchesBeforePromotion reports whether all traffic goes to the canary while the primary rolls
// out the promoted revision: for blue/green, which promises one switch, and for sticky sessions,
// whose users pinned to the primary would otherwise meet both versions during its rolling update.
func SwitchesBeforePromotion(cn *v1alpha1.Canary) bool {
	s := StrategyOf(cn)
	return s == StrategyBlueGreen || (s == StrategyCanary && cn.Spec.Analysis.SessionAffinity != nil)
}

// CanaryReplicas is the canary's size at a moment of a rollout, beside a primary of primary
// replicas; none between rollouts. By default (analysis.canaryReplicas Full) it runs as many pods
// as the primary, so it is never short of what its share needs. Under a replica ratio it runs the
// pods that make up its share weight (none once it is back at 0% or finalising). Proportional
// runs ceil(primary x share / 100) pods, at least 1, sized for the next share the canary takes
// (the next step's, or all traffic before a switch), so the route never gives it a share its pods
// are not already up for; mirrored and A/B steps run Full.
func CanaryReplicas(cn *v1alpha1.Canary, phase v1alpha1.CanaryPhase, step, weight, primary int32) int32 {
	if !InRollout(phase) {
		return 0
	}
	primary = max(primary, 1)
	switch StrategyOf(cn) {
	case StrategyReplicaRatio:
		if phase == v1alpha1.PhaseFinalising || (weight == 0 && step > 0) {
			return 0
		}
		return RatioReplicas(primary, max(weight, 1))
	case StrategyCanary:
		if cn.Spec.Analysis.CanaryReplicas == v1alpha1.CanaryReplicasProportional {
			return proportional(primary, nextShare(cn, phase, step, weight))
		}
	}
	return primary
}

// nextShare is the largest share, in percent, the canary takes from now until the next step
// begins: its share now, the next stage's, all of it before a switch, 100 for a mirrored stage.
func nextShare(cn *v1alpha1.Canary, phase v1alpha1.CanaryPhase, step, weight int32) int32 {
	stages := Stages(cn)
	if len(stages) == 0 {
		return 100
	}
	share := weight
	switch {
	case phase == v1alpha1.PhaseFinalising:
		// The traffic is back on the primary: the canary keeps the size it had.
		share = stages[len(stages)-1].Weight
	case int(step) < len(stages):
		next := stages[step]
		if next.Mirror > 0 || next.Cohort {
			return 100
		}
		share = max(share, next.Weight)
	case SwitchesBeforePromotion(cn):
		return 100
	}
	if step >= 1 && int(step) <= len(stages) && stages[step-1].Mirror > 0 {
		return 100
	}
	return share
}

// proportional is the pods a share of weight percent needs beside primary pods taking the rest:
// ceil(primary x weight / 100), at least 1.
func proportional(primary, weight int32) int32 {
	return int32(max((int64(primary)*int64(weight)+99)/100, 1))
}
