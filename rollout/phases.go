package rollout

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (p *planner) initialize() {
	st := p.st()
	if st.Phase == "" {
		p.transition(v1alpha1.PhaseInitializing)
	}
	st.CanaryWeight = 0
	if !p.s.Primary.Found || !p.s.Primary.Ready {
		p.wait(ReasonInitializing, fmt.Sprintf("Waiting for the primary Deployment to become ready: %s", cmp.Or(p.s.Primary.Message, "it is being created")), 0)
		return
	}
	if want := Primary(); !p.s.Route.Found || p.s.Route.Routing != want || !p.s.Route.Accepted {
		if StrategyOf(p.s.Canary) == StrategyReplicaRatio {
			// The apex Service selects the target's pods too: all traffic is on the primary only
			// once they are gone.
			p.scaleCanary(0)
		}
		p.wait(ReasonInitializing, "Waiting for the route to send all traffic to the primary: "+cmp.Or(p.s.Route.Message, "it does not exist yet"), pollInterval)
		return
	}
	p.transition(v1alpha1.PhaseInitialized)
	st.LastAppliedSpec = p.s.Primary.Revision
	st.LastPromotedSpec = p.s.Primary.Revision
	p.scaleCanary(0)
	p.done(ReasonInitialized, "The primary Deployment serves all traffic; the next change of the target starts a rollout.")
	p.event(corev1.EventTypeNormal, ReasonInitialized, fmt.Sprintf("Initialization done: %s serves all traffic.", p.s.Canary.PrimaryDeploymentName()))
}

func (p *planner) idle() {
	st := p.st()
	if p.s.Target.Revision != st.LastAppliedSpec {
		p.beginRollout(fmt.Sprintf("New revision %s of Deployment %s detected; starting a rollout.", p.s.Target.Revision, p.s.Canary.Spec.TargetRef.Name))
		return
	}
	st.CanaryWeight = 0
	p.scaleCanary(0)
	switch st.Phase {
	case v1alpha1.PhaseFailed:
		p.plan.Stalled = true
		reason, msg := readyCondition(p.s.Canary)
		if reason == "" {
			reason, msg = ReasonRolledBack, "The rollout failed and was rolled back; the primary serves all traffic. Change the target to start a new rollout."
		}
		p.notReady(reason, msg)
	case v1alpha1.PhaseSucceeded:
		p.done(ReasonSucceeded, fmt.Sprintf("Revision %s is promoted and serves all traffic.", st.LastPromotedSpec))
	default:
		p.done(ReasonInitialized, "The primary Deployment serves all traffic; the next change of the target starts a rollout.")
	}
}

// resetRollout enters phase with the target's revision and a clean slate of checks.
func (p *planner) resetRollout(phase v1alpha1.CanaryPhase) {
	st := p.st()
	if st.LastAppliedSpec != p.s.Target.Revision {
		// A manual promotion was asked for the revision it names, not for its successor.
		st.PromotionRequested = nil
	}
	p.transition(phase)
	st.LastAppliedSpec = p.s.Target.Revision
	st.Step = 0
	st.CanaryWeight = 0
	st.FailedChecks = 0
	st.ConsecutiveFailedChecks = 0
	st.StepStartedAt = nil
	st.LastCheckedAt = nil
	st.Decisions = nil
	st.Evidence = nil
	st.MaxWeightReached = 0
	st.CanaryFresh = false
	st.RolloutStartedAt = nil
	st.Outage = nil
}

func (p *planner) startRollout(message string) {
	st := p.st()
	p.resetRollout(v1alpha1.PhaseProgressing)
	now := metav1.NewTime(p.s.Now)
	st.RolloutStartedAt = &now
	if p.freshCanary() {
		p.scaleCanary(p.canaryReplicas(Stages(p.s.Canary)[0].Weight))
	}
	p.event(corev1.EventTypeNormal, ReasonNewRevision, message)
	p.wait(ReasonWaitingForCanary, "Waiting for the canary Deployment to become ready.", 0)
}

