package rollout

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

func withHooks(hs ...v1alpha1.CanaryWebhook) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Webhooks = hs }
}

func hook(name string, t v1alpha1.WebhookType) v1alpha1.CanaryWebhook {
	return v1alpha1.CanaryWebhook{Name: name, Type: t, URL: "http://127.0.0.1:1/" + name}
}

func answered(name string, t v1alpha1.WebhookType, o v1alpha1.WebhookOutcome) map[v1alpha1.WebhookType][]v1alpha1.WebhookResult {
	msg := `webhook "` + name + `" answered 200 OK`
	if o != v1alpha1.WebhookApproved {
		msg = `webhook "` + name + `" answered 403 Forbidden`
	}
	return map[v1alpha1.WebhookType][]v1alpha1.WebhookResult{t: {{Name: name, Type: t, Outcome: o, Message: msg}}}
}

var (
	newRevision = Workload{Found: true, Ready: true, Replicas: 3, Revision: "rev2"}
	succeeded   = v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseSucceeded, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1", LastTransitionTime: at(0)}
)

func TestWebhookGates(t *testing.T) {
	confirmRollout := withHooks(hook("approve", v1alpha1.WebhookConfirmRollout))
	tests := []struct {
		name      string
		snap      Snapshot
		phase     v1alpha1.CanaryPhase
		step      int32
		reason    string
		callGates []v1alpha1.WebhookType
		check     func(t *testing.T, p Plan)
	}{
		{
			name:  "a new revision asks confirm-rollout first",
			snap:  Snapshot{Canary: planCanary(confirmRollout, withStatus(succeeded)), Target: newRevision, Primary: readyPrimary, Route: acceptedAt(0), Now: t0},
			phase: v1alpha1.PhaseSucceeded, callGates: []v1alpha1.WebhookType{v1alpha1.WebhookConfirmRollout},
		},
		{
			name: "a refused confirm-rollout waits with the canary at zero",
			snap: Snapshot{Canary: planCanary(confirmRollout, withStatus(succeeded)), Target: newRevision, Primary: readyPrimary, Route: acceptedAt(0), Now: t0,
				Gates: answered("approve", v1alpha1.WebhookConfirmRollout, v1alpha1.WebhookRefused)},
			phase: v1alpha1.PhaseWaiting, reason: ReasonWaitingForApproval,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, ptr.To[int32](0), p.CanaryReplicas)
				assert.Equal(t, "rev2", p.Status.LastAppliedSpec)
				require.Len(t, p.Status.Webhooks, 1)
				assert.Equal(t, v1alpha1.WebhookRefused, p.Status.Webhooks[0].Outcome)
				assert.Contains(t, p.Message, `Webhook "approve" answered 403 Forbidden.`)
			},
		},
		{
			name: "a waiting revision is not asked again before a check interval",
			snap: Snapshot{Canary: planCanary(confirmRollout, withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseWaiting, LastAppliedSpec: "rev2", LastPromotedSpec: "rev1", LastCheckedAt: at(0)})),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(4e9)},
			phase: v1alpha1.PhaseWaiting,
			check: func(t *testing.T, p Plan) {
				assert.Empty(t, p.CallGates)
				assert.Equal(t, int64(6e9), int64(p.RequeueAfter))
			},
		},
		{
			name: "an approved waiting revision starts its rollout",
			snap: Snapshot{Canary: planCanary(confirmRollout, withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseWaiting, LastAppliedSpec: "rev2", LastPromotedSpec: "rev1", LastCheckedAt: at(0)})),
				Target: Workload{Found: true, Observed: true, Revision: "rev2"}, Primary: readyPrimary, Route: acceptedAt(0), Now: t0.Add(11e9), Gates: answered("approve", v1alpha1.WebhookConfirmRollout, v1alpha1.WebhookApproved)},
			phase: v1alpha1.PhaseProgressing, reason: ReasonWaitingForCanary,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, ptr.To[int32](3), p.CanaryReplicas)
				assert.NotNil(t, p.Status.RolloutStartedAt)
				assert.Len(t, p.Status.Webhooks, 1, "the approval stays on record")
			},
		},
		{
			name: "a refused pre-rollout is a failed check",
			snap: Snapshot{Canary: planCanary(withHooks(hook("smoke", v1alpha1.WebhookPreRollout)), withStatus(progressing(0, 0))),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(0), Now: t0, Gates: answered("smoke", v1alpha1.WebhookPreRollout, v1alpha1.WebhookFailed)},
			phase: v1alpha1.PhaseProgressing, step: 0, reason: ReasonWebhookFailed,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, int32(1), p.Status.FailedChecks)
				require.NotEmpty(t, p.Status.Decisions)
				assert.Equal(t, v1alpha1.JudgeWebhook, p.Status.Decisions[0].Judge)
			},
		},
		{
			name: "checks ask the rollback and rollout webhooks",
			snap: Snapshot{Canary: planCanary(withHooks(hook("load", v1alpha1.WebhookRollout), hook("kill", v1alpha1.WebhookRollback)), withStatus(progressing(1, 10, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) }))),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(10), Now: t0.Add(10e9), Checks: check(v1alpha1.VerdictPass)},
			phase: v1alpha1.PhaseProgressing, step: 1, callGates: []v1alpha1.WebhookType{v1alpha1.WebhookRollback, v1alpha1.WebhookRollout},
		},
		{
			name: "a failing rollout webhook is a failed check",
			snap: Snapshot{Canary: planCanary(withHooks(hook("load", v1alpha1.WebhookRollout)), withStatus(progressing(1, 10, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) }))),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(10), Now: t0.Add(10e9), Checks: check(v1alpha1.VerdictPass),
				Gates: answered("load", v1alpha1.WebhookRollout, v1alpha1.WebhookRefused)},
			phase: v1alpha1.PhaseProgressing, step: 1, reason: ReasonCheckFailed,
			check: func(t *testing.T, p Plan) { assert.Equal(t, int32(1), p.Status.FailedChecks) },
		},
		{
			name: "a refused traffic increase holds the step without a failed check or carried evidence",
			snap: Snapshot{Canary: planCanary(withHooks(hook("more", v1alpha1.WebhookConfirmTrafficIncrease)), withStatus(progressing(1, 10, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) }))),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(10), Now: t0.Add(10e9),
				Checks: []v1alpha1.Decision{{Metric: "errors", Judge: v1alpha1.JudgeSequential, Verdict: v1alpha1.VerdictPass, Evidence: &v1alpha1.Evidence{Metric: "errors", CanaryRequests: 10}}},
				Gates:  answered("more", v1alpha1.WebhookConfirmTrafficIncrease, v1alpha1.WebhookRefused)},
			phase: v1alpha1.PhaseProgressing, step: 1, reason: ReasonWaitingForApproval,
			check: func(t *testing.T, p Plan) {
				assert.Zero(t, p.Status.FailedChecks)
				assert.Empty(t, p.Status.Evidence, "the step is not over: its requests would be counted twice")
				assert.Equal(t, int32(10), p.Status.CanaryWeight)
			},
		},
		{
			name: "a refused promotion waits at WaitingPromotion",
			snap: Snapshot{Canary: planCanary(withHooks(hook("sign-off", v1alpha1.WebhookConfirmPromotion)), withStatus(progressing(2, 50, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) }))),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(50), Now: t0.Add(10e9), Checks: check(v1alpha1.VerdictPass),
				Gates: answered("sign-off", v1alpha1.WebhookConfirmPromotion, v1alpha1.WebhookRefused)},
			phase: v1alpha1.PhaseWaitingPromotion, step: 2, reason: ReasonWaitingForApproval,
		},
		{
			name: "a 2xx rollback webhook rolls back",
			snap: Snapshot{Canary: planCanary(withHooks(hook("kill", v1alpha1.WebhookRollback), hook("done", v1alpha1.WebhookPostRollout)), withStatus(progressing(1, 10, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) }))),
				Target: newRevision, Primary: readyPrimary, Route: acceptedAt(10), Now: t0.Add(10e9), Checks: check(v1alpha1.VerdictPass),
				Gates: answered("kill", v1alpha1.WebhookRollback, v1alpha1.WebhookApproved)},
			phase: v1alpha1.PhaseFailed, reason: ReasonRollbackWebhook,
			check: func(t *testing.T, p Plan) { assert.True(t, p.PostRollout, "post-rollout webhooks hear of the end") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ComputePlan(tt.snap)
			assert.Equal(t, tt.phase, p.Status.Phase)
			assert.Equal(t, tt.step, p.Status.Step)
			if tt.reason != "" {
				assert.Equal(t, tt.reason, p.Reason, p.Message)
			}
			assert.Equal(t, tt.callGates, p.CallGates)
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func request(a v1alpha1.RequestActionType) *v1alpha1.ManualRequest {
	return &v1alpha1.ManualRequest{Action: a, ID: string(a) + "-1", User: "alice"}
}

func TestManualRequests(t *testing.T) {
	step1 := progressing(1, 10, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) })
	paused := progressing(1, 10, func(st *v1alpha1.CanaryStatus) {
		st.StepStartedAt = at(0)
		st.Paused = &v1alpha1.ManualAction{Action: v1alpha1.ActionPause, User: "bob"}
	})
	failed := v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseFailed, LastAppliedSpec: "rev2", LastPromotedSpec: "rev1", LastTransitionTime: at(0)}
	tests := []struct {
		name    string
		status  v1alpha1.CanaryStatus
		target  Workload
		req     *v1alpha1.ManualRequest
		phase   v1alpha1.CanaryPhase
		reason  string
		outcome v1alpha1.RequestOutcome
		check   func(t *testing.T, p Plan)
	}{
		{name: "pause holds the step", status: step1, req: request(v1alpha1.ActionPause), phase: v1alpha1.PhaseProgressing, reason: ReasonPaused, outcome: v1alpha1.RequestApplied,
			check: func(t *testing.T, p Plan) {
				require.NotNil(t, p.Status.Paused)
				assert.Equal(t, "alice", p.Status.Paused.User)
				assert.Equal(t, int32(10), p.Routing.Weights.Canary)
				assert.Nil(t, p.CanaryReplicas, "nothing is scaled while paused")
			}},
		{name: "pause while paused is ignored", status: paused, req: request(v1alpha1.ActionPause), phase: v1alpha1.PhaseProgressing, reason: ReasonPaused, outcome: v1alpha1.RequestIgnored},
		{name: "resume restarts the step's window", status: paused, req: request(v1alpha1.ActionResume), phase: v1alpha1.PhaseProgressing, outcome: v1alpha1.RequestApplied,
			check: func(t *testing.T, p Plan) { assert.Nil(t, p.Status.Paused) }},
		{name: "resume when not paused is ignored", status: step1, req: request(v1alpha1.ActionResume), phase: v1alpha1.PhaseProgressing, outcome: v1alpha1.RequestIgnored},
		{name: "promote goes to Promoting", status: step1, req: request(v1alpha1.ActionPromote), phase: v1alpha1.PhasePromoting, reason: ReasonPromoting, outcome: v1alpha1.RequestApplied},
		{name: "promote between rollouts is refused", status: succeeded, target: readyPrimary, req: request(v1alpha1.ActionPromote), phase: v1alpha1.PhaseSucceeded, outcome: v1alpha1.RequestRefused},
		{name: "abort rolls back", status: step1, req: request(v1alpha1.ActionAbort), phase: v1alpha1.PhaseFailed, reason: ReasonAborted, outcome: v1alpha1.RequestApplied,
			check: func(t *testing.T, p Plan) { assert.Equal(t, int32(0), p.Routing.Weights.Canary) }},
		{name: "abort of a paused rollout rolls back", status: paused, req: request(v1alpha1.ActionAbort), phase: v1alpha1.PhaseFailed, reason: ReasonAborted, outcome: v1alpha1.RequestApplied},
		{name: "retry of a failed rollout starts it again", status: failed, req: request(v1alpha1.ActionRetry), phase: v1alpha1.PhaseProgressing, reason: ReasonWaitingForCanary, outcome: v1alpha1.RequestApplied},
		{name: "retry of a running rollout is refused", status: step1, req: request(v1alpha1.ActionRetry), phase: v1alpha1.PhaseProgressing, outcome: v1alpha1.RequestRefused},
		{name: "an unknown action is refused", status: step1, req: request("skip"), phase: v1alpha1.PhaseProgressing, outcome: v1alpha1.RequestRefused},
		{name: "a new revision while paused goes back to the primary and holds", status: paused, target: Workload{Found: true, Ready: true, Replicas: 3, Revision: "rev3"},
			phase: v1alpha1.PhaseProgressing, reason: ReasonPaused,
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "rev3", p.Status.LastAppliedSpec)
				assert.Equal(t, int32(0), p.Routing.Weights.Canary)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if !target.Found {
				target = newRevision
			}
			p := ComputePlan(Snapshot{Canary: planCanary(withStatus(tt.status)), Target: target, Primary: readyPrimary, Route: acceptedAt(tt.status.CanaryWeight), Request: tt.req, Now: t0.Add(5e9)})
			assert.Equal(t, tt.phase, p.Status.Phase, p.Message)
			if tt.reason != "" {
				assert.Equal(t, tt.reason, p.Reason, p.Message)
			}
			if tt.req != nil {
				require.NotEmpty(t, p.Status.ManualActions)
				assert.Equal(t, tt.outcome, p.Status.ManualActions[0].Outcome, p.Status.ManualActions[0].Message)
				assert.Equal(t, tt.req.ID, p.Status.LastRequestID)
				assert.NotEmpty(t, p.Events, "every request is told in an event")
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestChecksDoNotRunWhilePausedOrARequestWaits(t *testing.T) {
	st := progressing(1, 10, func(st *v1alpha1.CanaryStatus) { st.StepStartedAt = at(0) })
	s := Snapshot{Canary: planCanary(withStatus(st)), Target: newRevision, Now: t0.Add(20e9)}
	require.True(t, ChecksDue(s))
	s.Request = request(v1alpha1.ActionPause)
	assert.False(t, ChecksDue(s), "the request is handled first")
	s.Request = nil
	s.Canary.Status.Paused = &v1alpha1.ManualAction{Action: v1alpha1.ActionPause}
	assert.False(t, ChecksDue(s))
	s.Canary.Status.Paused = nil
	s.Canary.Status.Phase = v1alpha1.PhaseWaitingPromotion
	assert.True(t, ChecksDue(s), "the checks go on while the promotion waits")
}

// TestPendingRequestIsOneNotYetHandled: the controller and the CLI read the annotation through
// this one function (the CLI's copy used to leave bare actions out, which the controller reads).
func TestPendingRequestIsOneNotYetHandled(t *testing.T) {
	annotated := func(value, last string, handled ...string) *v1alpha1.Canary {
		cn := &v1alpha1.Canary{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1alpha1.RequestAnnotation: value}},
			Status:     v1alpha1.CanaryStatus{LastRequestID: last},
		}
		for _, id := range handled {
			cn.Status.ManualActions = append(cn.Status.ManualActions, v1alpha1.ManualAction{ID: id})
		}
		return cn
	}
	got := PendingRequest(annotated(`{"action":"abort","id":"a1","user":"bob"}`, "a0"))
	require.NotNil(t, got)
	assert.Equal(t, "a1", got.ID)
	assert.Equal(t, "bob", got.User)
	assert.Nil(t, PendingRequest(annotated(`{"action":"abort","id":"a1"}`, "a1")), "handled last")
	assert.Nil(t, PendingRequest(annotated(`{"action":"abort","id":"a1"}`, "a2", "a2", "a1")), "handled before the last")
	bare := PendingRequest(annotated("promote", ""))
	require.NotNil(t, bare, "a bare action is understood")
	assert.Equal(t, v1alpha1.ActionPromote, bare.Action)
	assert.True(t, strings.HasPrefix(bare.ID, "sha256:"), bare.ID)
	assert.Nil(t, PendingRequest(annotated("promote", bare.ID)), "the same bare action asks once")
	unreadable := PendingRequest(annotated("{oops", ""))
	require.NotNil(t, unreadable)
	assert.Empty(t, unreadable.Action, "refused by the planner with the reason")
	assert.Nil(t, PendingRequest(&v1alpha1.Canary{}))
}

