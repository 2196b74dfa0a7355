package rollout

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

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

// scaleDownDelay is the canary's grace after a promotion: longer than a data plane takes to
// follow a route change, short beside a rollout.
const scaleDownDelay = 5 * time.Second

// scaleCanary asks for the canary's replicas. With an autoscalerRef, the target's
// HorizontalPodAutoscaler owns them during a rollout: the canary is brought up from 0 at the start
// and taken to 0 at the end, and left to the autoscaler between the two.
func (p *planner) scaleCanary(replicas int32) {
	if p.s.Canary.Spec.AutoscalerRef != nil && replicas > 0 && p.s.Target.Replicas > 0 {
		p.plan.CanaryReplicas = nil
		return
	}
	p.plan.CanaryReplicas = &replicas
}

// canaryReplicas is the canary's size for a canary share of weight percent: as many pods as the
// primary has, so it is never short of what its share needs, or, under a replica ratio, the pods
// that make up that share; none once a replica-ratio canary goes back to 0%.
func (p *planner) canaryReplicas(weight int32) int32 {
	return CanaryReplicas(p.s.Canary, p.st().Phase, p.st().Step, weight, p.s.Primary.Replicas)
}

// keepRatio records a replica-ratio canary's real share for step weight, which pods in whole
// numbers make differ from the step's, and which follows the primary as it scales.
func (p *planner) keepRatio(weight int32) {
	if StrategyOf(p.s.Canary) == StrategyReplicaRatio && weight > 0 {
		p.st().CanaryWeight = RatioWeight(max(p.s.Primary.Replicas, 1), weight)
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