func (p *planner) progress() {
	st := p.st()
	if p.s.Target.Revision != st.LastAppliedSpec {
		p.beginRollout(fmt.Sprintf("Revision %s of Deployment %s supersedes revision %s mid-rollout; restarting the analysis.", p.s.Target.Revision, p.s.Canary.Spec.TargetRef.Name, st.LastAppliedSpec))
		return
	}
	steps := Stages(p.s.Canary)
	if st.PromotionRequested != nil && (st.Step > 0 || p.canaryUp()) {
		p.transition(v1alpha1.PhasePromoting)
		msg := fmt.Sprintf("Promoting revision %s at step %d without the remaining steps, as %s asked; copying it onto %s.", st.LastAppliedSpec, st.Step, cmp.Or(st.PromotionRequested.User, "someone"), p.s.Canary.PrimaryDeploymentName())
		p.event(corev1.EventTypeNormal, ReasonPromoting, msg)
		p.wait(ReasonPromoting, msg, pollInterval)
		return
	}
	switch {
	case st.Step == 0:
		if p.freshCanary() {
			p.scaleCanary(p.canaryReplicas(steps[0].Weight))
		}
	case held(st):
		// The analysis is out: no traffic for the canary (and no pods for a replica ratio,
		// whose pods are its traffic) until it answers again.
		st.CanaryWeight = 0
		p.scaleCanary(p.canaryReplicas(0))
	default:
		p.keepRatio(steps[st.Step-1].Weight)
		p.scaleCanary(p.canaryReplicas(st.CanaryWeight))
	}

	if st.Step == 0 {
		if !p.canaryUp() {
			msg := cmp.Or(p.s.Target.Message, "its pods are not available yet")
			switch {
			case !st.CanaryFresh && p.s.Target.Pods > 0:
				msg = fmt.Sprintf("%d of its pods started before this rollout and must stop first, so that every canary pod starts on revision %s and the config it reads", p.s.Target.Pods, st.LastAppliedSpec)
			case !st.CanaryFresh:
				msg = "its controller has not yet seen it scaled to none, which it must be before the canary's pods start on this revision"
			case p.s.Target.Replicas == 0:
				msg = "it has not been scaled up yet"
			}
			if p.deadlinePassed() {
				p.rollback(ReasonProgressDeadline, fmt.Sprintf("The canary Deployment did not become ready within %s: %s", p.s.Canary.ProgressDeadline(), msg))
				return
			}
			p.wait(ReasonWaitingForCanary, "Waiting for the canary Deployment to become ready: "+msg, p.untilDeadline())
			return
		}
		if !p.preRollout() {
			return
		}
		p.advanceTo(1, steps, strings.TrimSpace(p.approvedBy(v1alpha1.WebhookPreRollout)))
		return
	}

	want := RoutingFor(p.s.Canary, st)
	if !p.s.Route.Found || p.s.Route.Routing != want || !p.s.Route.Accepted {
		msg := fmt.Sprintf("Waiting for the route to accept %s.", want)
		if p.s.Route.Message != "" && p.s.Route.Routing == want {
			msg = fmt.Sprintf("Waiting for the route to accept %s: %s", want, p.s.Route.Message)
		}
		if p.deadlinePassed() {
			p.rollback(ReasonProgressDeadline, fmt.Sprintf("The route did not accept %s within %s.", want, p.s.Canary.ProgressDeadline()))
			return
		}
		st.StepStartedAt = nil
		if held(st) {
			p.wait(ReasonAnalysisUnavailable, "All traffic goes back to the primary while the analysis is unavailable. "+msg+" "+st.Outage.Message, pollInterval)
			return
		}
		p.wait(ReasonWaitingForRoute, msg, pollInterval)
		return
	}
	if st.StepStartedAt == nil {
		st.StepStartedAt = ceilSecond(p.s.Now)
		next := st.StepStartedAt.Sub(p.s.Now) + p.s.Canary.CheckInterval()
		if held(st) {
			p.wait(ReasonAnalysisUnavailable, fmt.Sprintf("All traffic is on the primary while the analysis is unavailable; the checks try again in %s. %s", p.s.Canary.CheckInterval(), st.Outage.Message), next)
			return
		}
		p.wait(ReasonAnalysing, fmt.Sprintf("Step %d of %d: the route carries %s; checks run in %s.", st.Step, len(steps), want, p.s.Canary.CheckInterval()), next)
		return
	}
	if p.s.Checks == nil {
		reason, msg := readyCondition(p.s.Canary)
		if reason == "" {
			reason, msg = ReasonAnalysing, fmt.Sprintf("Step %d of %d: analysing the canary while the route carries %s.", st.Step, len(steps), want)
		}
		p.wait(reason, msg, p.untilNextCheck())
		return
	}
	p.judge(steps)
}

