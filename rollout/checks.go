package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// ChecksDue reports whether the current step's checks should run in this reconcile: the
// rollout is progressing on the revision it started with, the route accepted the step's
// weights at least one check interval ago, and the last check is a check interval old.
func ChecksDue(s Snapshot) bool {
	st := s.Canary.Status
	if !Analysing(st.Phase) {
		return false
	}
	if st.Step < 1 || st.StepStartedAt == nil || st.Paused != nil || st.PromotionRequested != nil || s.Request != nil {
		// A pending manual request is handled first; the checks run at the next look.
		return false
	}
	if s.Target.Revision != st.LastAppliedSpec {
		return false
	}
	every := s.Canary.CheckInterval()
	if s.Now.Before(st.StepStartedAt.Add(every)) {
		return false
	}
	return st.LastCheckedAt == nil || st.LastCheckedAt.Before(st.StepStartedAt) ||
		!s.Now.Before(st.LastCheckedAt.Add(every))
}

// CarriedEvidence is what a sequential check gathered in the rollout's completed steps.
func CarriedEvidence(st *v1alpha1.CanaryStatus, metric string) *v1alpha1.Evidence {
	for i := range st.Evidence {
		if st.Evidence[i].Metric == metric {
			return &st.Evidence[i]
		}
	}
	return nil
}

// CheckParams are what a check of metric m needs beyond its queries: the Canary's minRequests
// and the evidence the check carried from completed steps.
func CheckParams(cn *v1alpha1.Canary, m v1alpha1.CanaryMetric) analysis.Params {
	p := analysis.Params{Carried: CarriedEvidence(&cn.Status, m.Name)}
	if cn.Spec.Analysis.MinRequests != nil {
		p.MinRequests = *cn.Spec.Analysis.MinRequests
	}
	return p
}

// CheckWindow is how far back the current step's checks look: the metric's interval (the
// analysis interval when unset), never reaching back before the step's weights took effect.
func CheckWindow(s Snapshot, m v1alpha1.CanaryMetric) time.Duration {
	window := s.Canary.AnalysisInterval()
	if d, err := time.ParseDuration(m.Interval); err == nil && d > 0 {
		window = d
	}
	if st := s.Canary.Status.StepStartedAt; st != nil {
		if since := s.Now.Sub(st.Time); since < window {
			window = since
		}
	}
	return window
}

// CheckQueries are the templates behind one check: its value, its bad outcomes, and the
// requests they are counted against.
type CheckQueries struct {
	Value, Bad, Requests string
	// SampleRequests counts requests for the sample size and minRequests.
	SampleRequests string
}

// QueriesOf are the templates of metric m's check: a built-in's from the Canary's metric set, or
// the query of mt, the MetricTemplate m names (nil for a built-in), beside the set's request
// count.
func QueriesOf(cn *v1alpha1.Canary, m v1alpha1.CanaryMetric, mt *v1alpha1.MetricTemplate) (CheckQueries, error) {
	set := cn.MetricSetOf()
	requests := analysis.RequestsQuery(set)
	if m.TemplateRef != nil {
		if mt == nil {
			return CheckQueries{}, fmt.Errorf("%q names MetricTemplate %s, which is needed for its query", m.Name, m.TemplateRef.Name)
		}
		return CheckQueries{Value: mt.Spec.Query, Bad: mt.Spec.Query, Requests: requests, SampleRequests: requests}, nil
	}
	var slowerThan time.Duration
	if m.Sequential != nil && m.Sequential.SlowerThan != "" {
		// CRD validation guarantees it parses.
		slowerThan, _ = time.ParseDuration(m.Sequential.SlowerThan)
	}
	b, ok := analysis.Builtin(set, m.Name, slowerThan)
	if !ok {
		return CheckQueries{}, fmt.Errorf("%q is not a built-in metric and names no templateRef", m.Name)
	}
	return CheckQueries{Value: b.Value, Bad: b.Bad, Requests: b.Requests, SampleRequests: requests}, nil
}

// QueryVarsOf are the variables metric m's queries are rendered with for each side; the windows
// are filled in per query.
func QueryVarsOf(cn *v1alpha1.Canary, m v1alpha1.CanaryMetric) [2]analysis.QueryVars {
	base := analysis.QueryVars{
		Name: cn.Name, Namespace: cn.Namespace, Service: cn.ApexServiceName(),
		Primary: cn.PrimaryDeploymentName(), Canary: cn.Spec.TargetRef.Name, Variables: m.TemplateVariables,
	}
	canary, primary := base, base
	canary.Target, canary.TargetService = cn.Spec.TargetRef.Name, cn.CanaryServiceName()
	primary.Target, primary.TargetService = cn.PrimaryDeploymentName(), cn.PrimaryServiceName()
	return [2]analysis.QueryVars{analysis.SideCanary: canary, analysis.SidePrimary: primary}
}

// ValidateQueries renders every query of metric m's check for both sides, as a check would, and
// parses each as PromQL: what is wrong with a check's queries, found without running it. mt is
// the MetricTemplate m names, nil for a built-in.
func ValidateQueries(cn *v1alpha1.Canary, m v1alpha1.CanaryMetric, mt *v1alpha1.MetricTemplate) error {
	queries, err := QueriesOf(cn, m, mt)
	if err != nil {
		return err
	}
	for _, vars := range QueryVarsOf(cn, m) {
		vars.Interval, vars.Window = analysis.Window(cn.AnalysisInterval()), analysis.Window(cn.AnalysisInterval())
		for _, tpl := range slices.Compact([]string{queries.Value, queries.Bad, queries.Requests, queries.SampleRequests}) {
			if tpl == "" {
				continue // this judge has no such query
			}
			q, err := analysis.Render(tpl, vars)
			if err != nil {
				return err
			}
			if err := analysis.ParseQuery(q); err != nil {
				return err
			}
		}
	}
	return nil
}
