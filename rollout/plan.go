package rollout

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Snapshot is everything the planner looks at, read once per reconcile. The Canary's status is
// the rollout's memory; the rest is the world as it stands now.
type Snapshot struct {
	Canary *v1alpha1.Canary
	// Target is the user's Deployment, which serves as the canary.
	Target Workload
	// Primary is <target>-primary, which serves the last promoted revision.
	Primary Workload
	// Route is what the route holds now.
	Route State
	// Checks are the verdicts of the checks run for this reconcile; nil when none were due.
	Checks []v1alpha1.Decision
	// Gates are the answers of the webhooks called for this reconcile, by type; a type is
	// absent when its webhooks were not called (the plan then asks for them in CallGates).
	Gates map[v1alpha1.WebhookType][]v1alpha1.WebhookResult
	// Request is the manual request of the Canary's trafficctl.io/request annotation, when it
	// has not been handled yet.
	Request *v1alpha1.ManualRequest
	// Now is the reconcile's clock reading.
	Now time.Time
}

// Workload is a Deployment as the planner sees it.
type Workload struct {
	Found bool
	// Revision is the hash of the pod template and the configuration it mounts (target), or the
	// revision trafficctl last wrote onto it (primary).
	Revision string
	// Replicas is the Deployment's desired replica count.
	Replicas int32
	// Ready is true once the Deployment has rolled out its current template and every desired
	// replica is available.
	Ready bool
	// Message says what the Deployment is waiting for when it is not ready.
	Message string
	// Terminating counts its pods that are being deleted, which may still answer requests sent
	// before their endpoints caught up.
	Terminating int32
	// Images are its containers' images, as container=image.
	Images []string
}

// Plan is what the planner wants done: the next status, and the writes that converge the
// cluster on it. The controller persists Status before it acts, so a controller killed between
// the two finishes the same step instead of repeating it.
type Plan struct {
	Status v1alpha1.CanaryStatus
	// Routing is what the route must carry.
	Routing Routing
	// CanaryReplicas is the replica count to set on the target; nil leaves it alone.
	CanaryReplicas *int32
	// PromotePrimary asks for the target's pod template to be copied onto the primary.
	PromotePrimary bool
	// Ready, Reason and Message become the Ready condition; Stalled marks a rollout that cannot
	// go on without a new revision or a change of spec.
	Ready   bool
	Reason  string
	Message string
	Stalled bool
	// Events to record on the Canary.
	Events []Event
	// RequeueAfter is when the planner next wants to look, if nothing else happens first.
	RequeueAfter time.Duration
	// CallGates are the webhook types whose answers the planner needs before it can decide:
	// the controller calls them and plans again with their answers in Snapshot.Gates.
	CallGates []v1alpha1.WebhookType
	// PostRollout asks for the post-rollout webhooks: the rollout has just ended.
	PostRollout bool
}