// judge acts on the checks that ran in this reconcile, as the Canary's policies say: a
// sequential check that concludes the canary is worse rolls back at once; any other failed
// check counts towards threshold (and consecutiveThreshold); no data waits, fails or passes
// (onNoData); a provider error waits or fails (onError). Passing checks advance the step once
// it has lasted its interval, or earlier when every sequential check concluded that the canary
// is not worse. The decisions record what each check counted as.
func (p *planner) judge(steps []Stage) {
	st := p.st()
	a := p.s.Canary.Spec.Analysis
	rollbacks, asked := p.takeAnswers(v1alpha1.WebhookRollback)
	rollouts, askedRollouts := p.takeAnswers(v1alpha1.WebhookRollout)
	if !asked || !askedRollouts {
		p.askWebhooks()
		return
	}
	checks := append(append([]v1alpha1.Decision(nil), p.s.Checks...), webhookDecisions(rollouts)...)
	now := metav1.NewTime(p.s.Now)
	st.LastCheckedAt = &now
	var failed, decisive, unavailable, noData []string
	sequential, conclusive := 0, 0
	for i := range checks {
		d := &checks[i]
		d.Step, d.CanaryWeight, d.Time = st.Step, st.CanaryWeight, now
		if d.Judge == v1alpha1.JudgeSequential {
			sequential++
			if d.Verdict == v1alpha1.VerdictPass && d.Conclusive {
				conclusive++
			}
		}
		switch {
		case d.Verdict == v1alpha1.VerdictFail && d.Conclusive:
			decisive = append(decisive, d.Message)
		case d.Verdict == v1alpha1.VerdictFail:
			failed = append(failed, d.Message)
		case d.Verdict == v1alpha1.VerdictError && a.OnError == v1alpha1.ErrorFail:
			d.Message += " It counts as a failed check (onError: fail)."
			failed = append(failed, d.Message)
		case d.Verdict == v1alpha1.VerdictError:
			unavailable = append(unavailable, d.Message)
		case d.Verdict == v1alpha1.VerdictNoData && a.OnNoData == v1alpha1.NoDataFail:
			d.Message += " It counts as a failed check (onNoData: fail)."
			failed = append(failed, d.Message)
		case d.Verdict == v1alpha1.VerdictNoData && a.OnNoData == v1alpha1.NoDataPass:
			d.Message += " It counts as a pass (onNoData: pass)."
		case d.Verdict == v1alpha1.VerdictNoData:
			noData = append(noData, d.Message)
		}
	}
	p.recordDecisions(checks)

	every := p.s.Canary.CheckInterval()
	if held(st) {
		// The checks of a held step measure a canary without traffic: whether they can be
		// evaluated at all is what they tell.
		p.holdForOutage(steps, unavailable)
		return
	}
	at := fmt.Sprintf("at step %d of %d (%d%% canary traffic)", st.Step, len(steps), st.CanaryWeight)
	stepEnds := st.StepStartedAt.Add(p.s.Canary.AnalysisInterval())
	early := p.s.Now.Before(stepEnds)
	notWorse := sequential > 0 && conclusive == sequential
	if why := rollbackAsked(rollbacks); why != "" {
		p.rollback(ReasonRollbackWebhook, fmt.Sprintf("A rollback webhook asked for a rollback %s: %s", at, why))
		return
	}
	switch {
	case len(decisive) > 0:
		p.rollback(ReasonCheckFailed, fmt.Sprintf("A sequential check concluded %s that the canary is worse: %s", at, strings.Join(decisive, " ")))
		return
	case len(failed) > 0:
		st.FailedChecks++
		st.ConsecutiveFailedChecks++
		msg := fmt.Sprintf("Check %d of %d failed at %d%% canary traffic: %s", st.FailedChecks, p.s.Canary.FailureThreshold(), st.CanaryWeight, strings.Join(failed, " "))
		inARow := a.ConsecutiveThreshold != nil && st.ConsecutiveFailedChecks >= *a.ConsecutiveThreshold
		if inARow {
			msg = fmt.Sprintf("%d checks in a row failed (consecutiveThreshold %d); the last at %d%% canary traffic: %s", st.ConsecutiveFailedChecks, *a.ConsecutiveThreshold, st.CanaryWeight, strings.Join(failed, " "))
		}
		if p.failuresExhausted() {
			p.rollback(ReasonCheckFailed, msg)
			return
		}
		p.event(corev1.EventTypeWarning, ReasonCheckFailed, msg)
		p.wait(ReasonCheckFailed, msg, every)
	case len(unavailable) > 0:
		p.outage(unavailable)
	case len(noData) > 0 && p.deadlinePassed():
		p.rollback(ReasonNoData, fmt.Sprintf("The checks had no data within the progress deadline of %s (onNoData: wait): %s", p.s.Canary.ProgressDeadline(), strings.Join(noData, " ")))
	case len(noData) > 0:
		p.wait(ReasonNoData, "The checks have no data yet, so the step holds: "+strings.Join(noData, " "), every)
	case early && !notWorse:
		// The checks pass, but the step has not lasted its interval, and the evidence does not yet
		// say the canary is not worse.
		st.ConsecutiveFailedChecks = 0
		st.Outage = nil
		p.wait(ReasonAnalysing, fmt.Sprintf("Step %d of %d: the checks pass so far; the step lasts until %s. %s", st.Step, len(steps),
			stepEnds.UTC().Format(time.RFC3339), summary(checks)), p.untilNextCheck())
	default:
		st.ConsecutiveFailedChecks = 0
		st.Outage = nil
		passed := "Every check passed " + at
		if early {
			passed = "The sequential checks concluded " + at + " that the canary is not worse"
		}
		if int(st.Step) >= len(steps) {
			p.passLastStep(passed, checks)
			return
		}
		switch state, why := p.gate(v1alpha1.WebhookConfirmTrafficIncrease); state {
		case gateAsk:
			p.askWebhooks()
			return
		case gateShut:
			// The step holds, and its checks go on; a refusal is not a failed check.
			p.wait(ReasonWaitingForApproval, fmt.Sprintf("%s; the traffic increase waits for approval: %s", passed, why), every)
			return
		}
		p.carryEvidence()
		p.advanceTo(st.Step+1, steps, passed+"."+p.approvedBy(v1alpha1.WebhookConfirmTrafficIncrease)+" "+summary(checks))
	}
}

