package controllers

import (
	"context"
	"fmt"
	"strings"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Tenancy: a Canary acts within its namespace. The MetricTemplates and AlertProviders it names
// (and so the Secrets they name) are its namespace's unless the controller runs with
// --allow-cross-namespace-refs, and the addresses it has the controller call (webhooks, metric and
// alert providers) pass the controller's URL policy (providers/netguard).

// refusedReference is a reference a Canary may not make: the reason and what to do.
type refusedReference struct {
	reason string
	msg    string
}

func (e refusedReference) Error() string { return e.msg }

// checkReferences refuses what a Canary may not name or call before anything is done for it: a
// MetricTemplate of another namespace (unless allowed), a webhook or MetricTemplate address the
// URL policy refuses. AlertProviders are checked as their alerts are resolved, and reported in
// AlertsReady, since the rollout goes on without its alerts.
func (r *CanaryReconciler) checkReferences(ctx context.Context, cn *v1alpha1.Canary) error {
	for i, m := range cn.Spec.Analysis.Metrics {
		if m.TemplateRef == nil {
			continue
		}
		if err := r.checkNamespace(cn, "MetricTemplate", m.TemplateRef.Namespace, m.TemplateRef.Name, fmt.Sprintf("spec.analysis.metrics[%d].templateRef", i)); err != nil {
			return err
		}
		mt, err := r.metricTemplate(ctx, cn, m)
		if err != nil {
			continue // the check reports it when it runs
		}
		if a := mt.Spec.Provider.Address; a != "" {
			if err := r.URLPolicy.CheckURL(a); err != nil {
				return refusedReference{rollout.ReasonURLRefused, fmt.Sprintf("MetricTemplate %s/%s, which metric %q names, has a provider address the controller does not call: %v", mt.Namespace, mt.Name, m.Name, err)}
			}
		}
	}
	for i, h := range cn.Spec.Analysis.Webhooks {
		if err := r.URLPolicy.CheckURL(h.URL); err != nil {
			return refusedReference{rollout.ReasonURLRefused, fmt.Sprintf("Webhook %q (spec.analysis.webhooks[%d].url) has an address the controller does not call: %v", h.Name, i, err)}
		}
	}
	return nil
}

// checkNamespace refuses a reference to another namespace unless the controller allows them.
func (r *CanaryReconciler) checkNamespace(cn *v1alpha1.Canary, kind, namespace, name, field string) error {
	if namespace == "" || namespace == cn.Namespace || r.AllowCrossNamespaceRefs {
		return nil
	}
	return refusedReference{rollout.ReasonCrossNamespaceRef, fmt.Sprintf(
		"%s names %s %s/%s in another namespace; the controller refuses references across namespaces, so that a Canary cannot use another team's templates or Secrets. Copy it into namespace %s, or run the controller with --allow-cross-namespace-refs",
		field, kind, namespace, name, cn.Namespace)}
}

// describeRefused is the Stalled message of a refused reference.
func describeRefused(err error) string {
	return strings.TrimSuffix(err.Error(), ".") + "."
}
