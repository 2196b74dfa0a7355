package kubernetes

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

// pair is the two Deployments a Canary's apex Service chooses between.
type pair struct {
	target  *appsv1.Deployment
	primary *appsv1.Deployment
}

// blueGreenSelector is the selector that sends all traffic where w says: the primary's
// matchLabels for {Primary: 100}, the target's for {Canary: 100}.
func (d pair) blueGreenSelector(cn *v1alpha1.Canary, w rollout.Weights) (map[string]string, error) {
	var dep *appsv1.Deployment
	switch w {
	case rollout.Weights{Primary: 100}:
		dep = d.primary
	case rollout.Weights{Canary: 100}:
		dep = d.target
	default:
		return nil, fmt.Errorf("provider kubernetes switches Service %s/%s between whole Deployments and cannot split traffic %s", cn.Namespace, cn.ApexServiceName(), w)
	}
	if dep.Spec.Selector == nil || len(dep.Spec.Selector.MatchLabels) == 0 || len(dep.Spec.Selector.MatchExpressions) > 0 {
		return nil, &router.InvalidRouteError{Message: fmt.Sprintf(
			"provider kubernetes points Service %s/%s at the pods of Deployment %s with the Deployment's selector, which must consist of matchLabels alone",
			cn.Namespace, cn.ApexServiceName(), dep.Name)}
	}
	return dep.Spec.Selector.MatchLabels, nil
}

// ratioSelector is the selector that picks the pods of both Deployments: the labels both pod
// templates carry with the same value, leaving out every key either selector uses (those tell
// the two apart). Without such a label a weighted canary cannot run, which the user must fix.
func (d pair) ratioSelector(cn *v1alpha1.Canary) (map[string]string, error) {
	if shared := sharedLabels(d.target, d.primary); len(shared) > 0 {
		return shared, nil
	}
	return nil, &router.InvalidRouteError{Message: fmt.Sprintf(
		"provider kubernetes runs a weighted canary as a replica ratio behind Service %s/%s, which must select the pods of both Deployment %s and %s, but their pod templates share no label outside spec.selector; give the pod template of Deployment %s a label outside spec.selector, such as app.kubernetes.io/name",
		cn.Namespace, cn.ApexServiceName(), d.target.Name, d.primary.Name, d.target.Name)}
}

// sharedLabels returns the pod template labels a and b carry with the same value, except those
// whose key either Deployment's selector uses.
func sharedLabels(a, b *appsv1.Deployment) map[string]string {
	excluded := map[string]bool{}
	for _, d := range []*appsv1.Deployment{a, b} {
		if d.Spec.Selector == nil {
			continue
		}
		for k := range d.Spec.Selector.MatchLabels {
			excluded[k] = true
		}
		for _, e := range d.Spec.Selector.MatchExpressions {
			excluded[e.Key] = true
		}
	}
	shared := map[string]string{}
	for k, v := range a.Spec.Template.Labels {
		if bv, ok := b.Spec.Template.Labels[k]; ok && bv == v && !excluded[k] {
			shared[k] = v
		}
	}
	return shared
}