// held reports whether the current step's traffic went back to the primary for an analysis
// outage.
func held(st *v1alpha1.CanaryStatus) bool { return st.Outage != nil && st.Outage.Held }

// outage keeps a step whose checks could not be evaluated where it is, for at most
// analysis.unavailableGrace from the first check that could not; past it, every request goes back
// to the primary and the rollout holds there (holdForOutage), never promoting and never counting
// a failed check for the outage alone. The outage is told once when it starts, and once when it
// sends the traffic back.
func (p *planner) outage(unavailable []string) {
	st := p.st()
	grace := p.s.Canary.UnavailableGrace()
	msg := "The analysis is unavailable, so the step holds: " + strings.Join(unavailable, " ")
	if st.Outage == nil {
		st.Outage = &v1alpha1.AnalysisOutage{Since: metav1.NewTime(p.s.Now)}
		p.event(corev1.EventTypeWarning, ReasonAnalysisUnavailable, fmt.Sprintf("%s If it stays unavailable for %s, all traffic goes back to the primary.", msg, grace))
	}
	st.Outage.Message = msg
	if p.s.Now.Sub(st.Outage.Since.Time) < grace {
		p.wait(ReasonAnalysisUnavailable, fmt.Sprintf("%s All traffic goes back to the primary at %s if it stays unavailable.", msg,
			st.Outage.Since.Add(grace).UTC().Format(time.RFC3339)), p.s.Canary.CheckInterval())
		return
	}
	st.Outage.Held = true
	st.CanaryWeight = 0
	st.StepStartedAt = nil
	p.touch() // the progress deadline bounds the hold from here
	// A replica-ratio canary's pods are its traffic: they go; any other canary keeps its pods.
	p.scaleCanary(p.canaryReplicas(0))
	hold := fmt.Sprintf("The analysis has been unavailable for %s (analysis.unavailableGrace %s): all traffic goes back to the primary, and step %d starts over once the checks can be evaluated again; no failed check is counted for it. %s",
		p.s.Now.Sub(st.Outage.Since.Time).Round(time.Second), grace, st.Step, strings.Join(unavailable, " "))
	p.event(corev1.EventTypeWarning, ReasonAnalysisUnavailable, hold)
	p.wait(ReasonAnalysisUnavailable, hold, pollInterval)
}

