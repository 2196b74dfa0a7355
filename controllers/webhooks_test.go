package controllers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/hooks"
	"github.com/trafficctl/trafficctl/rollout"
)

func TestConfirmRolloutHoldsTheRevisionUntilApproved(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.namedSecret("hooks", map[string]string{"hmac-key": "s3cr3t-hmac"})
	gate := newReceiver(t, http.StatusForbidden)
	approve := webhook("approve", v1alpha1.WebhookConfirmRollout, gate)
	approve.SecretRef = &v1alpha1.SecretKeyReference{Name: "hooks"}
	approve.Metadata = map[string]string{"ticket": "CHG-42"}
	c.startController()
	c.create(c.newCanary(withWebhooks(approve)))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	require.Empty(t, gate.requests(), "confirm-rollout is not asked before there is a new revision")

	c.setImage("podinfo:2.0")
	cn := c.waitFor("the revision to wait", rolloutTimeout, phaseIs(v1alpha1.PhaseWaiting))
	assert.Contains(t, readyMessage(cn), rollout.ReasonWaitingForApproval)
	assert.Contains(t, readyMessage(cn), `Webhook "approve" answered 403 Forbidden`)
	assert.NotContains(t, readyMessage(cn), gate.URL(""), "the URL stays out of status")
	asked := gate.waitRequests(2, 20*time.Second)
	cn = c.canary()
	assert.Equal(t, v1alpha1.PhaseWaiting, cn.Status.Phase, "still waiting after being refused twice")
	assert.Zero(t, ptr.Deref(c.deployment("podinfo").Spec.Replicas, -1), "the canary is not scaled up while it waits")
	assert.Equal(t, []int32{0}, c.weightsSeen(), "no traffic moved")
	require.Len(t, cn.Status.Webhooks, 1)
	assert.Equal(t, v1alpha1.WebhookRefused, cn.Status.Webhooks[0].Outcome)
	assert.Equal(t, int32(403), cn.Status.Webhooks[0].StatusCode)
	waiting := c.eventsEventually(rollout.ReasonWaitingForApproval, 1)
	require.Len(t, waiting, 1, "one event when the revision starts waiting, not one per refusal")
	assert.Contains(t, waiting[0], "403 Forbidden")

	// Every request is signed, and carries what a receiver needs to decide.
	for _, q := range asked {
		assert.True(t, hooks.Verify([]byte("s3cr3t-hmac"), q.Header.Get(hooks.TimestampHeader), q.Header.Get(hooks.SignatureHeader), q.Body), "signature of %s", q.Body)
		assert.False(t, hooks.Verify([]byte("another key"), q.Header.Get(hooks.TimestampHeader), q.Header.Get(hooks.SignatureHeader), q.Body))
	}
	p := gate.payloads()[0]
	assert.Equal(t, "podinfo", p.Name)
	assert.Equal(t, c.ns, p.Namespace)
	assert.Equal(t, "confirm-rollout", p.Type)
	assert.Equal(t, cn.Status.LastAppliedSpec, p.Revision)
	assert.Equal(t, map[string]string{"app": "podinfo:2.0"}, p.Images)
	assert.Equal(t, map[string]string{"ticket": "CHG-42"}, p.Metadata)
	assert.Equal(t, int32(100), p.PrimaryWeight)
	assert.Equal(t, int32(2), p.Steps)

	gate.answer(http.StatusOK)
	c.waitFor("promotion once approved", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "once approved, the rollout walked every step")
	assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	assert.Contains(t, strings.Join(c.eventsEventually(rollout.ReasonNewRevision, 1), " "), `Approved by confirm-rollout webhook "approve"`)
}

func TestConfirmPromotionHoldsAtWaitingPromotionWhileTheChecksRun(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	gate := newReceiver(t, http.StatusServiceUnavailable)
	c.startController()
	c.create(c.newCanary(withWebhooks(webhook("sign-off", v1alpha1.WebhookConfirmPromotion, gate))))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	held := c.waitFor("WaitingPromotion", rolloutTimeout, phaseIs(v1alpha1.PhaseWaitingPromotion))
	assert.Equal(t, int32(50), held.Status.CanaryWeight, "the canary keeps the last step's traffic")
	assert.Contains(t, readyMessage(held), `Webhook "sign-off" answered 503 Service Unavailable`)
	decisions := len(held.Status.Decisions)
	later := c.waitFor("checks to go on while waiting", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return len(cn.Status.Decisions) >= min(decisions+2, 20) && cn.Status.Decisions[0].Time.After(held.Status.Decisions[0].Time.Time)
	})
	assert.Equal(t, v1alpha1.PhaseWaitingPromotion, later.Status.Phase)
	assert.Equal(t, v1alpha1.VerdictPass, later.Status.Decisions[0].Verdict)
	assert.Equal(t, int32(0), later.Status.FailedChecks, "a refused promotion is not a failed check")
	assert.Equal(t, "podinfo:1.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image, "nothing is promoted while it waits")

	gate.answer(http.StatusNoContent)
	c.waitFor("promotion once approved", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the traffic stayed at the last step until the promotion")
	assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
}

func TestFailingCheckDuringWaitingPromotionRollsBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	gate := newReceiver(t, http.StatusForbidden)
	c.startController()
	c.create(c.newCanary(withWebhooks(webhook("sign-off", v1alpha1.WebhookConfirmPromotion, gate))))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	c.waitFor("WaitingPromotion", rolloutTimeout, phaseIs(v1alpha1.PhaseWaitingPromotion))

	c.setTraffic(failing, healthy)
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	assert.Contains(t, readyMessage(cn), "request-success-rate is 90, outside >= 99")
	assert.Equal(t, "podinfo:1.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
}

func TestConfirmTrafficIncreaseHoldsTheStepWithoutAFailedCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	gate := newReceiver(t, http.StatusForbidden)
	c.startController()
	c.create(c.newCanary(withWebhooks(webhook("more", v1alpha1.WebhookConfirmTrafficIncrease, gate))))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })
	gate.waitRequests(3, 30*time.Second)
	// The third refusal is recorded a moment after the receiver saw the request.
	cn := c.waitFor("the refusal recorded", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return strings.Contains(readyMessage(cn), "the traffic increase waits for approval")
	})
	assert.Equal(t, int32(1), cn.Status.Step, "the step holds while the increase is refused")
	assert.Equal(t, int32(10), cn.Status.CanaryWeight)
	assert.Equal(t, int32(0), cn.Status.FailedChecks, "a refused increase is not a failed check")
	assert.Equal(t, []int32{0, 10}, c.weightsSeen())
	assert.Equal(t, "confirm-traffic-increase", gate.payloads()[0].Type)
	assert.Equal(t, int32(10), gate.payloads()[0].CanaryWeight)

	gate.answer(http.StatusOK)
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "every step once approved")
}

