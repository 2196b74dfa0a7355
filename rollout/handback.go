package rollout

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// HandBackSnapshot is what a deletion's hand-back decides on: the Canary being deleted, the two
// Deployments, and where the traffic stands.
type HandBackSnapshot struct {
	Canary  *v1alpha1.Canary
	Target  Workload
	Primary Workload
	// TargetGoing is true when the target Deployment is being deleted too (its namespace is,
	// say): there is nothing to hand back to.
	TargetGoing bool
	// ApexOnTarget is true once the apex Service selects the target's own pods.
	ApexOnTarget bool
	// Route is where the route stands: Accepted once it sends all traffic to the apex Service (a
	// route trafficctl created) or is given back (a route the user owns), and the data plane took
	// it. Provider kubernetes has no route beside the apex Service.
	RouteHandedBack bool
	RouteMessage    string
	Now             time.Time
}

// HandBackPlan is the next move of a deletion's hand-back.
type HandBackPlan struct {
	Status v1alpha1.CanaryStatus
	// ScaleTarget is the replica count to set on the target; nil leaves it alone.
	ScaleTarget *int32
	// HandBack asks for the apex Service to select the target's pods and the route to send all
	// traffic to it (or the user's route to be given back); asked again until it is done.
	HandBack bool
	// Orphan asks for every object trafficctl made to outlive the Canary, unowned.
	Orphan bool
	// Done lets the Canary go: what it still owns goes with it.
	Done bool
	// Reason and Message become the Ready condition while the hand-back is under way.
	Reason, Message string
	// Stalled marks a hand-back that has waited past the progress deadline.
	Stalled      bool
	RequeueAfter time.Duration
}

// handBackDrain is how long the primary stays up once all traffic is on the target, so that
// requests already sent to it (and a data plane still following the change of endpoints) finish.
const handBackDrain = 10 * time.Second

// PlanHandBack decides the next move of a deleted Canary. With deletionPolicy Revert it hands
// the app back before anything goes away: the target is scaled up to the primary's replicas
// (never down), traffic moves to it once it is available, the primary stays up handBackDrain
// more, and only then does the Canary go, taking the primary and the rest of what it owns with
// it. With Orphan everything trafficctl made stays serving, unowned. A target that is gone, or
// going with its namespace, has nothing to be handed back to.
func PlanHandBack(s HandBackSnapshot) HandBackPlan {
	cn := s.Canary
	p := HandBackPlan{Status: *cn.Status.DeepCopy()}
	if cn.DeletionPolicyOf() == v1alpha1.DeletionOrphan {
		p.Orphan, p.Done = true, true
		return p
	}
	if !s.Target.Found || s.TargetGoing {
		p.Done = true
		return p
	}
	st := &p.Status
	if st.Phase != v1alpha1.PhaseTerminating {
		st.Phase = v1alpha1.PhaseTerminating
		now := metav1.NewTime(s.Now)
		st.LastTransitionTime = &now
		st.HandedBackAt = nil
	}
	target := cn.Spec.TargetRef.Name
	waited := st.LastTransitionTime != nil && s.Now.Sub(st.LastTransitionTime.Time) > cn.ProgressDeadline()
	wait := func(reason, msg string, after time.Duration) HandBackPlan {
		if waited {
			msg += fmt.Sprintf(" The hand-back has waited longer than the progress deadline (%s); to leave the primary serving and let the Canary go, set spec.deletionPolicy to Orphan.", cn.ProgressDeadline())
			p.Stalled = true
		}
		p.Reason, p.Message, p.RequeueAfter = reason, msg, after
		return p
	}

	if h := st.History; len(h) > 0 && h[0].Result == v1alpha1.PhaseFailed && h[0].Revision == s.Target.Revision && s.Target.Revision != st.LastPromotedSpec {
		// Handing the app back to the revision that was rolled back would serve what failed.
		return wait(ReasonHandBackRefused, fmt.Sprintf("The Canary is being deleted, but Deployment %s still runs revision %s, which was rolled back; handing the app back to it would serve what failed, so the primary keeps serving. Roll Deployment %s back to the promoted revision %s (kubectl rollout undo, or revert it in Git), or set spec.deletionPolicy to Orphan to keep the primary.",
			target, s.Target.Revision, target, st.LastPromotedSpec), pollInterval)
	}
	want := int32(1)
	switch {
	case s.Primary.Found && s.Primary.Replicas > 0:
		want = s.Primary.Replicas
	case s.Target.Replicas > 0:
		want = s.Target.Replicas
	}
	if s.Target.Replicas < want {
		p.ScaleTarget = &want
		return wait(ReasonHandingBack, fmt.Sprintf("The Canary is being deleted: scaling Deployment %s back up to %d replicas before traffic moves to it.", target, want), 0)
	}
	if !s.Target.Ready || s.Target.Replicas == 0 {
		return wait(ReasonHandingBack, fmt.Sprintf("The Canary is being deleted: waiting for Deployment %s to become available before traffic moves to it: %s.", target, s.Target.Message), pollInterval)
	}
	if !s.ApexOnTarget || !s.RouteHandedBack {
		p.HandBack = true
		msg := fmt.Sprintf("The Canary is being deleted: moving all traffic to Deployment %s.", target)
		if s.RouteMessage != "" {
			msg = fmt.Sprintf("The Canary is being deleted: moving all traffic to Deployment %s: %s.", target, s.RouteMessage)
		}
		return wait(ReasonHandingBack, msg, pollInterval)
	}
	if st.HandedBackAt == nil {
		now := metav1.NewTime(s.Now)
		st.HandedBackAt = &now
	}
	if until := st.HandedBackAt.Add(handBackDrain); s.Now.Before(until) {
		return wait(ReasonHandingBack, fmt.Sprintf("The Canary is being deleted: all traffic is on Deployment %s; the primary stays up %s so that requests already sent to it finish.", target, handBackDrain), until.Sub(s.Now))
	}
	p.Done = true
	return p
}
