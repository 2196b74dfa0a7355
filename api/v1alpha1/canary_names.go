package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// The names of the objects a Canary manages are derived, never stored, so every part of the
// controller and the CLI agrees on them.

// ApexServiceName is the Service clients call: service.name, or the target's name.
func (c *Canary) ApexServiceName() string {
	if c.Spec.Service.Name != "" {
		return c.Spec.Service.Name
	}
	return c.Spec.TargetRef.Name
}

// PrimaryServiceName is the Service that selects the primary's pods.
func (c *Canary) PrimaryServiceName() string { return c.ApexServiceName() + "-primary" }

// CanaryServiceName is the Service that selects the canary's pods.
func (c *Canary) CanaryServiceName() string { return c.ApexServiceName() + "-canary" }

// PrimaryDeploymentName is the Deployment that runs the last promoted revision.
func (c *Canary) PrimaryDeploymentName() string { return c.Spec.TargetRef.Name + "-primary" }

// PrimaryAutoscalerName is the copy of the user's HorizontalPodAutoscaler that scales the
// primary; empty without autoscalerRef.
func (c *Canary) PrimaryAutoscalerName() string {
	if c.Spec.AutoscalerRef == nil {
		return ""
	}
	return c.Spec.AutoscalerRef.Name + "-primary"
}

// HTTPRouteName is the HTTPRoute carrying the split: the user's when httpRouteRef is set,
// otherwise the one trafficctl creates under the apex Service's name.
func (c *Canary) HTTPRouteName() string {
	if c.Spec.Service.HTTPRouteRef != nil {
		return c.Spec.Service.HTTPRouteRef.Name
	}
	return c.ApexServiceName()
}

// VirtualServiceName is the VirtualService carrying the split (provider istio): the user's when
// virtualServiceRef is set, otherwise the one trafficctl creates under the apex Service's name.
func (c *Canary) VirtualServiceName() string {
	if c.Spec.Service.VirtualServiceRef != nil {
		return c.Spec.Service.VirtualServiceRef.Name
	}
	return c.ApexServiceName()
}

// RouteKind and RouteName name the object that carries the split, for messages and watches.
func (c *Canary) RouteKind() string {
	switch c.Spec.Provider {
	case ProviderIstio:
		return "VirtualService"
	case ProviderKubernetes:
		return "Service"
	default:
		return "HTTPRoute"
	}
}

// RouteName is the name of the object RouteKind names.
func (c *Canary) RouteName() string {
	switch c.Spec.Provider {
	case ProviderIstio:
		return c.VirtualServiceName()
	case ProviderKubernetes:
		return c.ApexServiceName()
	default:
		return c.HTTPRouteName()
	}
}

// UserOwnsRoute reports whether the route belongs to the user, who keeps everything in it
// but the apex rules' backends.
func (c *Canary) UserOwnsRoute() bool {
	return c.Spec.Service.HTTPRouteRef != nil || c.Spec.Service.VirtualServiceRef != nil
}

// ServiceTargetPort is the pods' port: service.targetPort, or service.port.
func (c *Canary) ServiceTargetPort() intstr.IntOrString {
	if c.Spec.Service.TargetPort != nil {
		return *c.Spec.Service.TargetPort
	}
	return intstr.FromInt32(c.Spec.Service.Port)
}

// ServicePortName is the name of the Services' port.
func (c *Canary) ServicePortName() string {
	if c.Spec.Service.PortName != "" {
		return c.Spec.Service.PortName
	}
	return "http"
}

// ProgressDeadline is how long a rollout may wait on the canary or the route.
func (c *Canary) ProgressDeadline() time.Duration {
	if c.Spec.ProgressDeadlineSeconds != nil {
		return time.Duration(*c.Spec.ProgressDeadlineSeconds) * time.Second
	}
	return 600 * time.Second
}

// AnalysisInterval is the time between checks; CRD validation guarantees it parses.
func (c *Canary) AnalysisInterval() time.Duration {
	if d, err := time.ParseDuration(c.Spec.Analysis.Interval); err == nil && d > 0 {
		return d
	}
	return time.Minute
}

// FailureThreshold is how many failed checks roll back.
func (c *Canary) FailureThreshold() int32 {
	if c.Spec.Analysis.Threshold > 0 {
		return c.Spec.Analysis.Threshold
	}
	return 5
}

// CheckInterval is how often the checks run within a step: analysis.checkInterval, or the
// analysis interval when unset (or longer, which would leave a step's end unchecked).
func (c *Canary) CheckInterval() time.Duration {
	interval := c.AnalysisInterval()
	if d, err := time.ParseDuration(c.Spec.Analysis.CheckInterval); err == nil && d > 0 && d < interval {
		return d
	}
	return interval
}

// UnavailableGrace is how long a step's checks may fail to be evaluated before its traffic goes
// back to the primary: analysis.unavailableGrace, or two check intervals.
func (c *Canary) UnavailableGrace() time.Duration {
	if d, err := time.ParseDuration(c.Spec.Analysis.UnavailableGrace); err == nil && d > 0 {
		return d
	}
	return 2 * c.CheckInterval()
}

// DeletionPolicyOf is what deleting the Canary does: spec.deletionPolicy, Revert when unset.
func (c *Canary) DeletionPolicyOf() DeletionPolicy {
	if c.Spec.DeletionPolicy == "" {
		return DeletionRevert
	}
	return c.Spec.DeletionPolicy
}

// MetricSetOf is the metric set behind the built-in checks: the one the Canary names, or its
// provider's (istio for istio, app for the rest).
func (c *Canary) MetricSetOf() MetricSet {
	switch {
	case c.Spec.Analysis.MetricSet != "":
		return c.Spec.Analysis.MetricSet
	case c.Spec.Provider == ProviderIstio:
		return MetricSetIstio
	default:
		return MetricSetApp
	}
}

// WebhooksOf lists the Canary's webhooks of one type, in the order written.
func (c *Canary) WebhooksOf(t WebhookType) []CanaryWebhook {
	var out []CanaryWebhook
	for _, w := range c.Spec.Analysis.Webhooks {
		wt := w.Type
		if wt == "" {
			wt = WebhookRollout
		}
		if wt == t {
			out = append(out, w)
		}
	}
	return out
}
