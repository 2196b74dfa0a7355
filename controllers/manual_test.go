package controllers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// slowSteps makes steps that never end by themselves within a test: only a manual request moves
// the rollout on.
func slowSteps(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.Interval = "1h"
	cn.Spec.Analysis.CheckInterval = "2s"
}

func TestManualPromotionSkipsTheRemainingStepsAcrossARestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stop := c.startController()
	c.create(c.newCanary(slowSteps))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 && cn.Status.StepStartedAt != nil })

	// The request is written while no controller runs: it is in the object, not in memory.
	stop()
	c.request(v1alpha1.ActionPromote, "req-1", "alice@example.com")
	c.startController()
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))

	c.eventuallyWeights([]int32{0, 10, 0}, "the 50% step was skipped")
	assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image, "promoted through the primary's own rollout")
	require.NotEmpty(t, cn.Status.ManualActions)
	rec := cn.Status.ManualActions[0]
	assert.Equal(t, v1alpha1.ActionPromote, rec.Action)
	assert.Equal(t, "alice@example.com", rec.User)
	assert.Equal(t, v1alpha1.RequestApplied, rec.Outcome)
	assert.NotNil(t, rec.RequestedAt)
	assert.Equal(t, "req-1", cn.Status.LastRequestID)
	assert.Nil(t, cn.Status.PromotionRequested, "the request ends with the rollout")
	events := c.eventsEventually(rollout.ReasonPromotionRequested, 1)
	require.Len(t, events, 1)
	assert.Contains(t, events[0], "alice@example.com")

	// The same request again is not acted on again.
	c.annotate(c.canary().Annotations[v1alpha1.RequestAnnotation] + " ")
	c.request(v1alpha1.ActionPromote, "req-1", "alice@example.com")
	c.setImage("podinfo:3.0")
	c.waitFor("the next rollout's first step", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1
	})
	cn = c.canary()
	assert.Equal(t, "req-1", cn.Status.LastRequestID)
	assert.Nil(t, cn.Status.PromotionRequested, "an old request does not promote a new revision")
}

func TestManualAbortRollsBackAndRetryRollsOutAgain(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stop := c.startController()
	c.create(c.newCanary(slowSteps))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 && cn.Status.StepStartedAt != nil })

	c.request(v1alpha1.ActionAbort, "abort-1", "bob")
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	ready := readyCondition(cn)
	require.NotNil(t, ready)
	assert.Equal(t, rollout.ReasonAborted, ready.Reason)
	assert.Contains(t, ready.Message, "Aborted by bob at step 1 (10% canary traffic)")
	assert.Equal(t, "podinfo:1.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	c.eventuallyWeights([]int32{0, 10, 0}, "all traffic went back to the primary")
	c.eventuallyReplicas("podinfo", 0, "the canary is scaled down")

	// A second abort has nothing to abort.
	c.request(v1alpha1.ActionAbort, "abort-2", "bob")
	cn = c.waitFor("the second abort to be refused", 30*time.Second, func(cn *v1alpha1.Canary) bool { return cn.Status.LastRequestID == "abort-2" })
	assert.Equal(t, v1alpha1.RequestRefused, cn.Status.ManualActions[0].Outcome)
	assert.Equal(t, v1alpha1.PhaseFailed, cn.Status.Phase)

	// Retry, across a restart, without touching the Deployment.
	stop()
	c.request(v1alpha1.ActionRetry, "retry-1", "bob")
	c.startController()
	cn = c.waitFor("the retried rollout at step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1
	})
	assert.Equal(t, "retry-1", cn.Status.LastRequestID)
	assert.Contains(t, strings.Join(c.eventsEventually(rollout.ReasonNewRevision, 2), " "), "Retrying revision "+cn.Status.LastAppliedSpec+", as bob asked.")
	c.request(v1alpha1.ActionPromote, "promote-1", "bob")
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	actions := c.canary().Status.ManualActions
	var got []string
	for _, a := range actions {
		got = append(got, string(a.Action)+"/"+string(a.Outcome))
	}
	assert.Equal(t, []string{"promote/Applied", "retry/Applied", "abort/Refused", "abort/Applied"}, got, "every request is recorded, newest first")
}

func TestPauseHoldsTheStepAcrossARestartUntilResumed(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stop := c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	c.setImage("podinfo:2.0")
	c.waitFor("step 1", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 1 })

	c.request(v1alpha1.ActionPause, "pause-1", "carol")
	paused := c.waitFor("the pause", 30*time.Second, func(cn *v1alpha1.Canary) bool { return cn.Status.Paused != nil })
	assert.Equal(t, "carol", paused.Status.Paused.User)
	assert.Contains(t, readyMessage(paused), "Paused by carol")
	c.request(v1alpha1.ActionPause, "pause-2", "dave")
	again := c.waitFor("the second pause", 30*time.Second, func(cn *v1alpha1.Canary) bool { return cn.Status.LastRequestID == "pause-2" })
	assert.Equal(t, v1alpha1.RequestIgnored, again.Status.ManualActions[0].Outcome, "pausing a paused Canary changes nothing")
	assert.Equal(t, "carol", again.Status.Paused.User)

	stop()
	c.startController()
	// Three intervals (3s each) pass: no check runs and the step holds.
	assert.Never(t, func() bool {
		cn := c.canary()
		return cn.Status.Step != 1 || len(cn.Status.Decisions) != len(paused.Status.Decisions) || cn.Status.Paused == nil
	}, 9*time.Second, 200*time.Millisecond, "a paused rollout neither checks nor steps")
	held := c.canary()
	assert.Equal(t, int32(1), held.Status.Step, "the step holds while paused")
	assert.Equal(t, int32(10), held.Status.CanaryWeight)
	assert.Equal(t, paused.Status.Decisions, held.Status.Decisions, "no check ran while paused")
	assert.Equal(t, []int32{0, 10}, c.weightsSeen())

	c.request(v1alpha1.ActionResume, "resume-1", "carol")
	cn := c.waitFor("promotion after resuming", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.Nil(t, cn.Status.Paused)
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the rollout went on from step 1")
	resumed := c.eventsEventually(rollout.ReasonResumed, 1)
	require.Len(t, resumed, 1)
	assert.Contains(t, resumed[0], "Resumed by carol")
}

func TestUnreadableRequestIsRefusedWithTheReason(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.annotate(`{"action": "promote"`)
	cn := c.waitFor("the request to be handled", 30*time.Second, func(cn *v1alpha1.Canary) bool { return cn.Status.LastRequestID != "" })
	require.NotEmpty(t, cn.Status.ManualActions)
	assert.Equal(t, v1alpha1.RequestRefused, cn.Status.ManualActions[0].Outcome)
	refused := c.eventsEventually(rollout.ReasonRequestRefused, 1)
	require.Len(t, refused, 1)
	assert.Contains(t, refused[0], "annotation could not be read")

	// A bare action is understood, for kubectl annotate.
	c.annotate("promote")
	cn = c.waitFor("the bare request", 30*time.Second, func(cn *v1alpha1.Canary) bool { return len(cn.Status.ManualActions) == 2 })
	assert.Equal(t, v1alpha1.ActionPromote, cn.Status.ManualActions[0].Action)
	assert.Equal(t, v1alpha1.RequestRefused, cn.Status.ManualActions[0].Outcome, "nothing to promote between rollouts")
	assert.Equal(t, v1alpha1.PhaseInitialized, cn.Status.Phase)
}
