package rollout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// sequentialCanary checks every 5s within steps of 10s, with one sequential check beside the
// threshold one.
func sequentialCanary(st v1alpha1.CanaryStatus) *v1alpha1.Canary {
	return planCanary(withStatus(st), func(c *v1alpha1.Canary) {
		c.Spec.Analysis.CheckInterval = "5s"
		c.Spec.Analysis.Metrics = append(c.Spec.Analysis.Metrics, v1alpha1.CanaryMetric{Name: "errors", Sequential: &v1alpha1.SequentialTest{}})
	})
}

func verdicts(threshold v1alpha1.Verdict, sequential v1alpha1.Verdict, conclusive bool) []v1alpha1.Decision {
	return []v1alpha1.Decision{
		{Metric: "request-success-rate", Judge: v1alpha1.JudgeThreshold, Verdict: threshold, Message: "request-success-rate is " + string(threshold) + "."},
		{
			Metric: "errors", Judge: v1alpha1.JudgeSequential, Verdict: sequential, Conclusive: conclusive, Message: "errors is " + string(sequential) + ".",
			Evidence: &v1alpha1.Evidence{Metric: "errors", CanaryRequests: 500, CanaryBad: 1, PrimaryRequests: 4500, PrimaryBad: 5, LogWorse: -0.5, LogNotWorse: 1.2},
		},
	}
}

func TestChecksRunEveryCheckInterval(t *testing.T) {
	started := progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) })
	checked := progressing(1, 10, func(s *v1alpha1.CanaryStatus) { s.StepStartedAt, s.LastCheckedAt = at(0), at(5*time.Second) })
	due := func(st v1alpha1.CanaryStatus, now time.Duration) bool {
		return ChecksDue(Snapshot{Canary: sequentialCanary(st), Target: Workload{Revision: "rev2"}, Now: t0.Add(now)})
	}
	assert.False(t, due(started, 4*time.Second))
	assert.True(t, due(started, 5*time.Second), "the first check runs a check interval into the step")
	assert.False(t, due(checked, 9*time.Second))
	assert.True(t, due(checked, 10*time.Second))
}