func TestRollbackWebhookRollsBackOnA2xxAnswer(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	gate := newReceiver(t, http.StatusNotFound)
	c.startController()
	c.create(c.newCanary(
		func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = []int32{10, 20, 30, 40, 50} },
		withWebhooks(webhook("kill-switch", v1alpha1.WebhookRollback, gate)),
	))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	c.waitFor("step 2", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 2 })
	require.NotEmpty(t, gate.requests(), "the rollback webhook is asked with the checks")
	gate.answer(http.StatusOK)
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))

	ready := readyCondition(cn)
	require.NotNil(t, ready)
	assert.Equal(t, rollout.ReasonRollbackWebhook, ready.Reason)
	assert.Contains(t, ready.Message, `Webhook "kill-switch" answered 200 OK`)
	assert.Equal(t, int32(0), cn.Status.FailedChecks, "the checks passed; the webhook asked")
	assert.Equal(t, "podinfo:1.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	// The route is written just after the status that asks for it.
	assert.Eventually(t, func() bool {
		seen := c.weightsSeen()
		return len(seen) > 0 && seen[len(seen)-1] == 0
	}, 10*time.Second, 50*time.Millisecond, "all traffic is back on the primary: %v", c.weightsSeen())
}

func TestHangingPreRolloutWebhookCountsFailedChecksAndRollsBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	smoke := newReceiver(t, http.StatusOK)
	smoke.hangUp()
	hook := webhook("smoke", v1alpha1.WebhookPreRollout, smoke)
	hook.Timeout, hook.Retries = "300ms", ptr.To[int32](1)
	c.startController()
	c.create(c.newCanary(withWebhooks(hook)))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	assert.Equal(t, int32(2), cn.Status.FailedChecks)
	assert.Equal(t, []int32{0}, c.weightsSeen(), "the canary never got traffic")
	assert.Contains(t, readyMessage(cn), `Webhook "smoke" did not answer within 300ms (2 attempts)`)
	require.NotEmpty(t, cn.Status.Decisions)
	assert.Equal(t, v1alpha1.JudgeWebhook, cn.Status.Decisions[0].Judge)
	assert.Equal(t, v1alpha1.VerdictFail, cn.Status.Decisions[0].Verdict)
	assert.Len(t, smoke.requests(), 4, "two checks of two attempts each")
	failed := c.eventsEventually(rollout.ReasonWebhookFailed, 1)
	require.NotEmpty(t, failed)
	assert.Contains(t, failed[0], "Check 1 of 2 failed before the canary got traffic")
}

func TestRolloutWebhookRunsWithEveryCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	load := newReceiver(t, http.StatusOK)
	hook := webhook("load", v1alpha1.WebhookRollout, load)
	hook.Format = v1alpha1.WebhookFormatCloudEvents
	c.startController()
	c.create(c.newCanary(withWebhooks(hook)))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	c.waitFor("step 2", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 2 })
	load.answer(http.StatusInternalServerError)
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	assert.Contains(t, readyMessage(cn), `Webhook "load" answered 500 Internal Server Error`)
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "rolled back at the second step")

	q := load.requests()[0]
	assert.Equal(t, "application/cloudevents+json", q.Header.Get("Content-Type"))
	var ce struct {
		SpecVersion string        `json:"specversion"`
		Type        string        `json:"type"`
		Source      string        `json:"source"`
		Subject     string        `json:"subject"`
		Data        hooks.Payload `json:"data"`
	}
	require.NoError(t, json.Unmarshal(q.Body, &ce), "%s", q.Body)
	assert.Equal(t, "1.0", ce.SpecVersion)
	assert.Equal(t, "io.trafficctl.canary.rollout", ce.Type)
	assert.Equal(t, "/apis/trafficctl.io/v1alpha1/namespaces/"+c.ns+"/canaries/podinfo", ce.Source)
	assert.Equal(t, "podinfo", ce.Subject)
	assert.Equal(t, int32(1), ce.Data.Step)
	assert.Equal(t, int32(10), ce.Data.CanaryWeight)
}
