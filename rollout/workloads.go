package rollout

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// PrimaryLabels rewrites the target's selector labels so the primary's pods are its own:
// app=podinfo becomes app=podinfo-primary.
func PrimaryLabels(selector map[string]string) map[string]string {
	out := make(map[string]string, len(selector))
	for k, v := range selector {
		out[k] = v + "-primary"
	}
	return out
}

// PrimaryTemplate is the target's pod template under the primary's labels, with its ConfigMaps and
// Secrets renamed to the primary's copies (copies; nil keeps them all).
func PrimaryTemplate(target *appsv1.Deployment, copies map[ConfigRef]string) corev1.PodTemplateSpec {
	tpl := *target.Spec.Template.DeepCopy()
	RenameConfigRefs(&tpl.Spec, copies)
	tpl.Labels = maps.Clone(tpl.Labels)
	if tpl.Labels == nil {
		tpl.Labels = map[string]string{}
	}
	maps.Copy(tpl.Labels, PrimaryLabels(target.Spec.Selector.MatchLabels))
	return tpl
}

// ServiceSelector is one Service a Canary needs, by name, and the pods it selects.
type ServiceSelector struct {
	Name     string
	Selector map[string]string
}

// Services are the Services the route splits between, and the apex Service clients call: the
// apex and primary Services select the primary's pods, the canary Service the target's. With
// provider kubernetes the apex Service's selector is the routing, which its router writes, so it
// is not among them. targetSelector is the target's spec.selector.matchLabels.
func Services(cn *v1alpha1.Canary, targetSelector map[string]string) []ServiceSelector {
	services := []ServiceSelector{
		{cn.ApexServiceName(), PrimaryLabels(targetSelector)},
		{cn.PrimaryServiceName(), PrimaryLabels(targetSelector)},
		{cn.CanaryServiceName(), targetSelector},
	}
	if cn.Spec.Provider == v1alpha1.ProviderKubernetes {
		return services[1:]
	}
	return services
}
