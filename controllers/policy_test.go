package controllers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// absentMetric is a check whose query the real Prometheus answers with no series at all.
func (c *cluster) absentMetric() v1alpha1.CanaryMetric {
	c.create(&v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "absent", Namespace: c.ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus},
			Query:    `sum(rate(no_such_series_total{namespace="{{ .Namespace }}"}[{{ .Interval }}]))`,
		},
	})
	return v1alpha1.CanaryMetric{Name: "absent", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "absent"}, ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(1.0)}}
}

// unreachableMetric is a check whose Prometheus refuses connections.
func (c *cluster) unreachableMetric() v1alpha1.CanaryMetric {
	c.create(&v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "unreachable", Namespace: c.ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: v1alpha1.MetricProviderPrometheus, Address: "http://127.0.0.1:1"},
			Query:    `sum(rate(http_requests_total{namespace="{{ .Namespace }}"}[{{ .Interval }}]))`,
		},
	})
	return v1alpha1.CanaryMetric{Name: "rps", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "unreachable"}, ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(1.0)}}
}

func TestNoDataPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policy   v1alpha1.NoDataPolicy
		deadline int32
		phase    v1alpha1.CanaryPhase
		reason   string
		message  string
	}{
		{"fail counts every round without data as a failed check", v1alpha1.NoDataFail, 60, v1alpha1.PhaseFailed, rollout.ReasonCheckFailed, "It counts as a failed check (onNoData: fail)."},
		{"pass lets the rollout through", v1alpha1.NoDataPass, 60, v1alpha1.PhaseSucceeded, rollout.ReasonSucceeded, ""},
		{"wait holds until the progress deadline, then rolls back", v1alpha1.NoDataWait, 8, v1alpha1.PhaseFailed, rollout.ReasonNoData, "no data within the progress deadline of 8s"},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.createTarget("podinfo:1.0")
			c.startController()
			metric := c.absentMetric()
			c.create(c.newCanary(func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric}
				cn.Spec.Analysis.OnNoData = tt.policy
				cn.Spec.ProgressDeadlineSeconds = ptr.To(tt.deadline)
			}))
			c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

			c.setImage("podinfo:2.0")
			cn := c.waitFor(string(tt.phase), rolloutTimeout, func(cn *v1alpha1.Canary) bool {
				return cn.Status.Phase == v1alpha1.PhaseSucceeded || cn.Status.Phase == v1alpha1.PhaseFailed
			})
			require.Equal(t, tt.phase, cn.Status.Phase, readyMessage(cn))
			ready := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReady)
			require.NotNil(t, ready)
			assert.Equal(t, tt.reason, ready.Reason, ready.Message)
			if tt.message != "" {
				assert.Contains(t, ready.Message, tt.message)
			}
			require.NotEmpty(t, cn.Status.Decisions)
			for _, d := range cn.Status.Decisions {
				assert.Equal(t, v1alpha1.VerdictNoData, d.Verdict, "the decision records what Prometheus said: %s", d.Message)
			}
			switch tt.policy {
			case v1alpha1.NoDataFail:
				assert.Equal(t, int32(2), cn.Status.FailedChecks)
			case v1alpha1.NoDataPass:
				assert.True(t, strings.HasSuffix(cn.Status.Decisions[0].Message, "It counts as a pass (onNoData: pass)."), cn.Status.Decisions[0].Message)
			case v1alpha1.NoDataWait:
				assert.Zero(t, cn.Status.FailedChecks, "waiting never counted a failure")
			}
		})
	}
}

func TestProviderErrorsFailWhenTheCanarySaysSo(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	c.startController()
	metric := c.unreachableMetric()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric}
		cn.Spec.Analysis.OnError = v1alpha1.ErrorFail
	}))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	assert.Equal(t, int32(2), cn.Status.FailedChecks)
	assert.Contains(t, readyMessage(cn), "connection refused")
	assert.Contains(t, readyMessage(cn), "(onError: fail)")
	assert.Equal(t, v1alpha1.VerdictError, cn.Status.Decisions[0].Verdict)
}

func TestConsecutiveFailuresRollBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(failing, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Threshold = 10
		cn.Spec.Analysis.ConsecutiveThreshold = ptr.To[int32](2)
	}))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	assert.Equal(t, int32(2), cn.Status.FailedChecks, "two in a row, well under the threshold of 10")
	assert.Contains(t, readyMessage(cn), "2 checks in a row failed (consecutiveThreshold 2)")
}