// TestCheckRequestIsWhatThePlannerRecords: for every action in every phase, the outcome the CLI
// reads from CheckRequest before it writes a request is the one the planner records.
func TestCheckRequestIsWhatThePlannerRecords(t *testing.T) {
	actions := []v1alpha1.RequestActionType{v1alpha1.ActionPromote, v1alpha1.ActionAbort, v1alpha1.ActionPause, v1alpha1.ActionResume, v1alpha1.ActionRetry, "", "skip"}
	for _, phase := range Phases {
		for _, paused := range []bool{false, true} {
			for _, action := range actions {
				st := progressing(1, 10)
				st.Phase = phase
				if paused {
					st.Paused = &v1alpha1.ManualAction{User: "carol"}
				}
				cn := planCanary(withStatus(st))
				p := ComputePlan(Snapshot{
					Canary: cn, Target: Workload{Found: true, Ready: true, Revision: "rev2", Replicas: 3}, Primary: readyPrimary,
					Route: acceptedAt(10), Request: &v1alpha1.ManualRequest{Action: action, ID: "r1", User: "alice"}, Now: t0.Add(5 * time.Second),
				})
				want, why := CheckRequest(action, &cn.Status, "rev2")
				require.NotEmpty(t, p.Status.ManualActions, "%s in %s", action, phase)
				rec := p.Status.ManualActions[0]
				assert.Equal(t, want, rec.Outcome, "%q in %s (paused %v): %s", action, phase, paused, rec.Message)
				if want != v1alpha1.RequestApplied {
					assert.Contains(t, rec.Message, why)
				}
			}
		}
	}
}
