package rollout

import "github.com/trafficctl/trafficctl/api/v1alpha1"

// Phases lists every phase a Canary can be in, in the order a rollout meets them; the controller's
// metrics give each its series.
var Phases = []v1alpha1.CanaryPhase{
	v1alpha1.PhaseInitializing, v1alpha1.PhaseInitialized, v1alpha1.PhaseWaiting, v1alpha1.PhaseProgressing,
	v1alpha1.PhaseWaitingPromotion, v1alpha1.PhasePromoting, v1alpha1.PhaseFinalising, v1alpha1.PhaseSucceeded,
	v1alpha1.PhaseFailed, v1alpha1.PhaseTerminating,
}

// UnderAnalysis reports whether a new revision waits for approval or is being analysed: the
// phases in which it can still be promoted early or aborted.
func UnderAnalysis(phase v1alpha1.CanaryPhase) bool {
	switch phase {
	case v1alpha1.PhaseWaiting, v1alpha1.PhaseProgressing, v1alpha1.PhaseWaitingPromotion:
		return true
	}
	return false
}

// PromotionUnderWay reports whether a revision that passed is being copied onto the primary and
// the traffic sent back to it, which finishes by itself.
func PromotionUnderWay(phase v1alpha1.CanaryPhase) bool {
	return phase == v1alpha1.PhasePromoting || phase == v1alpha1.PhaseFinalising
}

// InRollout reports whether a rollout is under way: a new revision is being analysed or promoted.
func InRollout(phase v1alpha1.CanaryPhase) bool {
	return UnderAnalysis(phase) || PromotionUnderWay(phase)
}

// Analysing reports whether the current step's checks run in this phase: while the rollout
// progresses, and while a promotion that passed every step waits for approval.
func Analysing(phase v1alpha1.CanaryPhase) bool {
	return phase == v1alpha1.PhaseProgressing || phase == v1alpha1.PhaseWaitingPromotion
}