// holdForOutage keeps a held step on the primary while its checks still cannot be evaluated, up to
// the progress deadline, past which the rollout is rolled back for the outage; once they can, the
// step starts over from its beginning, with its weights back and a whole new window.
func (p *planner) holdForOutage(steps []Stage, unavailable []string) {
	st := p.st()
	if len(unavailable) > 0 {
		st.Outage.Message = "The analysis is unavailable, so the step holds: " + strings.Join(unavailable, " ")
		if p.deadlinePassed() {
			p.rollback(ReasonAnalysisUnavailable, fmt.Sprintf("The analysis was unavailable for longer than the progress deadline of %s, so the rollout is aborted: %s",
				p.s.Canary.ProgressDeadline(), strings.Join(unavailable, " ")))
			return
		}
		p.wait(ReasonAnalysisUnavailable, fmt.Sprintf("All traffic is on the primary while the analysis is unavailable (since %s); step %d starts over once it answers, and the rollout is aborted if it does not by %s. %s",
			st.Outage.Since.UTC().Format(time.RFC3339), st.Step, st.LastTransitionTime.Add(p.s.Canary.ProgressDeadline()).UTC().Format(time.RFC3339), strings.Join(unavailable, " ")),
			p.s.Canary.CheckInterval())
		return
	}
	down := p.s.Now.Sub(st.Outage.Since.Time).Round(time.Second)
	st.Outage = nil
	st.CanaryWeight = steps[st.Step-1].Weight
	p.keepRatio(st.CanaryWeight)
	p.scaleCanary(p.canaryReplicas(st.CanaryWeight))
	st.StepStartedAt = nil
	p.touch()
	msg := fmt.Sprintf("The analysis answers again after %s; step %d of %d starts over: the route carries %s.", down, st.Step, len(steps), RoutingFor(p.s.Canary, st))
	p.event(corev1.EventTypeNormal, ReasonAnalysisRestored, msg)
	p.wait(ReasonWaitingForRoute, msg, pollInterval)
}

// passLastStep promotes a canary whose last step passed, once its confirm-promotion webhooks
// approve; until then it waits at WaitingPromotion, where the checks go on running.
func (p *planner) passLastStep(passed string, checks []v1alpha1.Decision) {
	st := p.st()
	switch state, why := p.gate(v1alpha1.WebhookConfirmPromotion); state {
	case gateAsk:
		p.askWebhooks()
		return
	case gateShut:
		msg := fmt.Sprintf("%s; the promotion waits for approval while the checks go on: %s", passed, why)
		if st.Phase != v1alpha1.PhaseWaitingPromotion {
			p.transition(v1alpha1.PhaseWaitingPromotion)
			p.event(corev1.EventTypeNormal, ReasonWaitingForApproval, msg)
		}
		p.wait(ReasonWaitingForApproval, msg, p.s.Canary.CheckInterval())
		return
	}
	p.carryEvidence()
	p.transition(v1alpha1.PhasePromoting)
	p.event(corev1.EventTypeNormal, ReasonPromoting, fmt.Sprintf("%s; copying revision %s onto %s.%s %s", passed, st.LastAppliedSpec, p.s.Canary.PrimaryDeploymentName(), p.approvedBy(v1alpha1.WebhookConfirmPromotion), summary(checks)))
	p.wait(ReasonPromoting, "Copying the canary's pod template onto the primary Deployment.", pollInterval)
}

