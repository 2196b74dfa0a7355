package rollout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/gen"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

// planCanary is a Canary with two steps, a 10s interval, threshold 2, deadline 60s.
func planCanary(mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	return gen.Canary("shop", append([]gen.CanaryMod{gen.Generation(3), gen.Analysed("10s")}, mods...)...)
}

func onNoData(policy v1alpha1.NoDataPolicy) func(*v1alpha1.Canary) {
	return func(c *v1alpha1.Canary) { c.Spec.Analysis.OnNoData = policy }
}

func withStatus(st v1alpha1.CanaryStatus) func(*v1alpha1.Canary) {
	return func(c *v1alpha1.Canary) { c.Status = st }
}

var (
	readyPrimary = Workload{Found: true, Ready: true, Replicas: 3, Revision: "rev1"}
	acceptedAt   = func(canary int32) State {
		return State{Found: true, Accepted: true, Routing: Routing{Weights: ForCanary(canary)}}
	}
)

// progressing is the status of a rollout of rev2 at the given step.
func progressing(step, weight int32, mods ...func(*v1alpha1.CanaryStatus)) v1alpha1.CanaryStatus {
	st := v1alpha1.CanaryStatus{
		Phase: v1alpha1.PhaseProgressing, Step: step, CanaryWeight: weight, CanaryFresh: true,
		LastAppliedSpec: "rev2", LastPromotedSpec: "rev1", LastTransitionTime: at(0),
	}
	for _, m := range mods {
		m(&st)
	}
	return st
}

func check(v v1alpha1.Verdict) []v1alpha1.Decision {
	return []v1alpha1.Decision{{Metric: "request-success-rate", Verdict: v, Message: "request-success-rate is " + string(v) + "."}}
}

func TestSteps(t *testing.T) {
	tests := []struct {
		name string
		a    v1alpha1.CanaryAnalysis
		want []int32
	}{
		{"stepWeight up to maxWeight", v1alpha1.CanaryAnalysis{StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50)}, []int32{10, 20, 30, 40, 50}},
		{"stepWeight ends exactly at maxWeight", v1alpha1.CanaryAnalysis{StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](50)}, []int32{20, 40, 50}},
		{"stepWeight without maxWeight goes to 100", v1alpha1.CanaryAnalysis{StepWeight: ptr.To[int32](30)}, []int32{30, 60, 90, 100}},
		{"stepWeights as written", v1alpha1.CanaryAnalysis{StepWeights: []int32{5, 10, 25, 50}}, []int32{5, 10, 25, 50}},
		{"neither", v1alpha1.CanaryAnalysis{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Steps(tt.a))
		})
	}
}

