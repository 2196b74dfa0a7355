package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

func (c *cluster) createHPA(target string) {
	c.t.Helper()
	c.create(&autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: c.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 5,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
			}}},
		},
	})
}

func withAutoscaler(cn *v1alpha1.Canary) {
	cn.Spec.AutoscalerRef = &v1alpha1.AutoscalerReference{Name: "podinfo"}
}

func (c *cluster) hpa(name string) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	h := &autoscalingv2.HorizontalPodAutoscaler{}
	return h, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, h)
}

func TestPrimaryAutoscalerFollowsTheUsers(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.createHPA("podinfo")
	c.startController()
	c.create(c.newCanary(withAutoscaler))
	cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	primary, err := c.hpa("podinfo-primary")
	require.NoError(t, err)
	user, err := c.hpa("podinfo")
	require.NoError(t, err)
	assert.Equal(t, "podinfo-primary", primary.Spec.ScaleTargetRef.Name, "the copy scales the primary")
	assert.Equal(t, "podinfo", user.Spec.ScaleTargetRef.Name, "the user's keeps scaling the target")
	assert.Equal(t, user.Spec.Metrics, primary.Spec.Metrics)
	assert.Equal(t, user.Spec.MinReplicas, primary.Spec.MinReplicas)
	assert.True(t, metav1.IsControlledBy(primary, cn))

	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		h, err := c.hpa("podinfo")
		if err != nil {
			return err
		}
		h.Spec.MaxReplicas = 9
		return k8s.Update(context.Background(), h)
	}))
	assert.Eventually(t, func() bool {
		h, err := c.hpa("podinfo-primary")
		return err == nil && h.Spec.MaxReplicas == 9
	}, 20*time.Second, 100*time.Millisecond, "a change to the user's autoscaler reaches the primary's")
}

func TestMissingAutoscalerIsReported(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(withAutoscaler))

	cn := c.waitFor("AutoscalerNotFound", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		r := readyCondition(cn)
		return r != nil && r.Reason == rollout.ReasonAutoscalerNotFound
	})
	assert.Contains(t, readyCondition(cn).Message, "HorizontalPodAutoscaler "+c.ns+"/podinfo, the Canary's autoscalerRef, does not exist")

	c.createHPA("podinfo")
	c.waitFor("initialization once it exists", 60*time.Second, phaseIs(v1alpha1.PhaseInitialized))
}

func TestAutoscalerOfAnotherDeploymentStalls(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.createHPA("someone-else")
	c.startController()
	c.create(c.newCanary(withAutoscaler))

	cn := c.waitFor("Stalled", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled)
	})
	stalled := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionStalled)
	assert.Equal(t, rollout.ReasonInvalidAutoscaler, stalled.Reason)
	assert.Contains(t, stalled.Message, "scales Deployment someone-else, not the Canary's target Deployment podinfo")
	_, err := c.hpa("podinfo-primary")
	assert.Error(t, err, "no copy of an autoscaler that scales something else")
}
