package controllers

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router/kubernetes"
	"github.com/trafficctl/trafficctl/rollout"
)

// Labels trafficctl puts on what it creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "trafficctl"
)

// validateTarget refuses a target whose pods trafficctl cannot tell apart from the primary's.
func validateTarget(d *appsv1.Deployment) error {
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		return fmt.Errorf("deployment %s/%s selects its pods without matchLabels; trafficctl derives the primary's selector from them", d.Namespace, d.Name)
	}
	if len(d.Spec.Selector.MatchExpressions) > 0 {
		return fmt.Errorf("deployment %s/%s selects its pods with matchExpressions; trafficctl needs a selector of matchLabels alone to keep the primary's pods apart", d.Namespace, d.Name)
	}
	return nil
}

func ownerRef(cn *v1alpha1.Canary) metav1.OwnerReference {
	return *metav1.NewControllerRef(cn, v1alpha1.GroupVersion.WithKind("Canary"))
}

// ensurePrimary creates <target>-primary from the target's current template when it does not
// exist. After that its template changes only by promotion.
func (r *CanaryReconciler) ensurePrimary(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment, config []configItem, rev string) error {
	key := client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}
	err := r.Client.Get(ctx, key, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	copies, err := r.ensureConfigCopies(ctx, cn, config)
	if err != nil {
		return err
	}
	replicas := int32(1)
	if target.Spec.Replicas != nil && *target.Spec.Replicas > 0 {
		replicas = *target.Spec.Replicas
	}
	labels := maps.Clone(target.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManagedBy] = ManagedByValue
	primary := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace, Labels: labels,
			Annotations:     map[string]string{AnnotationRevision: rev},
			OwnerReferences: []metav1.OwnerReference{ownerRef(cn)},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			Selector:                &metav1.LabelSelector{MatchLabels: rollout.PrimaryLabels(target.Spec.Selector.MatchLabels)},
			Template:                rollout.PrimaryTemplate(target, copies),
			Strategy:                target.Spec.Strategy,
			MinReadySeconds:         target.Spec.MinReadySeconds,
			RevisionHistoryLimit:    target.Spec.RevisionHistoryLimit,
			ProgressDeadlineSeconds: target.Spec.ProgressDeadlineSeconds,
		},
	}
	if err := r.Client.Create(ctx, primary, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating primary deployment %s: %w", key, err)
	}
	return nil
}

// promotePrimary copies the target's template, the revision that passed analysis, onto the
// primary, with the config it uses copied for the primary.
func (r *CanaryReconciler) promotePrimary(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment, config []configItem, revision string) error {
	primary := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); err != nil {
		return fmt.Errorf("reading primary deployment: %w", err)
	}
	// The canary's config as it was analysed becomes the primary's, in copies of its own.
	copies, err := r.ensureConfigCopies(ctx, cn, config)
	if err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(primary.DeepCopy(), client.MergeFromWithOptimisticLock{})
	primary.Spec.Template = rollout.PrimaryTemplate(target, copies)
	if primary.Annotations == nil {
		primary.Annotations = map[string]string{}
	}
	primary.Annotations[AnnotationRevision] = revision
	if err := r.Client.Patch(ctx, primary, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("promoting revision %s onto %s: %w", revision, primary.Name, err)
	}
	return nil
}

// AnnotationReplicas on the target records the replica count trafficctl last set on it, written
// in the same patch as spec.replicas, so that a change by someone else (kubectl scale, an edit)
// is told apart from trafficctl's own.
const AnnotationReplicas = "trafficctl.io/replicas"

// scaleTarget sets the target's replica count, and records it in AnnotationReplicas. Only those
// two fields are touched: the rest of the Deployment stays the user's.
func (r *CanaryReconciler) scaleTarget(ctx context.Context, target *appsv1.Deployment, replicas int32) error {
	if target.Spec.Replicas != nil && *target.Spec.Replicas == replicas && target.Annotations[AnnotationReplicas] == strconv.Itoa(int(replicas)) {
		return nil
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}},"spec":{"replicas":%d}}`, AnnotationReplicas, strconv.Itoa(int(replicas)), replicas))
	if err := r.Client.Patch(ctx, target, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("scaling deployment %s/%s to %d: %w", target.Namespace, target.Name, replicas, err)
	}
	return nil
}

// followTargetReplicas scales the primary to the target's replica count when someone other than
// trafficctl changed it (the count differs from AnnotationReplicas): a user who scales their
// Deployment scales the version that serves. With an autoscalerRef the autoscalers own both
// counts, and a count of 0 is never followed: the primary is not taken down by a count on the
// target.
func (r *CanaryReconciler) followTargetReplicas(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment) error {
	set, ok := target.Annotations[AnnotationReplicas]
	if cn.Spec.AutoscalerRef != nil || !ok || target.Spec.Replicas == nil || *target.Spec.Replicas == 0 || strconv.Itoa(int(*target.Spec.Replicas)) == set {
		return nil
	}
	want := *target.Spec.Replicas
	primary := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); err != nil {
		return client.IgnoreNotFound(err)
	}
	if primary.Spec.Replicas != nil && *primary.Spec.Replicas == want {
		return nil
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, want))
	if err := r.Client.Patch(ctx, primary, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("scaling deployment %s/%s to %d: %w", primary.Namespace, primary.Name, want, err)
	}
	r.Recorder.Eventf(cn, nil, corev1.EventTypeNormal, rollout.ReasonPrimaryScaled, "Scale",
		"Deployment %s was scaled to %d replicas; %s follows, and serves with %d.", target.Name, want, primary.Name, want)
	return nil
}

// ensureServices applies the apex Service (which selects the primary, for clients that do not
// go through the route) and the primary and canary Services the route splits between.
// An apex Service that existed before the Canary is adopted but not owned, so deleting the
// Canary never deletes it.
func (r *CanaryReconciler) ensureServices(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment) error {
	for _, s := range rollout.Services(cn, target.Spec.Selector.MatchLabels) {
		live, err := r.getService(ctx, cn.Namespace, s.Name)
		if err != nil {
			return err
		}
		if kubernetes.UpToDate(live, cn, s.Selector) {
			continue
		}
		svc := kubernetes.Service(cn, s.Name, s.Selector, kubernetes.Adopted(cn, live))
		if err := r.Client.Apply(ctx, svc, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying service %s/%s: %w", cn.Namespace, s.Name, err)
		}
	}
	return nil
}

func (r *CanaryReconciler) getService(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading service %s/%s: %w", namespace, name, err)
	}
	return svc, nil
}
