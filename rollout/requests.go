package rollout

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	if outcome, why := CheckRequest(req.Action, st, p.s.Target.Revision); outcome != v1alpha1.RequestApplied {
		msg := fmt.Sprintf("%s requested by %s: %s.", requestTitle(req.Action), who, why)
		if outcome == v1alpha1.RequestRefused {
			msg = fmt.Sprintf("%s requested by %s refused: %s.", requestTitle(req.Action), who, why)
			refuse(msg)
			return false
		}
		ignore(msg)
		return false
	}
	switch req.Action {
	case v1alpha1.ActionPause:
		paused := rec
		paused.Outcome = v1alpha1.RequestApplied
		st.Paused = &paused
		apply(ReasonPaused, fmt.Sprintf("Paused by %s: traffic stays where it is (canary %d%%), and no check, step or rollout runs until the Canary is resumed.", who, st.CanaryWeight))
	case v1alpha1.ActionResume:
		st.Paused = nil
		// The current step starts afresh: its window must not reach back into the pause.
		st.StepStartedAt = nil
		p.touch()
		apply(ReasonResumed, fmt.Sprintf("Resumed by %s; the rollout goes on from step %d.", who, st.Step))
	case v1alpha1.ActionPromote:
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
		st.Paused = nil
		msg := fmt.Sprintf("Aborted by %s at step %d (%d%% canary traffic).", who, st.Step, st.CanaryWeight)
		outcome(v1alpha1.RequestApplied, msg)
		p.rollback(ReasonAborted, msg)
		return true
	case v1alpha1.ActionRetry:
		msg := fmt.Sprintf("Retrying revision %s, as %s asked.", st.LastAppliedSpec, who)
		outcome(v1alpha1.RequestApplied, msg)
		p.beginRollout(msg)
		return true
	}
	return false
}

// CheckRequest holds the rules of manual requests: what the controller does with action on a
// Canary whose rollout stands at st, and, unless it applies it, why not, as the end of a
// sentence ("no rollout is waiting or in progress (phase Initialized)"). target is the target's
// revision; a retry is ignored when it differs from the one st records, since the newer revision
// rolls out by itself. The planner records this outcome, and the CLI refuses up front what would
// not be applied, so the two never disagree.
func CheckRequest(action v1alpha1.RequestActionType, st *v1alpha1.CanaryStatus, target string) (v1alpha1.RequestOutcome, string) {
	phase := cmp.Or(string(st.Phase), "none")
	switch action {
	case v1alpha1.ActionPause:
		switch {
		case st.Paused != nil:
			return v1alpha1.RequestIgnored, fmt.Sprintf("it is already paused, by %s", cmp.Or(st.Paused.User, "an unnamed user"))
		case PromotionUnderWay(st.Phase):
			return v1alpha1.RequestRefused, fmt.Sprintf("the promotion of revision %s is under way and finishes by itself (phase %s)", st.LastAppliedSpec, phase)
		}
	case v1alpha1.ActionResume:
		if st.Paused == nil {
			return v1alpha1.RequestIgnored, fmt.Sprintf("it is not paused (phase %s)", phase)
		}
	case v1alpha1.ActionPromote, v1alpha1.ActionAbort:
		if !UnderAnalysis(st.Phase) {
			return v1alpha1.RequestRefused, fmt.Sprintf("no rollout is waiting or in progress (phase %s)", phase)
		}
		if action == v1alpha1.ActionPromote && st.PromotionRequested != nil {
			return v1alpha1.RequestIgnored, fmt.Sprintf("its promotion was already requested, by %s", cmp.Or(st.PromotionRequested.User, "an unnamed user"))
		}
	case v1alpha1.ActionRetry:
		switch {
		case st.Phase != v1alpha1.PhaseFailed:
			return v1alpha1.RequestRefused, fmt.Sprintf("only a failed rollout can be retried (phase %s)", phase)
		case target != "" && target != st.LastAppliedSpec:
			return v1alpha1.RequestIgnored, fmt.Sprintf("revision %s of the Deployment rolls out by itself", target)
		}
	case "":
		return v1alpha1.RequestRefused, fmt.Sprintf("the %s annotation could not be read: write JSON such as {\"action\":\"promote\",\"id\":\"1\"}, or one of promote, abort, pause, resume or retry", v1alpha1.RequestAnnotation)
	default:
		return v1alpha1.RequestRefused, "the action must be one of promote, abort, pause, resume or retry"
	}
	return v1alpha1.RequestApplied, ""
}

// requestTitle names a request at the start of a sentence: "Promotion requested by alice".
func requestTitle(a v1alpha1.RequestActionType) string {
	switch a {
	case v1alpha1.ActionPromote:
		return "Promotion"
	case v1alpha1.ActionAbort, v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionRetry:
		return UpperFirst(string(a))
	case "":
		return "A request"
	}
	return fmt.Sprintf("Request %q", a)
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

// PendingRequest reads the Canary's trafficctl.io/request annotation; nil when it is absent or
// has been handled (its id is status.lastRequestID, or is among status.manualActions). A bare action ("promote") is accepted too, for kubectl annotate; its id is
// its hash, so writing the same bare action twice in a row asks once. A value that cannot be
// read becomes a request with no action, which the planner refuses with the reason.
func PendingRequest(cn *v1alpha1.Canary) *v1alpha1.ManualRequest {
	raw, ok := cn.Annotations[v1alpha1.RequestAnnotation]
	if !ok || raw == "" {
		return nil
	}
	req := &v1alpha1.ManualRequest{}
	if err := json.Unmarshal([]byte(raw), req); err != nil || req.ID == "" {
		sum := sha256.Sum256([]byte(raw))
		req = &v1alpha1.ManualRequest{ID: "sha256:" + hex.EncodeToString(sum[:8])}
		if a := v1alpha1.RequestActionType(raw); validAction(a) {
			req.Action = a
		}
	}
	if req.ID == cn.Status.LastRequestID {
		return nil
	}
	for _, a := range cn.Status.ManualActions {
		if a.ID == req.ID {
			return nil
		}
	}
	return req
}

func validAction(a v1alpha1.RequestActionType) bool {
	switch a {
	case v1alpha1.ActionPromote, v1alpha1.ActionAbort, v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionRetry:
		return true
	}
	return false
}