func TestComputePlan(t *testing.T) {
	tests := []struct {
		name string
		snap Snapshot
		// expectations
		phase          v1alpha1.CanaryPhase
		step           int32
		weight         int32
		failedChecks   int32
		reason         string
		ready, stalled bool
		canaryReplicas *int32
		promote        bool
		event          string
		check          func(t *testing.T, p Plan)
	}{
		{
			name:  "bootstrap waits for the primary",
			snap:  Snapshot{Canary: planCanary(), Target: Workload{Found: true, Revision: "rev1"}},
			phase: v1alpha1.PhaseInitializing, reason: ReasonInitializing,
		},
		{
			name:  "bootstrap waits for the route to carry all traffic to the primary",
			snap:  Snapshot{Canary: planCanary(), Target: Workload{Found: true, Revision: "rev1"}, Primary: readyPrimary},
			phase: v1alpha1.PhaseInitializing, reason: ReasonInitializing,
		},
		{
			name:  "bootstrap done scales the target to zero",
			snap:  Snapshot{Canary: planCanary(withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseInitializing})), Target: Workload{Found: true, Revision: "rev1"}, Primary: readyPrimary, Route: acceptedAt(0)},
			phase: v1alpha1.PhaseInitialized, reason: ReasonInitialized, ready: true, canaryReplicas: ptr.To[int32](0), event: ReasonInitialized,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "rev1", p.Status.LastAppliedSpec)
				assert.Equal(t, "rev1", p.Status.LastPromotedSpec)
			},
		},
		{
			name:  "idle with no new revision stays put",
			snap:  Snapshot{Canary: planCanary(withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseSucceeded, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1"})), Target: Workload{Found: true, Revision: "rev1"}, Primary: readyPrimary, Route: acceptedAt(0)},
			phase: v1alpha1.PhaseSucceeded, reason: ReasonSucceeded, ready: true, canaryReplicas: ptr.To[int32](0),
		},
		{
			name:  "a new revision starts a rollout and scales the canary like the primary",
			snap:  Snapshot{Canary: planCanary(withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseInitialized, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1"})), Target: Workload{Found: true, Observed: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0},
			phase: v1alpha1.PhaseProgressing, step: 0, weight: 0, reason: ReasonWaitingForCanary, canaryReplicas: ptr.To[int32](3), event: ReasonNewRevision,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "rev2", p.Status.LastAppliedSpec)
				assert.Equal(t, t0, p.Status.LastTransitionTime.Time)
			},
		},
		{
			name:  "a failed rollout stays failed until the next revision",
			snap:  Snapshot{Canary: planCanary(withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseFailed, LastAppliedSpec: "rev2", LastPromotedSpec: "rev1"})), Target: Workload{Found: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(0)},
			phase: v1alpha1.PhaseFailed, reason: ReasonRolledBack, stalled: true, canaryReplicas: ptr.To[int32](0),
		},
		{
			name:  "waits for the canary to become ready",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(0, 0))), Target: Workload{Found: true, Revision: "rev2", Replicas: 3, Message: "1 of 3 available"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(30 * time.Second)},
			phase: v1alpha1.PhaseProgressing, reason: ReasonWaitingForCanary, canaryReplicas: ptr.To[int32](3),
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Message, "1 of 3 available")
				assert.Equal(t, 31*time.Second, p.RequeueAfter, "looks again just past the deadline")
			},
		},
		{
			name:  "a canary not ready by the progress deadline is rolled back",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(0, 0))), Target: Workload{Found: true, Revision: "rev2", Replicas: 3, Message: "0 of 3 available"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(61 * time.Second)},
			phase: v1alpha1.PhaseFailed, weight: 0, reason: ReasonProgressDeadline, stalled: true, canaryReplicas: ptr.To[int32](0), event: ReasonRolledBack,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, Weights{Primary: 100, Canary: 0}, p.Routing.Weights)
				assert.Contains(t, p.Message, "0 of 3 available")
			},
		},
		{
			name:  "a ready canary gets the first step's weight",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(0, 0))), Target: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(5 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, reason: ReasonWaitingForRoute, canaryReplicas: ptr.To[int32](3), event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, Weights{Primary: 90, Canary: 10}, p.Routing.Weights)
				assert.Nil(t, p.Status.StepStartedAt)
			},
		},
		{
			name:  "a step waits until the route accepts its weights",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10))), Target: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Primary: readyPrimary, Route: State{Found: true, Routing: Routing{Weights: ForCanary(10)}, Message: "waiting for Gateway infra/gw"}, Now: t0.Add(5 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, reason: ReasonWaitingForRoute, canaryReplicas: ptr.To[int32](3),
			check: func(t *testing.T, p Plan) {
				assert.Nil(t, p.Status.StepStartedAt)
				assert.Contains(t, p.Message, "waiting for Gateway infra/gw")
			},
		},
		{
			name:  "a route that never accepts is rolled back at the deadline",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: State{Found: true, Routing: Routing{Weights: ForCanary(10)}}, Now: t0.Add(61 * time.Second)},
			phase: v1alpha1.PhaseFailed, reason: ReasonProgressDeadline, stalled: true, canaryReplicas: ptr.To[int32](0), event: ReasonRolledBack,
		},
		{
			name:  "the step starts when the route accepts, rounded up to the second",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Now: t0.Add(5*time.Second + 300*time.Millisecond)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, reason: ReasonAnalysing,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, t0.Add(6*time.Second), p.Status.StepStartedAt.Time)
				assert.Equal(t, 10*time.Second+700*time.Millisecond, p.RequeueAfter)
			},
		},
		{
			name:  "passing checks advance to the next step",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictPass), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 2, weight: 50, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) {
				require.Len(t, p.Status.Decisions, 1)
				assert.Equal(t, int32(1), p.Status.Decisions[0].Step, "the decision records the step it judged")
				assert.Equal(t, int32(10), p.Status.Decisions[0].CanaryWeight)
			},
		},
		{
			name:  "passing checks at the last step promote",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(50), Checks: check(v1alpha1.VerdictPass), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhasePromoting, step: 2, weight: 50, reason: ReasonPromoting, event: ReasonPromoting,
		},
		{
			name:  "a failed check below the threshold holds the step",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictFail), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, failedChecks: 1, reason: ReasonCheckFailed, event: ReasonCheckFailed,
			check: func(t *testing.T, p Plan) { assert.Equal(t, 10*time.Second, p.RequeueAfter) },
		},
		{
			name:  "failed checks at the threshold roll back",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0); s.FailedChecks = 1 }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(50), Checks: check(v1alpha1.VerdictFail), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseFailed, step: 0, weight: 0, failedChecks: 2, reason: ReasonCheckFailed, stalled: true, canaryReplicas: ptr.To[int32](0), event: ReasonRolledBack,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, Weights{Primary: 100}, p.Routing.Weights)
				assert.Contains(t, p.Message, "request-success-rate is Fail.")
			},
		},
		{
			name:  "an unavailable provider holds the step without counting a failure",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictError), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, failedChecks: 0, reason: ReasonAnalysisUnavailable, event: ReasonAnalysisUnavailable,
		},
		{
			name:  "no data holds the step without counting a failure",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictNoData), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, failedChecks: 0, reason: ReasonNoData,
		},
		{
			name:  "no data past the progress deadline rolls back (onNoData: wait)",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictNoData), Now: t0.Add(61 * time.Second)},
			phase: v1alpha1.PhaseFailed, reason: ReasonNoData, stalled: true, canaryReplicas: ptr.To[int32](0), event: ReasonRolledBack,
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Message, "no data within the progress deadline of 1m0s")
			},
		},
		{
			name:  "no data counts as a failed check with onNoData: fail",
			snap:  Snapshot{Canary: planCanary(onNoData(v1alpha1.NoDataFail), withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictNoData), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 1, weight: 10, failedChecks: 1, reason: ReasonCheckFailed, event: ReasonCheckFailed,
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Status.Decisions[0].Message, "It counts as a failed check (onNoData: fail).")
				assert.Equal(t, v1alpha1.VerdictNoData, p.Status.Decisions[0].Verdict, "the verdict stays what the check saw")
			},
		},
		{
			name:  "no data counts as a pass with onNoData: pass",
			snap:  Snapshot{Canary: planCanary(onNoData(v1alpha1.NoDataPass), withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictNoData), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 2, weight: 50, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Status.Decisions[0].Message, "It counts as a pass (onNoData: pass).")
			},
		},
		{
			name: "a provider error counts as a failed check with onError: fail",
			snap: Snapshot{Canary: planCanary(func(c *v1alpha1.Canary) { c.Spec.Analysis.OnError = v1alpha1.ErrorFail }, withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) {
				s.StepStartedAt = at(0)
				s.FailedChecks = 1
			}))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictError), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseFailed, failedChecks: 2, reason: ReasonCheckFailed, stalled: true, canaryReplicas: ptr.To[int32](0), event: ReasonRolledBack,
			check: func(t *testing.T, p Plan) { assert.Contains(t, p.Message, "(onError: fail)") },
		},
		{
			name: "consecutive failures roll back before the total threshold",
			snap: Snapshot{Canary: planCanary(func(c *v1alpha1.Canary) {
				c.Spec.Analysis.Threshold = 10
				c.Spec.Analysis.ConsecutiveThreshold = ptr.To[int32](3)
			}, withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) {
				s.StepStartedAt = at(0)
				s.FailedChecks, s.ConsecutiveFailedChecks = 4, 2
			}))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(50), Checks: check(v1alpha1.VerdictFail), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseFailed, failedChecks: 5, reason: ReasonCheckFailed, stalled: true, canaryReplicas: ptr.To[int32](0), event: ReasonRolledBack,
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Message, "3 checks in a row failed (consecutiveThreshold 3)")
			},
		},
		{
			name: "a passing check resets the consecutive count",
			snap: Snapshot{Canary: planCanary(func(c *v1alpha1.Canary) {
				c.Spec.Analysis.Threshold = 10
				c.Spec.Analysis.ConsecutiveThreshold = ptr.To[int32](3)
			}, withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) {
				s.StepStartedAt = at(0)
				s.FailedChecks, s.ConsecutiveFailedChecks = 2, 2
			}))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: check(v1alpha1.VerdictPass), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 2, weight: 50, failedChecks: 2, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) { assert.Zero(t, p.Status.ConsecutiveFailedChecks) },
		},
		{
			name:  "no metrics: an empty round of checks passes",
			snap:  Snapshot{Canary: planCanary(func(c *v1alpha1.Canary) { c.Spec.Analysis.Metrics = nil }, withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(10), Checks: []v1alpha1.Decision{}, Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 2, weight: 50, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
		},
		{
			// The canary's pods of rev2 go first: rev3 may differ from it only in the config its
			// pods read when they start.
			name:  "a newer revision mid-rollout restarts the analysis at weight zero, with none of the earlier pods",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0); s.FailedChecks = 1 }))), Target: Workload{Found: true, Ready: true, Observed: true, Replicas: 3, Pods: 3, Revision: "rev3"}, Primary: readyPrimary, Route: acceptedAt(50), Now: t0.Add(10 * time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 0, weight: 0, failedChecks: 0, reason: ReasonWaitingForCanary, canaryReplicas: ptr.To[int32](0), event: ReasonNewRevision,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "rev3", p.Status.LastAppliedSpec)
				assert.Equal(t, Weights{Primary: 100}, p.Routing.Weights)
				assert.False(t, p.Status.CanaryFresh)
			},
		},
		{
			name:  "the canary is scaled up for the new revision once the earlier pods are gone",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(0, 0, func(s *v1alpha1.CanaryStatus) { s.CanaryFresh = false }))), Target: Workload{Found: true, Observed: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 0, weight: 0, reason: ReasonWaitingForCanary, canaryReplicas: ptr.To[int32](3),
			check: func(t *testing.T, p Plan) { assert.True(t, p.Status.CanaryFresh) },
		},
		{
			name:  "pods left from before the rollout are never taken for the canary",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(0, 0, func(s *v1alpha1.CanaryStatus) { s.CanaryFresh = false }))), Target: Workload{Found: true, Ready: true, Observed: false, Replicas: 0, Pods: 3, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(time.Second)},
			phase: v1alpha1.PhaseProgressing, step: 0, weight: 0, reason: ReasonWaitingForCanary, canaryReplicas: ptr.To[int32](0),
			check: func(t *testing.T, p Plan) {
				assert.False(t, p.Status.CanaryFresh)
				assert.Contains(t, p.Message, "3 of its pods started before this rollout and must stop first")
			},
		},
		{
			name:  "promotion copies the template onto the primary",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhasePromoting }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(50)},
			phase: v1alpha1.PhasePromoting, step: 2, weight: 50, reason: ReasonPromoting, promote: true,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, Weights{Primary: 50, Canary: 50}, p.Routing.Weights, "the canary keeps its share while the primary rolls out")
			},
			ready:   false,
			stalled: false,
		},
		{
			name:  "promotion waits for the primary to roll out",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhasePromoting }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: Workload{Found: true, Revision: "rev2", Replicas: 3, Message: "2 of 3 updated"}, Route: acceptedAt(50)},
			phase: v1alpha1.PhasePromoting, step: 2, weight: 50, reason: ReasonPromoting,
		},
		{
			name:  "a rolled-out primary takes all traffic back",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhasePromoting }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Route: acceptedAt(50)},
			phase: v1alpha1.PhaseFinalising, step: 2, weight: 0, reason: ReasonFinalising, canaryReplicas: ptr.To[int32](3),
		},
		{
			name:  "finalising waits for the route before scaling the canary down",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 0, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhaseFinalising }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Route: acceptedAt(50)},
			phase: v1alpha1.PhaseFinalising, step: 2, weight: 0, reason: ReasonFinalising, canaryReplicas: ptr.To[int32](3),
		},
		{
			name:  "finalising keeps the canary up a moment once the route is back on the primary",
			snap:  Snapshot{Canary: planCanary(withStatus(progressing(2, 0, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhaseFinalising }))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Route: acceptedAt(0), Now: t0},
			phase: v1alpha1.PhaseFinalising, step: 2, weight: 0, reason: ReasonFinalising, canaryReplicas: ptr.To[int32](3),
			check: func(t *testing.T, p Plan) { assert.Equal(t, scaleDownDelayForTest, p.RequeueAfter) },
		},
		{
			name: "finalising done: succeeded, canary scaled to zero",
			snap: Snapshot{Canary: planCanary(withStatus(progressing(2, 0, func(s *v1alpha1.CanaryStatus) {
				s.Phase, s.StepStartedAt = v1alpha1.PhaseFinalising, at(0)
			}))), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Route: acceptedAt(0), Now: t0.Add(scaleDownDelayForTest)},
			phase: v1alpha1.PhaseSucceeded, step: 0, weight: 0, reason: ReasonSucceeded, ready: true, canaryReplicas: ptr.To[int32](0), event: ReasonSucceeded,
			check: func(t *testing.T, p Plan) { assert.Equal(t, "rev2", p.Status.LastPromotedSpec) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ComputePlan(tt.snap)
			assert.Equal(t, tt.phase, p.Status.Phase, "phase")
			assert.Equal(t, tt.step, p.Status.Step, "step")
			assert.Equal(t, tt.weight, p.Status.CanaryWeight, "weight")
			assert.Equal(t, ForCanary(tt.weight), p.Routing.Weights, "route weights follow status")
			assert.Equal(t, tt.failedChecks, p.Status.FailedChecks, "failed checks")
			assert.Equal(t, tt.reason, p.Reason, "reason (message: %s)", p.Message)
			assert.Equal(t, tt.ready, p.Ready, "ready")
			assert.Equal(t, tt.stalled, p.Stalled, "stalled")
			assert.NotEmpty(t, p.Message)
			assert.Equal(t, int64(3), p.Status.ObservedGeneration)
			if tt.canaryReplicas != nil {
				require.NotNil(t, p.CanaryReplicas, "canary replicas")
				assert.Equal(t, *tt.canaryReplicas, *p.CanaryReplicas, "canary replicas")
			}
			assert.Equal(t, tt.promote, p.PromotePrimary, "promote primary")
			if tt.event != "" {
				require.NotEmpty(t, p.Events)
				assert.Equal(t, tt.event, p.Events[len(p.Events)-1].Reason)
				if tt.event == ReasonRolledBack || tt.event == ReasonCheckFailed || tt.event == ReasonAnalysisUnavailable {
					assert.Equal(t, corev1.EventTypeWarning, p.Events[len(p.Events)-1].Type)
				}
			} else {
				assert.Empty(t, p.Events)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestChecksDue(t *testing.T) {
	base := func(mods ...func(*v1alpha1.CanaryStatus)) Snapshot {
		return Snapshot{Canary: planCanary(withStatus(progressing(1, 10, mods...))), Target: Workload{Revision: "rev2"}}
	}
	started := func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }
	tests := []struct {
		name string
		snap Snapshot
		now  time.Duration
		want bool
	}{
		{"not before the route accepted", base(), 30 * time.Second, false},
		{"not before one interval into the step", base(started), 9 * time.Second, false},
		{"one interval into the step", base(started), 10 * time.Second, true},
		{"not again within an interval of the last check", base(started, func(s *v1alpha1.CanaryStatus) { s.LastCheckedAt = at(10 * time.Second) }), 19 * time.Second, false},
		{"again an interval after the last check", base(started, func(s *v1alpha1.CanaryStatus) { s.LastCheckedAt = at(10 * time.Second) }), 20 * time.Second, true},
		{"a check from an earlier step does not count", base(func(s *v1alpha1.CanaryStatus) {
			s.StepStartedAt = at(10 * time.Second)
			s.LastCheckedAt = at(9 * time.Second)
		}), 20 * time.Second, true},
		{"not when a newer revision arrived", func() Snapshot { s := base(started); s.Target.Revision = "rev3"; return s }(), 10 * time.Second, false},
		{"not at step 0", base(started, func(s *v1alpha1.CanaryStatus) { s.Step = 0 }), 10 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.snap.Now = t0.Add(tt.now)
			assert.Equal(t, tt.want, ChecksDue(tt.snap))
		})
	}
}

func TestCheckWindowNeverReachesBeforeTheStep(t *testing.T) {
	s := Snapshot{Canary: planCanary(withStatus(progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) })))}
	m := v1alpha1.CanaryMetric{Name: "x", Interval: "1m"}

	s.Now = t0.Add(25 * time.Second)
	assert.Equal(t, 25*time.Second, CheckWindow(s, m), "capped at the step's age")
	s.Now = t0.Add(5 * time.Minute)
	assert.Equal(t, time.Minute, CheckWindow(s, m), "the metric's own interval")
	assert.Equal(t, 10*time.Second, CheckWindow(s, v1alpha1.CanaryMetric{Name: "x"}), "the analysis interval by default")
}