// Event is a Kubernetes event the plan asks to record.
type Event struct {
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// maxDecisions bounds the decision history kept in status.
const maxDecisions = 20

// pollInterval is how often the planner looks again while it waits on the route, which may
// belong to a controller that sends no event trafficctl watches.
const pollInterval = 2 * time.Second

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

// ChecksDue reports whether the current step's checks should run in this reconcile: the
// rollout is progressing on the revision it started with, the route accepted the step's
// weights at least one check interval ago, and the last check is a check interval old.
func ChecksDue(s Snapshot) bool {
	st := s.Canary.Status
	if st.Phase != v1alpha1.PhaseProgressing && st.Phase != v1alpha1.PhaseWaitingPromotion {
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

// ComputePlan decides the next move of a rollout. It is a pure function of the snapshot.
func ComputePlan(s Snapshot) Plan {
	p := planner{s: s, plan: Plan{Status: *s.Canary.Status.DeepCopy()}}
	p.plan.Status.ObservedGeneration = s.Canary.Generation
	if !p.handleRequest() && !p.holdPaused() {
		p.step()
	}
	if st := &p.plan.Status; st.CanaryWeight > st.MaxWeightReached && st.Phase != v1alpha1.PhaseFinalising {
		st.MaxWeightReached = st.CanaryWeight
	}
	p.plan.Routing = RoutingFor(s.Canary, &p.plan.Status)
	return p.plan
}

type planner struct {
	s    Snapshot
	plan Plan
}

func (p *planner) st() *v1alpha1.CanaryStatus { return &p.plan.Status }

func (p *planner) step() {
	switch p.st().Phase {
	case "", v1alpha1.PhaseInitializing:
		p.initialize()
	case v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed:
		p.idle()
	case v1alpha1.PhaseWaiting:
		p.waiting()
	case v1alpha1.PhaseProgressing, v1alpha1.PhaseWaitingPromotion:
		p.progress()
	case v1alpha1.PhasePromoting:
		p.promote()
	case v1alpha1.PhaseFinalising:
		p.finalise()
	default:
		p.initialize()
	}
}

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
	st.RolloutStartedAt = nil
}

func (p *planner) startRollout(message string) {
	st := p.st()
	p.resetRollout(v1alpha1.PhaseProgressing)
	now := metav1.NewTime(p.s.Now)
	st.RolloutStartedAt = &now
	p.scaleCanary(p.canaryReplicas(Stages(p.s.Canary)[0].Weight))
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
	if st.PromotionRequested != nil && (st.Step > 0 || p.s.Target.Ready) {
		p.transition(v1alpha1.PhasePromoting)
		msg := fmt.Sprintf("Promoting revision %s at step %d without the remaining steps, as %s asked; copying it onto %s.", st.LastAppliedSpec, st.Step, cmp.Or(st.PromotionRequested.User, "someone"), p.s.Canary.PrimaryDeploymentName())
		p.event(corev1.EventTypeNormal, ReasonPromoting, msg)
		p.wait(ReasonPromoting, msg, pollInterval)
		return
	}
	if st.Step == 0 {
		p.scaleCanary(p.canaryReplicas(steps[0].Weight))
	} else {
		p.keepRatio(steps[st.Step-1].Weight)
		p.scaleCanary(p.canaryReplicas(st.CanaryWeight))
	}

	if st.Step == 0 {
		if !p.s.Target.Ready {
			msg := cmp.Or(p.s.Target.Message, "its pods are not available yet")
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
		p.wait(ReasonWaitingForRoute, msg, pollInterval)
		return
	}
	if st.StepStartedAt == nil {
		st.StepStartedAt = ceilSecond(p.s.Now)
		p.wait(ReasonAnalysing, fmt.Sprintf("Step %d of %d: the route carries %s; checks run in %s.", st.Step, len(steps), want, p.s.Canary.CheckInterval()), st.StepStartedAt.Sub(p.s.Now)+p.s.Canary.CheckInterval())
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
	rollbacks, asked := p.answers(v1alpha1.WebhookRollback)
	rollouts, askedRollouts := p.answers(v1alpha1.WebhookRollout)
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
		msg := "The analysis is unavailable, so the step holds: " + strings.Join(unavailable, " ")
		p.event(corev1.EventTypeWarning, ReasonAnalysisUnavailable, msg)
		p.wait(ReasonAnalysisUnavailable, msg, every)
	case len(noData) > 0 && p.deadlinePassed():
		p.rollback(ReasonNoData, fmt.Sprintf("The checks had no data within the progress deadline of %s (onNoData: wait): %s", p.s.Canary.ProgressDeadline(), strings.Join(noData, " ")))
	case len(noData) > 0:
		p.wait(ReasonNoData, "The checks have no data yet, so the step holds: "+strings.Join(noData, " "), every)
	case early && !notWorse:
		// The checks pass, but the step has not lasted its interval, and the evidence does not yet
		// say the canary is not worse.
		st.ConsecutiveFailedChecks = 0
		p.wait(ReasonAnalysing, fmt.Sprintf("Step %d of %d: the checks pass so far; the step lasts until %s. %s", st.Step, len(steps),
			stepEnds.UTC().Format(time.RFC3339), summary(checks)), p.untilNextCheck())
	default:
		st.ConsecutiveFailedChecks = 0
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

// advanceTo moves to a step; why, when given, is what the previous step's checks said.
func (p *planner) advanceTo(step int32, steps []Stage, why string) {
	st := p.st()
	st.Step = step
	st.CanaryWeight = steps[step-1].Weight
	p.keepRatio(st.CanaryWeight)
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
	if p.switchesBeforePromotion() && p.s.Primary.Revision != st.LastAppliedSpec {
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
	if p.switchesBeforePromotion() && p.s.Primary.Terminating > 0 {
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

func (p *planner) transition(phase v1alpha1.CanaryPhase) {
	p.st().Phase = phase
	p.touch()
}

func (p *planner) touch() {
	t := metav1.NewTime(p.s.Now)
	p.st().LastTransitionTime = &t
}

func (p *planner) deadlinePassed() bool {
	lt := p.st().LastTransitionTime
	return lt != nil && p.s.Now.Sub(lt.Time) > p.s.Canary.ProgressDeadline()
}

// untilDeadline is how long until the progress deadline, plus a second so the next look is
// past it.
func (p *planner) untilDeadline() time.Duration {
	lt := p.st().LastTransitionTime
	if lt == nil {
		return p.s.Canary.ProgressDeadline()
	}
	return max(lt.Add(p.s.Canary.ProgressDeadline()).Sub(p.s.Now)+time.Second, time.Second)
}

func (p *planner) untilNextCheck() time.Duration {
	st := p.st()
	every := p.s.Canary.CheckInterval()
	next := st.StepStartedAt.Add(every)
	if st.LastCheckedAt != nil && !st.LastCheckedAt.Before(st.StepStartedAt) {
		next = st.LastCheckedAt.Add(every)
	}
	return max(next.Sub(p.s.Now), time.Second)
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

// scaleDownDelay is the canary's grace after a promotion: longer than a data plane takes to
// follow a route change, short beside a rollout.
const scaleDownDelay = 5 * time.Second

// switchesBeforePromotion reports whether all traffic goes to the canary while the primary rolls
// out the promoted revision: for blue/green, which promises one switch, and for sticky sessions,
// whose users pinned to the primary would otherwise meet both versions during its rolling update.
func (p *planner) switchesBeforePromotion() bool {
	return StrategyOf(p.s.Canary) == StrategyBlueGreen ||
		(StrategyOf(p.s.Canary) == StrategyCanary && p.s.Canary.Spec.Analysis.SessionAffinity != nil)
}

func (p *planner) scaleCanary(replicas int32) { p.plan.CanaryReplicas = &replicas }

// canaryReplicas is the canary's size for a canary share of weight percent: as many pods as the
// primary has, so it is never short of what its share needs, or, under a replica ratio, the pods
// that make up that share; none once a replica-ratio canary goes back to 0%.
func (p *planner) canaryReplicas(weight int32) int32 {
	if StrategyOf(p.s.Canary) == StrategyReplicaRatio {
		if p.st().Phase == v1alpha1.PhaseFinalising || (weight == 0 && p.st().Step > 0) {
			return 0
		}
		return RatioReplicas(max(p.s.Primary.Replicas, 1), max(weight, 1))
	}
	return max(p.s.Primary.Replicas, 1)
}

// keepRatio records a replica-ratio canary's real share for step weight, which pods in whole
// numbers make differ from the step's, and which follows the primary as it scales.
func (p *planner) keepRatio(weight int32) {
	if StrategyOf(p.s.Canary) == StrategyReplicaRatio && weight > 0 {
		p.st().CanaryWeight = ratioWeight(max(p.s.Primary.Replicas, 1), weight)
	}
}

func (p *planner) event(eventType, reason, message string) {
	p.plan.Events = append(p.plan.Events, Event{Type: eventType, Reason: reason, Message: message})
}

// wait keeps the rollout where it is; after 0 means "when something changes", which the
// watches on the Deployments deliver.
func (p *planner) wait(reason, message string, after time.Duration) {
	p.plan.Ready, p.plan.Reason, p.plan.Message, p.plan.RequeueAfter = false, reason, message, after
}

func (p *planner) notReady(reason, message string) {
	p.plan.Ready, p.plan.Reason, p.plan.Message = false, reason, message
}

func (p *planner) done(reason, message string) {
	p.plan.Ready, p.plan.Reason, p.plan.Message, p.plan.RequeueAfter = true, reason, message, 0
}

// readyCondition is the current Ready condition's reason and message, kept while nothing new
// happens.
func readyCondition(c *v1alpha1.Canary) (reason, message string) {
	for _, cond := range c.Status.Conditions {
		if cond.Type == ConditionReady {
			return cond.Reason, cond.Message
		}
	}
	return "", ""
}

// ceilSecond rounds up to the next whole second: status times are stored in seconds, and an
// analysis window must never reach back before the step began.
func ceilSecond(t time.Time) *metav1.Time {
	c := t.Truncate(time.Second)
	if c.Before(t) {
		c = c.Add(time.Second)
	}
	m := metav1.NewTime(c)
	return &m
}

// UpperFirst capitalises a message's first letter, so an error (lowercase, as Go's are) reads as
// a sentence in a condition or an event.
func UpperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
