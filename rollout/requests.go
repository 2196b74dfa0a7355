package rollout

import (
	"cmp"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// maxManualActions bounds the history of manual requests kept in status.
const maxManualActions = 10

// handleRequest acts on a manual request that has not been handled yet: promote, abort,
// pause, resume or retry. It records the request, with who asked and when, in status and in
// an event, whatever the outcome, and reports whether the plan is complete (abort and retry
// decide the whole reconcile).
func (p *planner) handleRequest() (done bool) {
	req := p.s.Request
	if req == nil {
		return false
	}
	st := p.st()
	st.LastRequestID = req.ID
	rec := v1alpha1.ManualAction{Action: req.Action, ID: req.ID, User: req.User, RequestedAt: req.Time, HandledAt: metav1.NewTime(p.s.Now)}
	who := cmp.Or(req.User, "an unnamed user")
	active := st.Phase == v1alpha1.PhaseWaiting || st.Phase == v1alpha1.PhaseProgressing || st.Phase == v1alpha1.PhaseWaitingPromotion
	outcome := func(o v1alpha1.RequestOutcome, msg string) {
		rec.Outcome, rec.Message = o, msg
		st.ManualActions = append([]v1alpha1.ManualAction{rec}, st.ManualActions...)
		if len(st.ManualActions) > maxManualActions {
			st.ManualActions = st.ManualActions[:maxManualActions]
		}
	}
	refuse := func(msg string) {
		outcome(v1alpha1.RequestRefused, msg)
		p.event(corev1.EventTypeWarning, ReasonRequestRefused, msg)
	}
	ignore := func(msg string) {
		outcome(v1alpha1.RequestIgnored, msg)
		p.event(corev1.EventTypeNormal, ReasonRequestIgnored, msg)
	}
	apply := func(reason, msg string) {
		outcome(v1alpha1.RequestApplied, msg)
		p.event(corev1.EventTypeNormal, reason, msg)
	}
	phase := st.Phase
	switch req.Action {
	case v1alpha1.ActionPause:
		switch {
		case st.Paused != nil:
			ignore(fmt.Sprintf("Pause requested by %s: the Canary is already paused, by %s.", who, cmp.Or(st.Paused.User, "an unnamed user")))
		case phase == v1alpha1.PhasePromoting || phase == v1alpha1.PhaseFinalising:
			refuse(fmt.Sprintf("Pause requested by %s refused: the promotion of revision %s is under way and finishes by itself.", who, st.LastAppliedSpec))
		default:
			paused := rec
			paused.Outcome = v1alpha1.RequestApplied
			st.Paused = &paused
			apply(ReasonPaused, fmt.Sprintf("Paused by %s: traffic stays where it is (canary %d%%), and no check, step or rollout runs until the Canary is resumed.", who, st.CanaryWeight))
		}
	case v1alpha1.ActionResume:
		if st.Paused == nil {
			ignore(fmt.Sprintf("Resume requested by %s: the Canary is not paused.", who))
			break
		}
		st.Paused = nil
		// The current step starts afresh: its window must not reach back into the pause.
		st.StepStartedAt = nil
		p.touch()
		apply(ReasonResumed, fmt.Sprintf("Resumed by %s; the rollout goes on from step %d.", who, st.Step))
	case v1alpha1.ActionPromote:
		if !active {
			refuse(fmt.Sprintf("Promotion requested by %s refused: no rollout is waiting or in progress (phase %s).", who, cmp.Or(string(phase), "none")))
			break
		}
		if st.PromotionRequested != nil {
			ignore(fmt.Sprintf("Promotion requested by %s: its promotion was already requested, by %s.", who, cmp.Or(st.PromotionRequested.User, "an unnamed user")))
			break
		}
		promote := rec
		promote.Outcome = v1alpha1.RequestApplied
		st.PromotionRequested = &promote
		msg := fmt.Sprintf("Promotion of revision %s requested by %s: the remaining steps and approvals are skipped; the canary is promoted once it is ready.", st.LastAppliedSpec, who)
		if st.Paused != nil {
			st.Paused = nil
			msg += " The pause is lifted."
		}
		apply(ReasonPromotionRequested, msg)
	case v1alpha1.ActionAbort:
		if !active {
			refuse(fmt.Sprintf("Abort requested by %s refused: no rollout is waiting or in progress (phase %s).", who, cmp.Or(string(phase), "none")))
			break
		}
		st.Paused = nil
		msg := fmt.Sprintf("Aborted by %s at step %d (%d%% canary traffic).", who, st.Step, st.CanaryWeight)
		outcome(v1alpha1.RequestApplied, msg)
		p.rollback(ReasonAborted, msg)
		return true
	case v1alpha1.ActionRetry:
		switch {
		case phase != v1alpha1.PhaseFailed:
			refuse(fmt.Sprintf("Retry requested by %s refused: only a failed rollout can be retried (phase %s).", who, cmp.Or(string(phase), "none")))
		case p.s.Target.Revision != st.LastAppliedSpec:
			ignore(fmt.Sprintf("Retry requested by %s: revision %s of the Deployment rolls out by itself.", who, p.s.Target.Revision))
		default:
			msg := fmt.Sprintf("Retrying revision %s, as %s asked.", st.LastAppliedSpec, who)
			outcome(v1alpha1.RequestApplied, msg)
			p.beginRollout(msg)
			return true
		}
	case "":
		refuse(fmt.Sprintf("The %s annotation could not be read: write JSON such as {\"action\":\"promote\",\"id\":\"1\"}, or one of promote, abort, pause, resume or retry.", v1alpha1.RequestAnnotation))
	default:
		refuse(fmt.Sprintf("Request %q by %s refused: the action must be one of promote, abort, pause, resume or retry.", req.Action, who))
	}
	return false
}

// holdPaused keeps a paused Canary's traffic where it is. A new revision still sends its traffic
// back to the primary, since the canary's pods no longer run what was being analysed, and then
// waits at weight 0; in a stable phase it does not start. It reports whether the Canary holds.
func (p *planner) holdPaused() bool {
	st := p.st()
	if st.Paused == nil {
		return false
	}
	newRevision := p.s.Target.Revision != st.LastAppliedSpec
	switch st.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhaseWaitingPromotion:
		if newRevision {
			p.startRollout(fmt.Sprintf("Revision %s of Deployment %s supersedes revision %s while the Canary is paused; traffic goes back to the primary until it is resumed.", p.s.Target.Revision, p.s.Canary.Spec.TargetRef.Name, st.LastAppliedSpec))
		}
	case v1alpha1.PhaseWaiting:
		p.scaleCanary(0)
	case v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed:
		if !newRevision {
			return false
		}
		st.CanaryWeight = 0
		p.scaleCanary(0)
		p.wait(ReasonPaused, fmt.Sprintf("Revision %s of Deployment %s waits to roll out: the Canary was paused by %s; resume it to go on.", p.s.Target.Revision, p.s.Canary.Spec.TargetRef.Name, cmp.Or(st.Paused.User, "an unnamed user")), 0)
		return true
	default:
		return false
	}
	p.wait(ReasonPaused, fmt.Sprintf("Paused by %s at step %d (canary %d%%); traffic stays where it is until the Canary is resumed.", cmp.Or(st.Paused.User, "an unnamed user"), st.Step, st.CanaryWeight), 0)
	return true
}
