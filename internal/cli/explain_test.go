package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

func TestExplainAfterARollback(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setTraffic(suiteFailing, suiteHealthy)
	h.initialized("podinfo:1.0")
	h.setImage("podinfo:2.0")
	cn := h.waitFor("the rollback", statusRolloutTimeout, suitePhaseIs(v1alpha1.PhaseFailed))

	out, _, err := h.run(newExplainCommand, "podinfo")
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Contains(t, out, "podinfo (namespace "+h.ns+") rolled back revision "+cn.Status.LastAppliedSpec)
	assert.Contains(t, out, "The checks failed 2 times in this rollout, the last at step 1 (10% canary traffic); that reached the failure threshold of 2 (analysis.threshold), so trafficctl rolled the canary back.")
	assert.Contains(t, out, "request-success-rate failed: the canary measured 90 where the threshold judge wants >= 99, at step 1 (10% canary traffic)")
	assert.Regexp(t, `The verdict rests on [0-9]+ canary requests\.`, out)
	assert.Contains(t, out, "  - canary query: 100 * (1 - (sum(rate(http_requests_total{namespace=\""+h.ns+"\"")
	assert.Contains(t, out, "run trafficctl retry podinfo")
	assert.Contains(t, out, "Nobody has steered this Canary by hand.")
}

