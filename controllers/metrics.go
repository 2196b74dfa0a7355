package controllers

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// The controller's own metrics, on controller-runtime's registry beside its reconcile latency
// (controller_runtime_reconcile_time_seconds) and queue depth (workqueue_depth): what each
// Canary is doing now, and how rollouts have ended.
var (
	canaryPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trafficctl_canary_phase",
		Help: "1 for the phase each Canary is in, 0 for the others.",
	}, []string{"namespace", "name", "phase"})
	canaryWeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trafficctl_canary_weight",
		Help: "The canary's share of traffic, in percent, as last written to the route.",
	}, []string{"namespace", "name"})
	canaryStep = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trafficctl_canary_step",
		Help: "The current step of each Canary's rollout; 0 between rollouts.",
	}, []string{"namespace", "name"})
	canaryFailedChecks = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trafficctl_canary_failed_checks",
		Help: "Failed checks of each Canary's current rollout.",
	}, []string{"namespace", "name"})
	canaryCheckValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trafficctl_canary_check_value",
		Help: "The latest value each check of a Canary measured for the canary.",
	}, []string{"namespace", "name", "metric"})
	rolloutDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trafficctl_rollout_duration_seconds",
		Help:    "How long whole rollouts took, from their start to their promotion or rollback, by result.",
		Buckets: []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400},
	}, []string{"result"})
	reconcileLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trafficctl_reconcile_lateness_seconds",
		Help:    "How long a Canary waited in the workqueue after it was due (its requeue time ran out, or a watch event woke it); retries after an error are not counted.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300},
	})
	rolloutsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trafficctl_rollouts_total",
		Help: "Rollouts that ended, by result (Succeeded is a promotion, Failed a rollback) and reason.",
	}, []string{"namespace", "name", "result", "reason"})
)

var registerMetrics sync.Once

// RegisterMetrics adds the controller's metrics to controller-runtime's registry, once however
// many managers a process starts.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		metrics.Registry.MustRegister(canaryPhase, canaryWeight, canaryStep, canaryFailedChecks, canaryCheckValue, rolloutDuration, rolloutsTotal, reconcileLateness)
	})
}

// recordMetrics records a Canary's state after a reconcile, and the rollout that ended in it.
func recordMetrics(cn *v1alpha1.Canary, before, after *v1alpha1.CanaryStatus) {
	ns, name := cn.Namespace, cn.Name
	for _, p := range rollout.Phases {
		v := 0.0
		if after.Phase == p {
			v = 1
		}
		canaryPhase.WithLabelValues(ns, name, string(p)).Set(v)
	}
	canaryWeight.WithLabelValues(ns, name).Set(float64(after.CanaryWeight))
	canaryStep.WithLabelValues(ns, name).Set(float64(after.Step))
	canaryFailedChecks.WithLabelValues(ns, name).Set(float64(after.FailedChecks))
	seen := map[string]bool{}
	for _, d := range after.Decisions {
		if seen[d.Metric] {
			continue
		}
		seen[d.Metric] = true
		if v, err := strconv.ParseFloat(d.Value, 64); err == nil {
			canaryCheckValue.WithLabelValues(ns, name, d.Metric).Set(v)
		}
	}
	if len(after.History) == 0 || (len(before.History) > 0 && before.History[0].FinishedAt.Equal(&after.History[0].FinishedAt)) {
		return
	}
	ended := after.History[0]
	rolloutsTotal.WithLabelValues(ns, name, string(ended.Result), ended.Reason).Inc()
	if ended.StartedAt != nil {
		rolloutDuration.WithLabelValues(string(ended.Result)).Observe(ended.FinishedAt.Sub(ended.StartedAt.Time).Seconds())
	}
}

// forget drops the series of a deleted Canary.
func forget(cn *v1alpha1.Canary) {
	labels := prometheus.Labels{"namespace": cn.Namespace, "name": cn.Name}
	canaryPhase.DeletePartialMatch(labels)
	canaryWeight.DeletePartialMatch(labels)
	canaryStep.DeletePartialMatch(labels)
	canaryFailedChecks.DeletePartialMatch(labels)
	canaryCheckValue.DeletePartialMatch(labels)
}