// carryEvidence keeps what the sequential checks gathered in the step that just passed, so the
// next step's looks add to it.
func (p *planner) carryEvidence() {
	st := p.st()
	for _, d := range p.s.Checks {
		if d.Evidence == nil {
			continue
		}
		if prev := CarriedEvidence(st, d.Metric); prev != nil {
			*prev = *d.Evidence
		} else {
			st.Evidence = append(st.Evidence, *d.Evidence)
		}
	}
}

// summary is every check's message, for the events that tell a step's outcome.
func summary(checks []v1alpha1.Decision) string {
	msgs := make([]string, 0, len(checks))
	for _, d := range checks {
		msgs = append(msgs, d.Message)
	}
	return strings.Join(msgs, " ")
}

// canaryUp reports whether the canary's pods are there to take traffic: its Deployment has rolled
// out and runs at least one pod. A Deployment at 0 replicas is "ready" with nothing to serve, as
// the target is when a controller died before scaling it up.
func (p *planner) canaryUp() bool {
	return p.st().CanaryFresh && p.s.Target.Ready && p.s.Target.Replicas > 0
}

// freshCanary is true once the target has had no pods since the rollout began, and keeps it at
// none until then. Pods already running when a rollout begins would be analysed as the new
// revision: those left from before a promotion or a rollback (a Deployment scaled to none and
// back before its controller acted keeps its pods), and, for a revision that differs only in
// its ConfigMaps or Secrets, any pod at all, as a pod reads them when it starts.
func (p *planner) freshCanary() bool {
	st, t := p.st(), p.s.Target
	if !st.CanaryFresh && t.Replicas == 0 && t.Observed && t.Pods == 0 {
		st.CanaryFresh = true
	}
	if !st.CanaryFresh {
		p.scaleCanary(0)
	}
	return st.CanaryFresh
}

// advanceTo moves to a step; why, when given, is what the previous step's checks said.
func (p *planner) advanceTo(step int32, steps []Stage, why string) {
	st := p.st()
	st.Step = step
	st.CanaryWeight = steps[step-1].Weight
	p.keepRatio(st.CanaryWeight)
	// A replica-ratio canary's share is its pods: they are asked for with the step, not a
	// reconcile later.
	p.scaleCanary(p.canaryReplicas(st.CanaryWeight))
	st.StepStartedAt = nil
	p.touch()
	msg := fmt.Sprintf("Advancing to step %d of %d: the route carries %s.", step, len(steps), RoutingFor(p.s.Canary, st))
	event := msg
	if why != "" {
		event = why + " " + msg
	}
	p.event(corev1.EventTypeNormal, ReasonStepAdvanced, event)
	p.wait(ReasonWaitingForRoute, msg, pollInterval)
}

func (p *planner) promote() {
	st := p.st()
	if p.s.Target.Revision != st.LastAppliedSpec {
		p.beginRollout(fmt.Sprintf("Revision %s of Deployment %s supersedes revision %s before its promotion; restarting the analysis.", p.s.Target.Revision, p.s.Canary.Spec.TargetRef.Name, st.LastAppliedSpec))
		return
	}
	p.scaleCanary(p.canaryReplicas(st.CanaryWeight))
	if SwitchesBeforePromotion(p.s.Canary) && p.s.Primary.Revision != st.LastAppliedSpec {
		// Blue/green, and sticky sessions, switch every user to the canary before the primary's
		// pods are replaced under them, so no user sees the two versions by turns.
		if st.CanaryWeight != 100 {
			st.CanaryWeight = 100
			st.StepStartedAt = nil
			p.touch()
			msg := "Every step passed; switching all traffic to the canary while the primary is updated."
			p.event(corev1.EventTypeNormal, ReasonSwitching, msg)
			p.wait(ReasonSwitching, msg, pollInterval)
			return
		}
		if want := RoutingFor(p.s.Canary, st); !p.s.Route.Found || p.s.Route.Routing != want || !p.s.Route.Accepted {
			if p.deadlinePassed() {
				p.rollback(ReasonProgressDeadline, fmt.Sprintf("The route did not accept %s within %s.", want, p.s.Canary.ProgressDeadline()))
				return
			}
			p.wait(ReasonSwitching, fmt.Sprintf("Waiting for the route to accept %s.", want), pollInterval)
			return
		}
	}
	if p.s.Primary.Revision != st.LastAppliedSpec {
		p.plan.PromotePrimary = true
		p.wait(ReasonPromoting, "Copying the canary's pod template onto the primary Deployment.", 0)
		return
	}
	if !p.s.Primary.Ready {
		p.wait(ReasonPromoting, "Waiting for the primary Deployment to roll out the promoted revision: "+cmp.Or(p.s.Primary.Message, "its pods are not available yet"), 0)
		return
	}
	if SwitchesBeforePromotion(p.s.Canary) && p.s.Primary.Terminating > 0 {
		// Users were promised one switch: none may meet a pod of the old revision on the way back.
		p.wait(ReasonPromoting, fmt.Sprintf("Waiting for %d pods of the primary's previous revision to terminate before traffic switches back to it.", p.s.Primary.Terminating), pollInterval)
		return
	}
	p.transition(v1alpha1.PhaseFinalising)
	st.CanaryWeight = 0
	st.StepStartedAt = nil
	p.wait(ReasonFinalising, "The primary runs the promoted revision; routing all traffic back to it.", pollInterval)
}

