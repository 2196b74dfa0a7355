package controllers

import (
	"context"
	"fmt"
	"maps"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// errAutoscalerNotFound marks a missing user HorizontalPodAutoscaler: retried, as it may be
// created after the Canary.
type errAutoscalerNotFound struct{ key client.ObjectKey }

func (e errAutoscalerNotFound) Error() string {
	return fmt.Sprintf("HorizontalPodAutoscaler %s, the Canary's autoscalerRef, does not exist", e.key)
}

// ensurePrimaryAutoscaler keeps <hpa>-primary a copy of the user's autoscaler that scales the
// primary instead of the target. The user's own keeps scaling the target, the canary.
func (r *CanaryReconciler) ensurePrimaryAutoscaler(ctx context.Context, cn *v1alpha1.Canary) error {
	if cn.Spec.AutoscalerRef == nil {
		return nil
	}
	key := client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.AutoscalerRef.Name}
	user := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := r.Client.Get(ctx, key, user); apierrors.IsNotFound(err) {
		return errAutoscalerNotFound{key}
	} else if err != nil {
		return fmt.Errorf("reading HorizontalPodAutoscaler %s: %w", key, err)
	}
	if ref := user.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != cn.Spec.TargetRef.Name {
		return &invalidAutoscalerError{fmt.Sprintf("HorizontalPodAutoscaler %s scales %s %s, not the Canary's target Deployment %s; point its scaleTargetRef at the target", key, ref.Kind, ref.Name, cn.Spec.TargetRef.Name)}
	}

	want := user.Spec.DeepCopy()
	want.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: cn.PrimaryDeploymentName()}
	labels := maps.Clone(user.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManagedBy] = ManagedByValue

	primary := &autoscalingv2.HorizontalPodAutoscaler{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryAutoscalerName()}, primary)
	switch {
	case apierrors.IsNotFound(err):
		primary = &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: cn.PrimaryAutoscalerName(), Namespace: cn.Namespace, Labels: labels, OwnerReferences: []metav1.OwnerReference{ownerRef(cn)}},
			Spec:       *want,
		}
		if err := r.Client.Create(ctx, primary, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("creating HorizontalPodAutoscaler %s: %w", cn.PrimaryAutoscalerName(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading HorizontalPodAutoscaler %s: %w", cn.PrimaryAutoscalerName(), err)
	}
	if equality.Semantic.DeepEqual(primary.Spec, *want) && maps.Equal(primary.Labels, labels) {
		return nil
	}
	patch := client.MergeFromWithOptions(primary.DeepCopy(), client.MergeFromWithOptimisticLock{})
	primary.Spec, primary.Labels = *want, labels
	if err := r.Client.Patch(ctx, primary, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("updating HorizontalPodAutoscaler %s: %w", cn.PrimaryAutoscalerName(), err)
	}
	return nil
}

// invalidAutoscalerError is an autoscalerRef that retrying cannot fix.
type invalidAutoscalerError struct{ msg string }

func (e *invalidAutoscalerError) Error() string { return e.msg }