// TestExplainSentences tables the explanation of each way a rollout ends or holds, from
// statuses as the controller writes them.
func TestExplainSentences(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	canary := func(phase v1alpha1.CanaryPhase, reason, message string, mod func(*v1alpha1.Canary)) *v1alpha1.Canary {
		cn := (&harness{ns: "shop"}).newCanary()
		started, transition := ago(5*time.Minute), ago(time.Minute)
		cn.Status = v1alpha1.CanaryStatus{
			Phase: phase, LastAppliedSpec: "new123", LastPromotedSpec: "old456", RolloutStartedAt: &started, LastTransitionTime: &transition,
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: message}},
		}
		if mod != nil {
			mod(cn)
		}
		return cn
	}
	failedCheck := v1alpha1.Decision{
		Metric: "request-success-rate", Judge: v1alpha1.JudgeThreshold, Step: 1, CanaryWeight: 10, Value: "90", Bound: ">= 99",
		SampleSize: 300, Verdict: v1alpha1.VerdictFail, Query: "sum(rate(canary[1m]))", Time: ago(time.Minute),
		Message: "request-success-rate is 90, outside >= 99, over 300 canary requests.",
	}
	cases := []struct {
		name string
		cn   *v1alpha1.Canary
		want []string
		not  []string
	}{
		{
			name: "no status",
			cn:   (&harness{ns: "shop"}).newCanary(),
			want: []string{"podinfo has no status yet: the trafficctl controller has not acted on it. Check that the controller runs and watches namespace shop."},
		},
		{
			name: "initialized",
			cn:   canary(v1alpha1.PhaseInitialized, "Initialized", "The primary Deployment serves all traffic.", nil),
			want: []string{"podinfo (namespace shop) is initialized: the primary runs revision old456 and serves all traffic, and the next change to Deployment podinfo starts a rollout."},
			not:  []string{"No check has run"},
		},
		{
			name: "rolled back by the threshold",
			cn: canary(v1alpha1.PhaseFailed, "CheckFailed", "Rolled back revision new123.", func(cn *v1alpha1.Canary) {
				cn.Status.FailedChecks = 2
				cn.Status.Decisions = []v1alpha1.Decision{failedCheck}
			}),
			want: []string{
				"podinfo (namespace shop) rolled back revision new123 60s ago: the primary, which runs revision old456, serves all traffic again.",
				"The controller's last word (Ready is False, reason CheckFailed): Rolled back revision new123.",
				"The checks failed 2 times in this rollout, the last at step 1 (10% canary traffic); that reached the failure threshold of 2 (analysis.threshold), so trafficctl rolled the canary back.",
				"request-success-rate failed: the canary measured 90 where the threshold judge wants >= 99, at step 1 (10% canary traffic) 60s ago. The verdict rests on 300 canary requests.\n  - canary query: sum(rate(canary[1m]))\n",
			},
		},
		{
			name: "rolled back by a conclusive sequential check",
			cn: canary(v1alpha1.PhaseFailed, "CheckFailed", "A sequential check concluded that the canary is worse.", func(cn *v1alpha1.Canary) {
				cn.Status.FailedChecks = 0
				cn.Status.Decisions = []v1alpha1.Decision{{
					Metric: "errors", Judge: v1alpha1.JudgeSequential, Step: 2, CanaryWeight: 50, Value: "3", PrimaryValue: "1", Bound: "<= primary x 1.5",
					SampleSize: 5000, PrimarySampleSize: 45000, Verdict: v1alpha1.VerdictFail, Conclusive: true, Time: ago(time.Minute),
					Query: "canary query", PrimaryQuery: "primary query",
					Evidence: &v1alpha1.Evidence{Metric: "errors", CanaryRequests: 5000, CanaryBad: 150, PrimaryRequests: 45000, PrimaryBad: 450},
					Message:  "errors: the error rate is worse than 1.5x the primary's: the evidence reached 2,345, over the 100 needed (falseRollbackRate 1%).",
				}}
			}),
			want: []string{
				"A sequential check was conclusive: its evidence that the canary is worse than the primary crossed the bar, so trafficctl rolled back at once, without waiting for 2 failed checks (analysis.threshold).",
				"errors failed: the canary measured 3 against the primary's 1 where the sequential judge wants <= primary x 1.5, at step 2 (50% canary traffic) 60s ago.",
				"The verdict rests on 5000 canary requests (45000 of the primary).",
				"Over the whole rollout the sequential check saw 5000 canary requests (150 bad) and 45000 of the primary (450 bad). errors: the error rate is worse than 1.5x the primary's: the evidence reached 2,345, over the 100 needed",
				"  - canary query: canary query\n  - primary query: primary query\n",
			},
			not: []string{"failure threshold of"},
		},
		{
			name: "rolled back by a rollback webhook",
			cn: canary(v1alpha1.PhaseFailed, "RollbackRequested", "A rollback webhook asked for a rollback.", func(cn *v1alpha1.Canary) {
				cn.Status.Webhooks = []v1alpha1.WebhookResult{
					{Name: "pager", Type: v1alpha1.WebhookRollback, Outcome: v1alpha1.WebhookApproved, StatusCode: 200, Attempts: 1, Message: "pager asks for a rollback.", Time: ago(time.Minute)},
					{Name: "load-test", Type: v1alpha1.WebhookPreRollout, Outcome: v1alpha1.WebhookApproved, StatusCode: 200, Attempts: 1, Time: ago(4 * time.Minute)},
				}
			}),
			want: []string{
				"A rollback webhook asked for the rollback",
				"  - pager (rollback): Approved, HTTP 200 after 1 attempts, 60s ago: pager asks for a rollback.\n",
			},
			not: []string{"load-test"},
		},
		{
			name: "aborted by hand",
			cn: canary(v1alpha1.PhaseFailed, "Aborted", "Rolled back revision new123. Aborted by alice.", func(cn *v1alpha1.Canary) {
				cn.Status.ManualActions = []v1alpha1.ManualAction{{
					Action: v1alpha1.ActionAbort, User: "alice", HandledAt: ago(2 * time.Minute), Outcome: v1alpha1.RequestApplied,
					Message: "Aborted by alice at step 1 (10% canary traffic).",
				}}
			}),
			want: []string{
				"alice aborted it by hand 2m ago: Aborted by alice at step 1 (10% canary traffic).",
				"The latest manual actions, newest first:\n  - alice asked to abort 2m ago; applied: Aborted by alice at step 1 (10% canary traffic).",
			},
			not: []string{"Nobody has steered"},
		},
		{
			name: "past the progress deadline",
			cn:   canary(v1alpha1.PhaseFailed, "ProgressDeadlineExceeded", "The canary Deployment did not become ready within 1m0s.", nil),
			want: []string{"The rollout ran out of time: the canary Deployment or the route was not ready within the progress deadline of 1m (spec.progressDeadlineSeconds)."},
		},
		{
			name: "a pre-rollout webhook failed",
			cn: canary(v1alpha1.PhaseFailed, "WebhookFailed", "Check 2 of 2 failed before the canary got traffic.", func(cn *v1alpha1.Canary) {
				cn.Status.FailedChecks = 2
				cn.Status.Webhooks = []v1alpha1.WebhookResult{{Name: "smoke", Type: v1alpha1.WebhookPreRollout, Outcome: v1alpha1.WebhookFailed, Attempts: 3, Message: "smoke did not answer.", Time: ago(time.Minute)}}
			}),
			want: []string{
				"A pre-rollout webhook failed 2 times, which reached the failure threshold of 2 (analysis.threshold), before the canary got any traffic.",
				"  - smoke (pre-rollout): Failed, no answer after 3 attempts, 60s ago: smoke did not answer.",
			},
		},
		{
			name: "a failed check holds the step",
			cn: canary(v1alpha1.PhaseProgressing, "CheckFailed", "Check 1 of 3 failed at 10% canary traffic.", func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.Threshold = 3
				cn.Status.Step, cn.Status.CanaryWeight, cn.Status.FailedChecks = 1, 10, 1
				cn.Status.Decisions = []v1alpha1.Decision{failedCheck}
			}),
			want: []string{
				"podinfo (namespace shop) is rolling out revision new123 and stands at step 1 of 2, with primary 90% / canary 10%.",
				"A check failed: 1 of the 3 failed checks the threshold allows (analysis.threshold) are used, so the step holds and checks again every 3s; 2 more failed checks roll the canary back.",
				"request-success-rate failed: the canary measured 90",
				"The latest verdict of each check in this rollout:\n  - request-success-rate: Fail at step 1 (10% canary traffic), 60s ago. request-success-rate is 90, outside >= 99, over 300 canary requests.\n",
			},
		},
		{
			name: "paused while analysing",
			cn: canary(v1alpha1.PhaseProgressing, "Paused", "Paused by bob.", func(cn *v1alpha1.Canary) {
				cn.Status.Step, cn.Status.CanaryWeight = 2, 50
				cn.Status.Paused = &v1alpha1.ManualAction{Action: v1alpha1.ActionPause, User: "bob", HandledAt: ago(time.Minute), Outcome: v1alpha1.RequestApplied}
			}),
			want: []string{
				"stands at step 2 of 2, with primary 50% / canary 50%.",
				"bob paused the rollout 60s ago: no check, no step and no promotion happens until someone resumes it (trafficctl resume podinfo).",
				"No check has run in this rollout yet.",
			},
		},
		{
			name: "analysing",
			cn: canary(v1alpha1.PhaseProgressing, "Analysing", "Step 1 of 2: the checks pass so far.", func(cn *v1alpha1.Canary) {
				cn.Status.Step, cn.Status.CanaryWeight = 1, 10
			}),
			want: []string{"The checks of step 1 of 2 pass so far. A step lasts 3s (analysis.interval) from the moment the route accepted its weights, with checks every 3s; then the rollout moves to the next step, or promotes after the last."},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := explainText(tc.cn, now)
			for _, w := range tc.want {
				assert.Contains(t, got, w)
			}
			for _, n := range tc.not {
				assert.NotContains(t, got, n)
			}
			assert.NotContains(t, got, "\n\n\n", "one blank line between paragraphs")
			assert.True(t, strings.HasSuffix(got, "\n"), "ends with a newline")
		})
	}
}

// TestExplainAfterTheProgressDeadline follows a canary whose pods never become ready: the watch
// fails with the deadline, and explain says what ran out.
func TestExplainAfterTheProgressDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.initialized("podinfo:1.0", func(cn *v1alpha1.Canary) { cn.Spec.ProgressDeadlineSeconds = ptr.To[int32](3) })
	h.breakDeployment("podinfo")
	h.setImage("podinfo:2.0")

	_, _, err := h.run(statusQuick, "podinfo", "--watch", "--wait-start", "20s", "--timeout", "60s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rollout of podinfo failed: ")
	assert.Contains(t, err.Error(), "did not become ready within 3s")

	out, _, err := h.run(newExplainCommand, "podinfo")
	require.NoError(t, err)
	assert.Contains(t, out, "(Ready is False, reason ProgressDeadlineExceeded)")
	assert.Contains(t, out, "The rollout ran out of time: the canary Deployment or the route was not ready within the progress deadline of 3s (spec.progressDeadlineSeconds).")
	assert.Contains(t, out, "No check has run in this rollout yet.")
}
