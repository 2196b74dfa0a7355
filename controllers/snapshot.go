package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// AnnotationRevision on the primary Deployment names the revision trafficctl last copied onto it.
const AnnotationRevision = "trafficctl.io/revision"

func (r *CanaryReconciler) getTarget(ctx context.Context, cn *v1alpha1.Canary) (*appsv1.Deployment, error) {
	target := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name}, target); err != nil {
		return nil, err
	}
	return target, nil
}

// snapshot reads the world the planner decides on: the target's revision and readiness, the
// primary's, and the route's.
func (r *CanaryReconciler) snapshot(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment, revision string, rt Router) (rollout.Snapshot, error) {
	s := rollout.Snapshot{Canary: cn, Now: r.Clock.Now(), Request: rollout.PendingRequest(cn)}
	s.Target = workloadOf(target)
	s.Target.Revision = revision

	primary := &appsv1.Deployment{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return s, fmt.Errorf("reading primary deployment: %w", err)
	default:
		s.Primary = workloadOf(primary)
		s.Primary.Revision = primary.Annotations[AnnotationRevision]
	}

	var err error
	s.Route, err = rt.Observe(ctx, cn)
	if err != nil {
		return s, fmt.Errorf("reading %s %s/%s: %w", cn.RouteKind(), cn.Namespace, cn.RouteName(), err)
	}
	return s, nil
}

// workloadOf sums up a Deployment: ready once the controller has seen its current spec and
// every desired replica runs the current template and is available.
func workloadOf(d *appsv1.Deployment) rollout.Workload {
	w := rollout.Workload{Found: true, Replicas: 1}
	if d.Spec.Replicas != nil {
		w.Replicas = *d.Spec.Replicas
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		w.Images = append(w.Images, c.Name+"="+c.Image)
	}
	st := d.Status
	w.Pods, w.Observed = st.Replicas, st.ObservedGeneration >= d.Generation
	if st.TerminatingReplicas != nil {
		w.Terminating = *st.TerminatingReplicas
	}
	switch {
	case st.ObservedGeneration < d.Generation:
		w.Message = fmt.Sprintf("Deployment %s has not yet observed generation %d", d.Name, d.Generation)
	case st.UpdatedReplicas < w.Replicas:
		w.Message = fmt.Sprintf("Deployment %s has %d of %d replicas on the current template", d.Name, st.UpdatedReplicas, w.Replicas)
	case st.Replicas > st.UpdatedReplicas:
		w.Message = fmt.Sprintf("Deployment %s still has %d replicas on an old template", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < w.Replicas:
		w.Message = fmt.Sprintf("Deployment %s has %d of %d replicas available", d.Name, st.AvailableReplicas, w.Replicas)
	default:
		w.Ready = true
	}
	return w
}