func TestSequentialChecksInThePlan(t *testing.T) {
	inStep := func(mods ...func(*v1alpha1.CanaryStatus)) v1alpha1.CanaryStatus {
		return progressing(1, 10, append([]func(*v1alpha1.CanaryStatus){func(s *v1alpha1.CanaryStatus) { s.StepStartedAt = at(0) }}, mods...)...)
	}
	tests := []struct {
		name   string
		status v1alpha1.CanaryStatus
		now    time.Duration
		checks []v1alpha1.Decision
		phase  v1alpha1.CanaryPhase
		step   int32
		reason string
		event  string
		check  func(t *testing.T, p Plan)
	}{
		{
			name: "passing checks hold a step that has not lasted its interval", status: inStep(), now: 5 * time.Second,
			checks: verdicts(v1alpha1.VerdictPass, v1alpha1.VerdictPass, false),
			phase:  v1alpha1.PhaseProgressing, step: 1, reason: ReasonAnalysing,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, 5*time.Second, p.RequeueAfter, "until the next check")
				assert.Empty(t, p.Status.Evidence, "the step's evidence is carried only once it ends")
				assert.Contains(t, p.Message, "the step lasts until")
			},
		},
		{
			name: "passing checks advance a step that has lasted its interval, carrying the evidence", status: inStep(), now: 10 * time.Second,
			checks: verdicts(v1alpha1.VerdictPass, v1alpha1.VerdictPass, false),
			phase:  v1alpha1.PhaseProgressing, step: 2, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) {
				require.Len(t, p.Status.Evidence, 1)
				assert.Equal(t, int64(500), p.Status.Evidence[0].CanaryRequests)
				assert.Contains(t, p.Events[0].Message, "Every check passed at step 1 of 2")
				assert.Contains(t, p.Events[0].Message, "errors is Pass.", "the event says what every check found")
			},
		},
		{
			name: "a step's evidence replaces the carried one, which it already includes",
			status: inStep(func(s *v1alpha1.CanaryStatus) {
				s.Evidence = []v1alpha1.Evidence{{Metric: "errors", CanaryRequests: 100}}
			}), now: 10 * time.Second,
			checks: verdicts(v1alpha1.VerdictPass, v1alpha1.VerdictPass, false),
			phase:  v1alpha1.PhaseProgressing, step: 2, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) {
				require.Len(t, p.Status.Evidence, 1)
				assert.Equal(t, int64(500), p.Status.Evidence[0].CanaryRequests)
			},
		},
		{
			name: "a conclusive sequential failure rolls back at once, under threshold", status: inStep(), now: 5 * time.Second,
			checks: verdicts(v1alpha1.VerdictPass, v1alpha1.VerdictFail, true),
			phase:  v1alpha1.PhaseFailed, reason: ReasonCheckFailed, event: ReasonRolledBack,
			check: func(t *testing.T, p Plan) {
				assert.Zero(t, p.Status.FailedChecks, "it needed no count of failed checks")
				assert.Contains(t, p.Message, "A sequential check concluded at step 1 of 2 (10% canary traffic) that the canary is worse: errors is Fail.")
			},
		},
		{
			name: "a conclusive pass of every sequential check advances early", status: inStep(), now: 5 * time.Second,
			checks: verdicts(v1alpha1.VerdictPass, v1alpha1.VerdictPass, true),
			phase:  v1alpha1.PhaseProgressing, step: 2, reason: ReasonWaitingForRoute, event: ReasonStepAdvanced,
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Events[0].Message, "The sequential checks concluded at step 1 of 2 (10% canary traffic) that the canary is not worse")
			},
		},
		{
			name: "a failing threshold check still counts beside a conclusive pass", status: inStep(), now: 5 * time.Second,
			checks: verdicts(v1alpha1.VerdictFail, v1alpha1.VerdictPass, true),
			phase:  v1alpha1.PhaseProgressing, step: 1, reason: ReasonCheckFailed, event: ReasonCheckFailed,
		},
		{
			name: "not enough traffic holds the step", status: inStep(), now: 10 * time.Second,
			checks: verdicts(v1alpha1.VerdictPass, v1alpha1.VerdictNoData, false),
			phase:  v1alpha1.PhaseProgressing, step: 1, reason: ReasonNoData,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ComputePlan(Snapshot{
				Canary: sequentialCanary(tt.status), Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: readyPrimary,
				Route: acceptedAt(10), Checks: tt.checks, Now: t0.Add(tt.now),
			})
			assert.Equal(t, tt.phase, p.Status.Phase, "phase (message: %s)", p.Message)
			assert.Equal(t, tt.step, p.Status.Step, "step")
			assert.Equal(t, tt.reason, p.Reason, "reason (message: %s)", p.Message)
			if tt.event == "" {
				assert.Empty(t, p.Events)
			} else {
				require.NotEmpty(t, p.Events)
				assert.Equal(t, tt.event, p.Events[len(p.Events)-1].Reason)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestANewRolloutForgetsTheEvidence(t *testing.T) {
	st := v1alpha1.CanaryStatus{
		Phase: v1alpha1.PhaseSucceeded, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1",
		Evidence: []v1alpha1.Evidence{{Metric: "errors", CanaryRequests: 100}},
	}
	p := ComputePlan(Snapshot{Canary: sequentialCanary(st), Target: Workload{Found: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0})
	assert.Equal(t, v1alpha1.PhaseProgressing, p.Status.Phase)
	assert.Empty(t, p.Status.Evidence)
}

// Blue/green promises users one switch: back onto the primary only once no pod of its old
// revision is left to answer them. A weighted canary goes back at once, as before.
func TestSwitchBackWaitsForTheOldPrimaryPods(t *testing.T) {
	promoting := progressing(0, 100, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhasePromoting })
	blueGreen := planCanary(withStatus(promoting), func(c *v1alpha1.Canary) {
		c.Spec.Analysis.StepWeights, c.Spec.Analysis.Iterations = nil, ptr.To[int32](2)
	})
	draining := Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3, Terminating: 2}
	snap := Snapshot{Canary: blueGreen, Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: draining, Route: acceptedAt(100), Now: t0}

	p := ComputePlan(snap)
	assert.Equal(t, v1alpha1.PhasePromoting, p.Status.Phase)
	assert.Equal(t, int32(100), p.Routing.Weights.Canary, "everyone stays on the canary")
	assert.Contains(t, p.Message, "Waiting for 2 pods of the primary's previous revision to terminate")

	snap.Primary.Terminating = 0
	p = ComputePlan(snap)
	assert.Equal(t, v1alpha1.PhaseFinalising, p.Status.Phase)
	assert.Equal(t, int32(0), p.Routing.Weights.Canary)

	weighted := planCanary(withStatus(progressing(2, 50, func(s *v1alpha1.CanaryStatus) { s.Phase = v1alpha1.PhasePromoting })))
	p = ComputePlan(Snapshot{Canary: weighted, Target: Workload{Found: true, Ready: true, Revision: "rev2"}, Primary: draining, Route: acceptedAt(50), Now: t0})
	assert.Equal(t, v1alpha1.PhaseFinalising, p.Status.Phase)
}
