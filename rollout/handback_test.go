package rollout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

func TestPlanHandBack(t *testing.T) {
	deleted := func(mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
		return planCanary(append([]func(*v1alpha1.Canary){withStatus(v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseSucceeded, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1"})}, mods...)...)
	}
	terminating := func(since time.Duration, handedBack *time.Duration) func(*v1alpha1.Canary) {
		return func(c *v1alpha1.Canary) {
			c.Status.Phase, c.Status.LastTransitionTime = v1alpha1.PhaseTerminating, at(since)
			if handedBack != nil {
				c.Status.HandedBackAt = at(*handedBack)
			}
		}
	}
	atZero := Workload{Found: true, Ready: true, Replicas: 0, Revision: "rev1"}
	up := Workload{Found: true, Ready: true, Replicas: 3, Revision: "rev1"}
	tests := []struct {
		name  string
		snap  HandBackSnapshot
		check func(t *testing.T, p HandBackPlan)
	}{
		{
			name: "orphan lets the Canary go at once, unowning everything",
			snap: HandBackSnapshot{Canary: deleted(func(c *v1alpha1.Canary) { c.Spec.DeletionPolicy = v1alpha1.DeletionOrphan }), Target: atZero, Primary: readyPrimary},
			check: func(t *testing.T, p HandBackPlan) {
				assert.True(t, p.Orphan)
				assert.True(t, p.Done)
				assert.Nil(t, p.ScaleTarget, "nothing is scaled: the primary goes on serving")
			},
		},
		{
			name:  "a target that is gone has nothing to be handed back to",
			snap:  HandBackSnapshot{Canary: deleted(), Primary: readyPrimary},
			check: func(t *testing.T, p HandBackPlan) { assert.True(t, p.Done) },
		},
		{
			name:  "a target going with its namespace neither",
			snap:  HandBackSnapshot{Canary: deleted(), Target: atZero, TargetGoing: true, Primary: readyPrimary},
			check: func(t *testing.T, p HandBackPlan) { assert.True(t, p.Done) },
		},
		{
			name: "first the target is scaled up to the primary's replicas, nothing moves yet",
			snap: HandBackSnapshot{Canary: deleted(), Target: atZero, Primary: readyPrimary, Now: t0},
			check: func(t *testing.T, p HandBackPlan) {
				assert.Equal(t, v1alpha1.PhaseTerminating, p.Status.Phase)
				assert.Equal(t, ptr.To[int32](3), p.ScaleTarget)
				assert.False(t, p.HandBack, "no traffic moves to pods that are not there")
				assert.False(t, p.Done)
				assert.Equal(t, ReasonHandingBack, p.Reason)
				assert.Contains(t, p.Message, "scaling Deployment podinfo back up to 3 replicas")
			},
		},
		{
			name: "traffic waits for the target to be available",
			snap: HandBackSnapshot{Canary: deleted(terminating(0, nil)), Target: Workload{Found: true, Replicas: 3, Message: "1 of 3 available"}, Primary: readyPrimary, Now: t0.Add(5 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) {
				assert.Nil(t, p.ScaleTarget)
				assert.False(t, p.HandBack)
				assert.Contains(t, p.Message, "1 of 3 available")
				assert.False(t, p.Stalled)
			},
		},
		{
			name: "a target that never becomes available tells the way out past the deadline",
			snap: HandBackSnapshot{Canary: deleted(terminating(0, nil)), Target: Workload{Found: true, Replicas: 3, Message: "0 of 3 available"}, Primary: readyPrimary, Now: t0.Add(61 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) {
				assert.True(t, p.Stalled)
				assert.False(t, p.Done, "the primary keeps serving: traffic is never dropped for bookkeeping")
				assert.Contains(t, p.Message, "set spec.deletionPolicy to Orphan")
			},
		},
		{
			name: "the revision that was rolled back is not handed the app",
			snap: HandBackSnapshot{Canary: deleted(func(c *v1alpha1.Canary) {
				c.Status.LastAppliedSpec, c.Status.LastPromotedSpec = "rev2", "rev1"
				c.Status.History = []v1alpha1.RolloutRecord{{Revision: "rev2", Result: v1alpha1.PhaseFailed}}
			}, terminating(0, nil)), Target: Workload{Found: true, Ready: true, Replicas: 3, Revision: "rev2"}, Primary: readyPrimary, Now: t0.Add(5 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) {
				assert.False(t, p.HandBack, "the primary keeps serving")
				assert.Nil(t, p.ScaleTarget)
				assert.False(t, p.Done)
				assert.Equal(t, ReasonHandBackRefused, p.Reason)
				assert.Contains(t, p.Message, "Roll Deployment podinfo back to the promoted revision rev1")
			},
		},
		{
			name: "an available target gets the traffic",
			snap: HandBackSnapshot{Canary: deleted(terminating(0, nil)), Target: up, Primary: readyPrimary, Now: t0.Add(5 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) {
				assert.True(t, p.HandBack)
				assert.False(t, p.Done)
				assert.Nil(t, p.Status.HandedBackAt)
			},
		},
		{
			name: "a user's HPA may have scaled the target: it is never scaled down",
			snap: HandBackSnapshot{Canary: deleted(terminating(0, nil)), Target: Workload{Found: true, Ready: true, Replicas: 7}, Primary: readyPrimary, Now: t0.Add(5 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) {
				assert.Nil(t, p.ScaleTarget)
				assert.True(t, p.HandBack)
			},
		},
		{
			name: "once handed back, the primary stays up to drain",
			snap: HandBackSnapshot{Canary: deleted(terminating(0, nil)), Target: up, Primary: readyPrimary, ApexOnTarget: true, RouteHandedBack: true, Now: t0.Add(6 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) {
				assert.Equal(t, t0.Add(6*time.Second), p.Status.HandedBackAt.Time)
				assert.Equal(t, handBackDrain, p.RequeueAfter)
				assert.False(t, p.Done)
			},
		},
		{
			name:  "after the drain the Canary goes",
			snap:  HandBackSnapshot{Canary: deleted(terminating(0, ptr.To(6*time.Second))), Target: up, Primary: readyPrimary, ApexOnTarget: true, RouteHandedBack: true, Now: t0.Add(16 * time.Second)},
			check: func(t *testing.T, p HandBackPlan) { assert.True(t, p.Done) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, PlanHandBack(tt.snap)) })
	}
}
