package rollout

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// SetConditions writes the plan's verdict into the status conditions, a pure function of the
// plan, so the controller and the tests agree on it. Reconciling and Stalled are present only
// while true, as kstatus expects of abnormal-true conditions.
func SetConditions(st *v1alpha1.CanaryStatus, generation int64, p Plan) {
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation,
		})
	}
	ready := metav1.ConditionFalse
	if p.Ready {
		ready = metav1.ConditionTrue
	}
	set(ConditionReady, ready, p.Reason, p.Message)

	switch {
	case p.Stalled:
		set(ConditionStalled, metav1.ConditionTrue, p.Reason, p.Message)
		meta.RemoveStatusCondition(&st.Conditions, ConditionReconciling)
	case p.Ready:
		meta.RemoveStatusCondition(&st.Conditions, ConditionStalled)
		meta.RemoveStatusCondition(&st.Conditions, ConditionReconciling)
	default:
		meta.RemoveStatusCondition(&st.Conditions, ConditionStalled)
		set(ConditionReconciling, metav1.ConditionTrue, p.Reason, p.Message)
	}

	switch {
	case st.Phase == v1alpha1.PhaseInitialized || st.Phase == v1alpha1.PhaseSucceeded:
		set(ConditionPromoted, metav1.ConditionTrue, string(st.Phase), "The last revision is promoted.")
	case st.Phase == v1alpha1.PhaseFailed:
		set(ConditionPromoted, metav1.ConditionFalse, ReasonRolledBack, "The last revision was rolled back.")
	case InRollout(st.Phase):
		set(ConditionPromoted, metav1.ConditionUnknown, string(st.Phase), "A rollout is in progress.")
	}
}