// rollout is what simulate saw: every routing written, in order, every canary size asked for
// (repeats dropped), and the status it ended in.
type rollout struct {
	routings []Routing
	replicas []int32
	status   v1alpha1.CanaryStatus
}

// simulate drives the planner through a whole rollout of rev2 in a world that does what it is
// told at once: the route accepts every routing, Deployments are ready, and the checks of step
// n return verdict(n). It is how the strategies' sequences are checked end to end without a
// cluster.
func simulate(t *testing.T, cn *v1alpha1.Canary, primaryReplicas int32, verdict func(step int32) v1alpha1.Verdict) rollout {
	t.Helper()
	cn.Status = v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseInitialized, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1", LastTransitionTime: at(0)}
	primary := Workload{Found: true, Ready: true, Replicas: primaryReplicas, Revision: "rev1"}
	target := Workload{Found: true, Ready: true, Observed: true, Revision: "rev2"}
	route := Primary()
	now := t0
	var out rollout
	for range 1000 {
		snap := Snapshot{Canary: cn, Target: target, Primary: primary, Route: State{Found: true, Accepted: true, Routing: route}, Now: now}
		if ChecksDue(snap) {
			snap.Checks = []v1alpha1.Decision{{Metric: "m", Verdict: verdict(cn.Status.Step), Message: "m."}}
		}
		p := ComputePlan(snap)
		cn.Status = p.Status
		if p.Routing != route {
			out.routings = append(out.routings, p.Routing)
			route = p.Routing
		}
		if p.CanaryReplicas != nil && (len(out.replicas) == 0 || out.replicas[len(out.replicas)-1] != *p.CanaryReplicas) {
			out.replicas = append(out.replicas, *p.CanaryReplicas)
		}
		if p.CanaryReplicas != nil {
			target.Replicas, target.Pods = *p.CanaryReplicas, *p.CanaryReplicas
		}
		if p.PromotePrimary {
			primary.Revision = p.Status.LastAppliedSpec
		}
		if p.Status.Phase == v1alpha1.PhaseSucceeded || p.Status.Phase == v1alpha1.PhaseFailed {
			out.status = p.Status
			return out
		}
		now = now.Add(max(p.RequeueAfter, time.Second))
	}
	t.Fatalf("the rollout did not end in 1000 passes; stuck at %s step %d", cn.Status.Phase, cn.Status.Step)
	return out
}

