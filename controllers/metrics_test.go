package controllers_test

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// metricValue reads one series of the controller's registry: a gauge's or counter's value, or a
// histogram's sample count; ok false when the series does not exist.
func metricValue(t *testing.T, name string, labels map[string]string) (v float64, ok bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, want := range labels {
				if got[k] != want {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestMetricsTellWhatEachCanaryAndRolloutDid(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	self := map[string]string{"namespace": c.ns, "name": "podinfo"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{"namespace": c.ns, "name": "podinfo"}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	c.setImage("podinfo:2.0")
	c.waitFor("step 2", rolloutTimeout, func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 2 })
	require.Eventually(t, func() bool { v, _ := metricValue(t, "trafficctl_canary_weight", self); return v == 50 }, 10*time.Second, 50*time.Millisecond, "the weight gauge follows the route")
	progressing, _ := metricValue(t, "trafficctl_canary_phase", with(map[string]string{"phase": "Progressing"}))
	assert.Equal(t, 1.0, progressing)
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))

	c.setTraffic(failing, healthy)
	c.setImage("podinfo:3.0")
	c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	require.Eventually(t, func() bool {
		v, ok := metricValue(t, "trafficctl_rollouts_total", with(map[string]string{"result": "Failed", "reason": "CheckFailed"}))
		return ok && v == 1
	}, 10*time.Second, 50*time.Millisecond, "the rollback is counted with its reason")
	promoted, ok := metricValue(t, "trafficctl_rollouts_total", with(map[string]string{"result": "Succeeded", "reason": "Succeeded"}))
	assert.True(t, ok)
	assert.Equal(t, 1.0, promoted, "the promotion is counted once")
	failed, _ := metricValue(t, "trafficctl_canary_phase", with(map[string]string{"phase": "Failed"}))
	assert.Equal(t, 1.0, failed)
	progressing, _ = metricValue(t, "trafficctl_canary_phase", with(map[string]string{"phase": "Progressing"}))
	assert.Zero(t, progressing)
	weight, _ := metricValue(t, "trafficctl_canary_weight", self)
	assert.Zero(t, weight, "all traffic is back on the primary")
	checks, _ := metricValue(t, "trafficctl_canary_failed_checks", self)
	assert.Equal(t, 2.0, checks)
	value, ok := metricValue(t, "trafficctl_canary_check_value", with(map[string]string{"metric": "request-success-rate"}))
	assert.True(t, ok)
	assert.Equal(t, 90.0, value)
	durations, ok := metricValue(t, "trafficctl_rollout_duration_seconds", map[string]string{"result": "Failed"})
	assert.True(t, ok)
	assert.GreaterOrEqual(t, durations, 1.0, "whole rollouts are timed")
	_, ok = metricValue(t, "controller_runtime_reconcile_time_seconds", map[string]string{"controller": "canary"})
	assert.True(t, ok, "controller-runtime's reconcile latency is served beside them")
}