func (p *planner) finalise() {
	st := p.st()
	st.CanaryWeight = 0
	p.scaleCanary(p.canaryReplicas(0))
	want := Primary()
	if !p.s.Route.Found || p.s.Route.Routing != want || !p.s.Route.Accepted {
		st.StepStartedAt = nil
		p.wait(ReasonFinalising, "Waiting for the route to send all traffic to the primary: "+cmp.Or(p.s.Route.Message, "it does not carry the new weights yet"), pollInterval)
		return
	}
	if delay := p.scaleDownDelay(); delay > 0 {
		// The data plane may still send a request or two to the canary's pods, or be answering
		// them: they stay up a moment after the route has moved.
		if st.StepStartedAt == nil {
			st.StepStartedAt = ceilSecond(p.s.Now)
		}
		if until := st.StepStartedAt.Add(delay); p.s.Now.Before(until) {
			p.wait(ReasonFinalising, fmt.Sprintf("All traffic is back on the primary; the canary's pods stay up for %s so that requests already sent to them finish.", delay), until.Sub(p.s.Now))
			return
		}
	}
	st.StepStartedAt = nil
	p.transition(v1alpha1.PhaseSucceeded)
	st.LastPromotedSpec = st.LastAppliedSpec
	st.Step = 0
	st.PromotionRequested = nil
	p.plan.PostRollout = len(p.s.Canary.WebhooksOf(v1alpha1.WebhookPostRollout)) > 0
	p.scaleCanary(0)
	msg := fmt.Sprintf("Revision %s is promoted and serves all traffic.", st.LastPromotedSpec)
	p.record(ReasonSucceeded, msg)
	p.event(corev1.EventTypeNormal, ReasonSucceeded, "Promotion completed: "+msg)
	p.done(ReasonSucceeded, msg)
}

// rollback sends all traffic back to the primary and scales the canary down at once: a
// failing canary is worse than a few requests caught mid-switch.
func (p *planner) rollback(reason, message string) {
	st := p.st()
	p.transition(v1alpha1.PhaseFailed)
	st.CanaryWeight = 0
	st.Step = 0
	st.StepStartedAt = nil
	st.PromotionRequested = nil
	st.Outage = nil
	p.plan.PostRollout = len(p.s.Canary.WebhooksOf(v1alpha1.WebhookPostRollout)) > 0
	p.scaleCanary(0)
	msg := fmt.Sprintf("Rolled back revision %s; the primary serves all traffic. %s", st.LastAppliedSpec, message)
	p.record(reason, msg)
	p.event(corev1.EventTypeWarning, ReasonRolledBack, msg)
	p.plan.Stalled = true
	p.notReady(reason, msg)
	p.plan.RequeueAfter = 0
}

// maxHistory bounds the rollouts kept in status.history.
const maxHistory = 10