func pass(int32) v1alpha1.Verdict { return v1alpha1.VerdictPass }

// scaleDownDelayForTest is the planner's scaleDownDelay, named here so a table states it.
const scaleDownDelayForTest = scaleDownDelay

func TestStrategies(t *testing.T) {
	sticky := &v1alpha1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "primary"}
	tests := []struct {
		name     string
		mod      func(*v1alpha1.Canary)
		verdict  func(step int32) v1alpha1.Verdict
		strategy Strategy
		routings []Routing
		replicas []int32
		phase    v1alpha1.CanaryPhase
	}{
		{
			name:     "weighted canary",
			strategy: StrategyCanary,
			routings: []Routing{{Weights: ForCanary(10)}, {Weights: ForCanary(50)}, Primary()},
			replicas: []int32{3, 0},
			phase:    v1alpha1.PhaseSucceeded,
		},
		{
			name: "weighted canary mirrors first",
			mod: func(c *v1alpha1.Canary) {
				c.Spec.Analysis.Mirror = true
				c.Spec.Analysis.MirrorWeight = ptr.To[int32](40)
			},
			strategy: StrategyCanary,
			routings: []Routing{{Weights: ForCanary(0), Mirror: 40}, {Weights: ForCanary(10)}, {Weights: ForCanary(50)}, Primary()},
			phase:    v1alpha1.PhaseSucceeded,
		},
		{
			name:     "sticky sessions carry the revision in the cookie, then everyone switches to the canary while the primary is updated",
			mod:      func(c *v1alpha1.Canary) { c.Spec.Analysis.SessionAffinity = sticky },
			strategy: StrategyCanary,
			routings: []Routing{{Weights: ForCanary(10), Sticky: "rev2"}, {Weights: ForCanary(50), Sticky: "rev2"}, {Weights: ForCanary(100)}, Primary()},
			phase:    v1alpha1.PhaseSucceeded,
		},
		{
			name: "A/B: the cohort goes to the canary for every iteration, then back after promotion",
			mod: func(c *v1alpha1.Canary) {
				c.Spec.Analysis.StepWeights = nil
				c.Spec.Analysis.Iterations = ptr.To[int32](3)
				c.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}}
			},
			strategy: StrategyABTesting,
			routings: []Routing{{Weights: ForCanary(0), Cohort: true}, Primary()},
			replicas: []int32{3, 0},
			phase:    v1alpha1.PhaseSucceeded,
		},
		{
			name: "blue/green mirrors during the iterations, then switches everyone at once, then back to the promoted primary",
			mod: func(c *v1alpha1.Canary) {
				c.Spec.Analysis.StepWeights = nil
				c.Spec.Analysis.Iterations = ptr.To[int32](2)
				c.Spec.Analysis.Mirror = true
			},
			strategy: StrategyBlueGreen,
			routings: []Routing{{Weights: ForCanary(0), Mirror: 100}, {Weights: ForCanary(100)}, Primary()},
			phase:    v1alpha1.PhaseSucceeded,
		},
		{
			name: "blue/green that fails never switches",
			mod: func(c *v1alpha1.Canary) {
				c.Spec.Analysis.StepWeights = nil
				c.Spec.Analysis.Iterations = ptr.To[int32](4)
			},
			verdict:  func(int32) v1alpha1.Verdict { return v1alpha1.VerdictFail },
			strategy: StrategyBlueGreen,
			routings: nil,
			replicas: []int32{3, 0},
			phase:    v1alpha1.PhaseFailed,
		},
		{
			name: "replica ratio: 9 primaries and 1 canary pod, then 9 and 9",
			mod: func(c *v1alpha1.Canary) {
				c.Spec.Provider = v1alpha1.ProviderKubernetes
			},
			strategy: StrategyReplicaRatio,
			routings: []Routing{{Weights: ForCanary(10)}, {Weights: ForCanary(50)}, Primary()},
			replicas: []int32{1, 9, 0},
			phase:    v1alpha1.PhaseSucceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn := planCanary()
			if tt.mod != nil {
				tt.mod(cn)
			}
			assert.Equal(t, tt.strategy, StrategyOf(cn))
			verdict := tt.verdict
			if verdict == nil {
				verdict = pass
			}
			primaries := int32(3)
			if tt.strategy == StrategyReplicaRatio {
				primaries = 9
			}
			got := simulate(t, cn, primaries, verdict)
			assert.Equal(t, tt.phase, got.status.Phase, "final phase (%s)", got.status.Conditions)
			assert.Equal(t, tt.routings, got.routings, "the routings written, in order")
			if tt.replicas != nil {
				assert.Equal(t, tt.replicas, got.replicas, "the canary sizes asked for, in order")
			}
		})
	}
}

func TestStages(t *testing.T) {
	bg := planCanary(func(c *v1alpha1.Canary) {
		c.Spec.Analysis.StepWeights = nil
		c.Spec.Analysis.Iterations = ptr.To[int32](2)
		c.Spec.Analysis.Mirror = true
		c.Spec.Analysis.MirrorWeight = ptr.To[int32](25)
	})
	assert.Equal(t, []Stage{{Mirror: 25}, {Mirror: 25}}, Stages(bg))
	assert.Equal(t, []Stage{{Weight: 10}, {Weight: 50}}, Stages(planCanary()))
}

func TestRoutingForRestsOutsideARollout(t *testing.T) {
	cn := planCanary(func(c *v1alpha1.Canary) {
		c.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary"}
	})
	for _, phase := range []v1alpha1.CanaryPhase{v1alpha1.PhaseInitialized, v1alpha1.PhaseFinalising, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed} {
		st := progressing(2, 0, func(s *v1alpha1.CanaryStatus) { s.Phase = phase })
		assert.Equal(t, Primary(), RoutingFor(cn, &st), "phase %s", phase)
	}
	st := progressing(0, 0)
	assert.Equal(t, Primary(), RoutingFor(cn, &st), "no sticky rules before the first step")
}
