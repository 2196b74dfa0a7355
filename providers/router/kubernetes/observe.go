package kubernetes

import (
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// observeBlueGreen reads which Deployment the Service selects, and whether that Deployment
// runs all its replicas.
func (d pair) observeBlueGreen(svc *corev1.Service) rollout.State {
	var (
		w   rollout.Weights
		dep *appsv1.Deployment
	)
	switch {
	case selects(svc, d.primary):
		w, dep = rollout.Weights{Primary: 100}, d.primary
	case selects(svc, d.target):
		w, dep = rollout.Weights{Canary: 100}, d.target
	default:
		return rollout.State{Found: true, Message: fmt.Sprintf(
			"Service %s/%s selects the pods of neither Deployment %s nor %s",
			svc.Namespace, svc.Name, d.primary.Name, d.target.Name)}
	}
	state := rollout.State{Found: true, Routing: rollout.Routing{Weights: w}}
	state.Message = rolloutPending(dep)
	state.Accepted = state.Message == ""
	return state
}

// observeRatio reads the canary's share of the available pods behind the Service, and whether
// the Service selects both Deployments' pods and both run the replicas they are asked for.
func (d pair) observeRatio(cn *v1alpha1.Canary, svc *corev1.Service) (rollout.State, error) {
	selector, err := d.ratioSelector(cn)
	if err != nil {
		return rollout.State{}, err
	}
	share := rollout.Share(d.primary.Status.AvailableReplicas, d.target.Status.AvailableReplicas)
	state := rollout.State{Found: true, Routing: rollout.Routing{Weights: rollout.ForCanary(share)}}
	switch {
	case !maps.Equal(svc.Spec.Selector, selector):
		state.Message = fmt.Sprintf("Service %s/%s does not select the pods of both Deployment %s and %s yet",
			svc.Namespace, svc.Name, d.target.Name, d.primary.Name)
	case rolloutPending(d.primary) != "":
		state.Message = rolloutPending(d.primary)
	default:
		state.Message = rolloutPending(d.target)
	}
	state.Accepted = state.Message == ""
	return state, nil
}

// selects reports whether svc selects exactly the pods of dep.
func selects(svc *corev1.Service, dep *appsv1.Deployment) bool {
	return dep.Spec.Selector != nil && len(dep.Spec.Selector.MatchLabels) > 0 &&
		maps.Equal(svc.Spec.Selector, dep.Spec.Selector.MatchLabels)
}

// rolloutPending says what dep still waits for before every replica it wants runs its current
// template and is available, or returns "" when there is nothing left to wait for.
func rolloutPending(dep *appsv1.Deployment) string {
	name := dep.Namespace + "/" + dep.Name
	want := ptr.Deref(dep.Spec.Replicas, 1)
	st := dep.Status
	switch {
	case st.ObservedGeneration < dep.Generation:
		return fmt.Sprintf("Deployment %s has not observed generation %d yet", name, dep.Generation)
	case st.UpdatedReplicas != want:
		return fmt.Sprintf("Deployment %s has %d of %d replicas updated", name, st.UpdatedReplicas, want)
	case st.AvailableReplicas != want:
		return fmt.Sprintf("Deployment %s has %d of %d replicas available", name, st.AvailableReplicas, want)
	}
	return ""
}