// record adds the rollout that just ended, in the phase it ended in, to status.history.
func (p *planner) record(reason, message string) {
	st := p.st()
	rec := v1alpha1.RolloutRecord{
		Revision: st.LastAppliedSpec, Images: p.s.Target.Images, Result: st.Phase, Reason: reason, Message: message,
		WeightReached: st.MaxWeightReached, StartedAt: st.RolloutStartedAt, FinishedAt: metav1.NewTime(p.s.Now),
	}
	st.History = append([]v1alpha1.RolloutRecord{rec}, st.History...)
	if len(st.History) > maxHistory {
		st.History = st.History[:maxHistory]
	}
}

// scaleDownDelay is how long the canary's pods stay up once the route has sent all traffic
// back to the primary, as Argo Rollouts' scaleDownDelaySeconds does for blue/green; none for a
// replica-ratio canary, whose pods leaving is what moves its traffic.
func (p *planner) scaleDownDelay() time.Duration {
	if StrategyOf(p.s.Canary) == StrategyReplicaRatio {
		return 0
	}
	return scaleDownDelay
}

// beginRollout starts the rollout of the target's revision, first holding it in Waiting while
// any confirm-rollout webhook refuses.
func (p *planner) beginRollout(message string) {
	st := p.st()
	// The webhooks' answers of an earlier rollout say nothing of this one.
	st.Webhooks = nil
	if st.PromotionRequested == nil {
		switch state, why := p.gate(v1alpha1.WebhookConfirmRollout); state {
		case gateAsk:
			p.askWebhooks()
			return
		case gateShut:
			p.resetRollout(v1alpha1.PhaseWaiting)
			p.recordWebhooks(p.s.Gates[v1alpha1.WebhookConfirmRollout])
			p.markChecked()
			p.scaleCanary(0)
			msg := fmt.Sprintf("%s It waits for approval before the canary is scaled up: %s", message, why)
			p.event(corev1.EventTypeNormal, ReasonWaitingForApproval, msg)
			p.wait(ReasonWaitingForApproval, msg, p.s.Canary.CheckInterval())
			return
		}
		message += p.approvedBy(v1alpha1.WebhookConfirmRollout)
	}
	p.startRollout(message)
}

// waiting holds a new revision until its confirm-rollout webhooks approve, asking them again
// every check interval.
func (p *planner) waiting() {
	st := p.st()
	if p.s.Target.Revision != st.LastAppliedSpec {
		p.beginRollout(fmt.Sprintf("Revision %s of Deployment %s supersedes revision %s, which waited for approval.", p.s.Target.Revision, p.s.Canary.Spec.TargetRef.Name, st.LastAppliedSpec))
		return
	}
	p.scaleCanary(0)
	if st.PromotionRequested != nil {
		p.startRollout(fmt.Sprintf("Starting the rollout of revision %s without its approval, to promote it as %s asked.", st.LastAppliedSpec, cmp.Or(st.PromotionRequested.User, "someone")))
		return
	}
	if !p.webhookDue() {
		reason, msg := readyCondition(p.s.Canary)
		p.wait(cmp.Or(reason, ReasonWaitingForApproval), cmp.Or(msg, "Waiting for the confirm-rollout webhooks to approve."), p.untilWebhookDue())
		return
	}
	switch state, why := p.gate(v1alpha1.WebhookConfirmRollout); state {
	case gateAsk:
		p.askWebhooks()
	case gateShut:
		p.markChecked()
		p.wait(ReasonWaitingForApproval, fmt.Sprintf("Revision %s waits for approval before the canary is scaled up: %s", st.LastAppliedSpec, why), p.s.Canary.CheckInterval())
	default:
		p.startRollout(fmt.Sprintf("Revision %s of Deployment %s is approved; starting the rollout.%s", st.LastAppliedSpec, p.s.Canary.Spec.TargetRef.Name, p.approvedBy(v1alpha1.WebhookConfirmRollout)))
	}
}

func (p *planner) untilWebhookDue() time.Duration {
	st := p.st()
	if st.LastCheckedAt == nil {
		return 0
	}
	return max(st.LastCheckedAt.Add(p.s.Canary.CheckInterval()).Sub(p.s.Now), time.Second)
}
