package controllers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
	"github.com/trafficctl/trafficctl/rollout"
)

// runChecks runs every metric of the Canary through its judge, over the current step's window.
// A check that cannot be asked becomes an Error verdict, never a failed check by itself.
func (r *CanaryReconciler) runChecks(ctx context.Context, s rollout.Snapshot) []v1alpha1.Decision {
	cn := s.Canary
	decisions := make([]v1alpha1.Decision, 0, len(cn.Spec.Analysis.Metrics))
	for _, m := range cn.Spec.Analysis.Metrics {
		src, err := r.sourceFor(ctx, s, m)
		if err != nil {
			decisions = append(decisions, v1alpha1.Decision{
				Metric: m.Name, Verdict: v1alpha1.VerdictError,
				Message: fmt.Sprintf("%s could not be evaluated: %v.", m.Name, err),
			})
			continue
		}
		decisions = append(decisions, analysis.Evaluate(ctx, m, src, rollout.CheckParams(cn, m)))
	}
	return decisions
}

// sourceFor builds the Source that answers one check's queries: a built-in's from the Canary's
// metric set, or its MetricTemplate's, sent to the provider the template names.
func (r *CanaryReconciler) sourceFor(ctx context.Context, s rollout.Snapshot, m v1alpha1.CanaryMetric) (*promSource, error) {
	cn := s.Canary
	var mt *v1alpha1.MetricTemplate
	var provider prometheus.Config
	if m.TemplateRef != nil {
		var err error
		if mt, err = r.metricTemplate(ctx, cn, m); err != nil {
			return nil, err
		}
		if provider, err = r.providerConfig(ctx, mt); err != nil {
			return nil, err
		}
	}
	queries, err := rollout.QueriesOf(cn, m, mt)
	if err != nil {
		return nil, err
	}
	if provider.InsecureSkipVerify {
		r.Recorder.Eventf(cn, nil, corev1.EventTypeWarning, rollout.ReasonInsecureMetricProvider, "Analysis",
			"Check %s queries %s without verifying its TLS certificate (insecureSkipVerify).", m.Name, provider.Address)
	}
	q, err := r.Querier(provider)
	if err != nil {
		return nil, err
	}
	stepStart := s.Now
	if st := cn.Status.StepStartedAt; st != nil {
		stepStart = st.Time
	}
	return &promSource{
		querier: q, queries: queries, now: s.Now, stepStart: stepStart,
		lookback: rollout.CheckWindow(s, m), vars: rollout.QueryVarsOf(cn, m),
	}, nil
}

func (r *CanaryReconciler) metricTemplate(ctx context.Context, cn *v1alpha1.Canary, m v1alpha1.CanaryMetric) (*v1alpha1.MetricTemplate, error) {
	if err := r.checkNamespace(cn, "MetricTemplate", m.TemplateRef.Namespace, m.TemplateRef.Name, "templateRef"); err != nil {
		return nil, err
	}
	ns := cmp.Or(m.TemplateRef.Namespace, cn.Namespace)
	mt := &v1alpha1.MetricTemplate{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.TemplateRef.Name}, mt); err != nil {
		return nil, fmt.Errorf("reading MetricTemplate %s/%s: %w", ns, m.TemplateRef.Name, err)
	}
	return mt, nil
}

// promSource answers one check's queries from Prometheus, at the reconcile's clock reading.
type promSource struct {
	querier        MetricQuerier
	queries        rollout.CheckQueries
	now, stepStart time.Time
	// lookback is the window of a rate: the metric's interval, capped at the step's age.
	lookback time.Duration
	vars     [2]analysis.QueryVars
}

var _ analysis.Source = (*promSource)(nil)

// render fills a template for side, with interval as {{ .Interval }} and window as
// {{ .Window }}.
func (p *promSource) render(tpl string, side analysis.Side, interval, window time.Duration) (string, error) {
	vars := p.vars[side]
	vars.Interval, vars.Window = analysis.Window(interval), analysis.Window(window)
	return analysis.Render(tpl, vars)
}

// stepAge is the window since the step began, which counts are taken over.
func (p *promSource) stepAge() time.Duration { return p.now.Sub(p.stepStart) }

func (p *promSource) Value(ctx context.Context, side analysis.Side) (float64, string, error) {
	q, err := p.render(p.queries.Value, side, p.lookback, p.stepAge())
	if err != nil {
		return 0, q, err
	}
	v, err := p.querier.Query(ctx, q, p.now)
	return v, q, err
}

func (p *promSource) Series(ctx context.Context, side analysis.Side, step time.Duration) ([]float64, string, error) {
	q, err := p.render(p.queries.Value, side, step, p.stepAge())
	if err != nil {
		return nil, q, err
	}
	// The first point measures the step's first slice, never the time before it.
	start := p.stepStart.Add(step)
	if start.After(p.now) {
		return nil, q, nil
	}
	v, err := p.querier.QueryRange(ctx, q, start, p.now, step)
	return v, q, err
}

func (p *promSource) Counts(ctx context.Context, side analysis.Side) (analysis.Counts, error) {
	bad, err := p.render(p.queries.Bad, side, p.lookback, p.stepAge())
	c := analysis.Counts{Query: bad}
	if err != nil {
		return c, err
	}
	if c.Bad, err = p.querier.Query(ctx, bad, p.now); err != nil {
		return c, err
	}
	requests, err := p.render(p.queries.Requests, side, p.lookback, p.stepAge())
	if err != nil {
		return c, err
	}
	c.Requests, err = p.querier.Query(ctx, requests, p.now)
	return c, err
}

func (p *promSource) Requests(ctx context.Context, side analysis.Side, sinceStep bool) (float64, error) {
	// The request query counts over {{ .Window }}: the lookback, or the whole step.
	window := p.lookback
	if sinceStep {
		window = p.stepAge()
	}
	q, err := p.render(p.queries.SampleRequests, side, p.lookback, window)
	if err != nil {
		return 0, err
	}
	return p.querier.Query(ctx, q, p.now)
}
