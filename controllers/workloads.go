package controllers

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
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

// primaryLabels rewrites the target's selector labels so the primary's pods are its own:
// app=podinfo becomes app=podinfo-primary.
func primaryLabels(selector map[string]string) map[string]string {
	out := make(map[string]string, len(selector))
	for k, v := range selector {
		out[k] = v + "-primary"
	}
	return out
}

// primaryTemplate is the target's pod template under the primary's labels.
func primaryTemplate(target *appsv1.Deployment) corev1.PodTemplateSpec {
	tpl := *target.Spec.Template.DeepCopy()
	tpl.Labels = maps.Clone(tpl.Labels)
	if tpl.Labels == nil {
		tpl.Labels = map[string]string{}
	}
	maps.Copy(tpl.Labels, primaryLabels(target.Spec.Selector.MatchLabels))
	return tpl
}

func ownerRef(cn *v1alpha1.Canary) metav1.OwnerReference {
	return *metav1.NewControllerRef(cn, v1alpha1.GroupVersion.WithKind("Canary"))
}

// ensurePrimary creates <target>-primary from the target's current template when it does not
// exist. After that its template changes only by promotion.
func (r *CanaryReconciler) ensurePrimary(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment) error {
	key := client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}
	err := r.Client.Get(ctx, key, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	rev, err := r.revision(ctx, target)
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
			Selector:                &metav1.LabelSelector{MatchLabels: primaryLabels(target.Spec.Selector.MatchLabels)},
			Template:                primaryTemplate(target),
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
// primary.
func (r *CanaryReconciler) promotePrimary(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment, revision string) error {
	primary := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); err != nil {
		return fmt.Errorf("reading primary deployment: %w", err)
	}
	patch := client.MergeFromWithOptions(primary.DeepCopy(), client.MergeFromWithOptimisticLock{})
	primary.Spec.Template = primaryTemplate(target)
	if primary.Annotations == nil {
		primary.Annotations = map[string]string{}
	}
	primary.Annotations[AnnotationRevision] = revision
	if err := r.Client.Patch(ctx, primary, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("promoting revision %s onto %s: %w", revision, primary.Name, err)
	}
	return nil
}

// scaleTarget sets the target's replica count. Only spec.replicas is touched: the rest of the
// Deployment stays the user's.
func (r *CanaryReconciler) scaleTarget(ctx context.Context, target *appsv1.Deployment, replicas int32) error {
	if target.Spec.Replicas != nil && *target.Spec.Replicas == replicas {
		return nil
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas))
	if err := r.Client.Patch(ctx, target, patch, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("scaling deployment %s/%s to %d: %w", target.Namespace, target.Name, replicas, err)
	}
	return nil
}

// ensureServices applies the apex Service (which selects the primary, for clients that do not
// go through the route) and the primary and canary Services the route splits between.
// An apex Service that existed before the Canary is adopted but not owned, so deleting the
// Canary never deletes it.
func (r *CanaryReconciler) ensureServices(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment) error {
	sel := target.Spec.Selector.MatchLabels
	services := []struct {
		name     string
		selector map[string]string
	}{
		{cn.ApexServiceName(), primaryLabels(sel)},
		{cn.PrimaryServiceName(), primaryLabels(sel)},
		{cn.CanaryServiceName(), sel},
	}
	if cn.Spec.Provider == v1alpha1.ProviderKubernetes {
		// Without a mesh the apex Service's selector is the routing, which the router writes.
		services = services[1:]
	}
	for _, s := range services {
		existing, err := r.getService(ctx, cn.Namespace, s.name)
		if err != nil {
			return err
		}
		// An apex Service that existed before the Canary is adopted but never owned.
		owned := existing == nil || metav1.IsControlledBy(existing, cn)
		if existing != nil && serviceUpToDate(existing, cn, s.selector, owned) {
			continue
		}
		port := cn.ServiceTargetPort()
		svc := corev1ac.Service(s.name, cn.Namespace).
			WithLabels(map[string]string{LabelManagedBy: ManagedByValue}).
			WithSpec(corev1ac.ServiceSpec().
				WithSelector(s.selector).
				WithPorts(corev1ac.ServicePort().
					WithName(cn.ServicePortName()).
					WithProtocol(corev1.ProtocolTCP).
					WithPort(cn.Spec.Service.Port).
					WithTargetPort(port)))
		if owned {
			ref := ownerRef(cn)
			svc.WithOwnerReferences(metav1ac.OwnerReference().
				WithAPIVersion(ref.APIVersion).WithKind(ref.Kind).WithName(ref.Name).WithUID(ref.UID).
				WithController(true).WithBlockOwnerDeletion(true))
		}
		if err := r.Client.Apply(ctx, svc, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying service %s/%s: %w", cn.Namespace, s.name, err)
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

// serviceUpToDate reports whether a Service already is what ensureServices would apply, so
// the reconcile loop does not write it again on every pass.
func serviceUpToDate(svc *corev1.Service, cn *v1alpha1.Canary, selector map[string]string, owned bool) bool {
	if !maps.Equal(svc.Spec.Selector, selector) || svc.Labels[LabelManagedBy] != ManagedByValue {
		return false
	}
	if owned && !metav1.IsControlledBy(svc, cn) {
		return false
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == cn.ServicePortName() && p.Port == cn.Spec.Service.Port && p.TargetPort == cn.ServiceTargetPort() && p.Protocol == corev1.ProtocolTCP {
			return true
		}
	}
	return false
}
