package rollout

import (
	"time"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// ChecksDue reports whether the current step's checks should run in this reconcile: the
// rollout is progressing on the revision it started with, the route accepted the step's
// weights at least one check interval ago, and the last check is a check interval old.
func ChecksDue(s Snapshot) bool {
	st := s.Canary.Status
	if !Analysing(st.Phase) {
		return false
	}
	if st.Step < 1 || st.StepStartedAt == nil || st.Paused != nil || st.PromotionRequested != nil || s.Request != nil {
		// A pending manual request is handled first; the checks run at the next look.
		return false
	}
	if s.Target.Revision != st.LastAppliedSpec {
		return false
	}
	every := s.Canary.CheckInterval()
	if s.Now.Before(st.StepStartedAt.Add(every)) {
		return false
	}
	return st.LastCheckedAt == nil || st.LastCheckedAt.Before(st.StepStartedAt) ||
		!s.Now.Before(st.LastCheckedAt.Add(every))
}

// CarriedEvidence is what a sequential check gathered in the rollout's completed steps.
func CarriedEvidence(st *v1alpha1.CanaryStatus, metric string) *v1alpha1.Evidence {
	for i := range st.Evidence {
		if st.Evidence[i].Metric == metric {
			return &st.Evidence[i]
		}
	}
	return nil
}

// CheckParams are what a check of metric m needs beyond its queries: the Canary's minRequests
// and the evidence the check carried from completed steps.
func CheckParams(cn *v1alpha1.Canary, m v1alpha1.CanaryMetric) analysis.Params {
	p := analysis.Params{Carried: CarriedEvidence(&cn.Status, m.Name)}
	if cn.Spec.Analysis.MinRequests != nil {
		p.MinRequests = *cn.Spec.Analysis.MinRequests
	}
	return p
}

// CheckWindow is how far back the current step's checks look: the metric's interval (the
// analysis interval when unset), never reaching back before the step's weights took effect.
func CheckWindow(s Snapshot, m v1alpha1.CanaryMetric) time.Duration {
	window := s.Canary.AnalysisInterval()
	if d, err := time.ParseDuration(m.Interval); err == nil && d > 0 {
		window = d
	}
	if st := s.Canary.Status.StepStartedAt; st != nil {
		if since := s.Now.Sub(st.Time); since < window {
			window = since
		}
	}
	return window
}
