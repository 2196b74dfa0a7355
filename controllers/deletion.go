package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router/kubernetes"
	"github.com/trafficctl/trafficctl/rollout"
)

// finalize runs a deleted Canary's hand-back (rollout.PlanHandBack): with deletionPolicy Revert
// the app is handed back to the target Deployment before anything goes away; with Orphan
// everything trafficctl made is left serving, unowned. The finalizer goes last, and what the
// Canary still owns goes with it.
func (r *CanaryReconciler) finalize(ctx context.Context, cn *v1alpha1.Canary) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cn, Finalizer) {
		return ctrl.Result{}, nil
	}
	r.routes.forget(cn.UID) // the hand-back moves the route itself
	rt, rtErr := r.router(cn)
	snap := rollout.HandBackSnapshot{Canary: cn, Now: r.Clock.Now(), RouteHandedBack: true}
	// The target is read straight from the apiserver: the hand-back moves users onto its pods, and
	// a cached copy that lags behind a scale-down (a promotion scales the canary to 0 moments
	// after it ends) would send them to pods that are going. A deletion reads it a few times at
	// most.
	target := &appsv1.Deployment{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name}, target)
	if err != nil {
		target = nil
	}
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return ctrl.Result{}, err
	default:
		snap.Target, snap.TargetGoing = workloadOf(target), !target.DeletionTimestamp.IsZero()
		config, err := r.readConfig(ctx, target.Namespace, &target.Spec.Template.Spec)
		if err != nil {
			return ctrl.Result{}, err
		}
		if snap.Target.Revision, err = revisionOf(target, config); err != nil {
			return ctrl.Result{}, err
		}
	}
	primary := &appsv1.Deployment{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading primary deployment: %w", err)
	default:
		snap.Primary = workloadOf(primary)
	}
	var apex *corev1.Service
	if target != nil {
		if apex, err = r.getService(ctx, cn.Namespace, cn.ApexServiceName()); err != nil {
			return ctrl.Result{}, err
		}
		snap.ApexOnTarget = kubernetes.HandedBack(apex, cn, target.Spec.Selector.MatchLabels)
		if rtErr == nil {
			if snap.RouteHandedBack, snap.RouteMessage, err = rt.HandedBack(ctx, cn); err != nil {
				return ctrl.Result{}, err
			}
		}
	}

	plan := rollout.PlanHandBack(snap)
	if err := r.recordHandBack(ctx, cn, plan); err != nil {
		return ctrl.Result{}, err
	}
	if plan.ScaleTarget != nil {
		if err := r.scaleTarget(ctx, target, *plan.ScaleTarget); err != nil {
			return ctrl.Result{}, err
		}
	}
	if plan.HandBack {
		// The apex Service first: the route then sends traffic to pods it already selects.
		if !snap.ApexOnTarget {
			svc := kubernetes.HandedBackService(cn, target.Spec.Selector.MatchLabels).
				WithAnnotations(map[string]string{AnnotationApexHandedBackAt: r.Clock.Now().UTC().Format(time.RFC3339Nano)})
			if err := r.Client.Apply(ctx, svc, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
				return ctrl.Result{}, fmt.Errorf("handing back service %s/%s: %w", cn.Namespace, cn.ApexServiceName(), err)
			}
			return ctrl.Result{RequeueAfter: apexSettle}, nil
		} else if rtErr == nil {
			if wait := apexSettling(apex, r.Clock.Now()); wait > 0 {
				return ctrl.Result{RequeueAfter: wait}, nil
			}
			if err := rt.HandBack(ctx, cn); err != nil {
				return ctrl.Result{}, fmt.Errorf("handing back %s %s/%s: %w", cn.RouteKind(), cn.Namespace, cn.RouteName(), err)
			}
		}
	}
	if plan.Orphan {
		if err := r.orphan(ctx, cn, rt); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !plan.Done {
		return ctrl.Result{RequeueAfter: plan.RequeueAfter}, nil
	}
	if rtErr == nil && cn.DeletionPolicyOf() == v1alpha1.DeletionRevert {
		// A user's route whose target went with its namespace is still given back, if it stays.
		if err := rt.Release(ctx, cn); err != nil {
			return ctrl.Result{}, fmt.Errorf("restoring %s %s/%s: %w", cn.RouteKind(), cn.Namespace, cn.RouteName(), err)
		}
	}
	patch := client.MergeFrom(cn.DeepCopy())
	controllerutil.RemoveFinalizer(cn, Finalizer)
	if err := r.Client.Patch(ctx, cn, patch); err != nil {
		return ctrl.Result{}, fmt.Errorf("removing finalizer: %w", err)
	}
	forget(cn)
	return ctrl.Result{}, nil
}

// apexSettle is how long the apex Service selects the target's pods before the route is moved to
// it: the Deployment is available as soon as its pods are Ready, and a data plane learns the
// Service's new endpoints a moment later (EndpointSlices, then the proxies). Without it, a
// deletion right after a promotion (which scales the target to 0 and the hand-back up again) had
// the route reach the apex Service before the gateway had its pods: 503s for up to 0.7 s.
const apexSettle = 3 * time.Second

// AnnotationApexHandedBackAt on the apex Service records when a deletion pointed it at the
// target's pods, so the settle time survives a restart. It stays on the Service afterwards.
const AnnotationApexHandedBackAt = "trafficctl.io/handed-back-at"

// apexSettling is how much longer the route waits for the apex Service's endpoints, after
// AnnotationApexHandedBackAt; none when the annotation is missing (an apex Service handed back
// by an earlier version) or unreadable.
func apexSettling(apex *corev1.Service, now time.Time) time.Duration {
	if apex == nil {
		return 0
	}
	at, err := time.Parse(time.RFC3339Nano, apex.Annotations[AnnotationApexHandedBackAt])
	if err != nil {
		return 0
	}
	return max(0, apexSettle-now.Sub(at))
}

// recordHandBack writes the hand-back's phase and condition into status, when they changed.
func (r *CanaryReconciler) recordHandBack(ctx context.Context, cn *v1alpha1.Canary, plan rollout.HandBackPlan) error {
	if plan.Done && plan.Reason == "" {
		return nil
	}
	before := cn.DeepCopy()
	cn.Status = plan.Status
	rollout.SetConditions(&cn.Status, cn.Generation, rollout.Plan{Reason: plan.Reason, Message: plan.Message, Stalled: plan.Stalled})
	if err := r.patchStatus(ctx, cn, before); err != nil {
		return fmt.Errorf("recording the hand-back in status: %w", err)
	}
	return nil
}

// orphan lets everything trafficctl made for cn outlive it, serving as it is: the Canary's owner
// reference is taken off the primary Deployment and autoscaler, the Services, the route objects
// and the primary's config copies.
func (r *CanaryReconciler) orphan(ctx context.Context, cn *v1alpha1.Canary, rt Router) error {
	objs := []client.Object{
		&appsv1.Deployment{}, &autoscalingv2.HorizontalPodAutoscaler{},
		&corev1.Service{}, &corev1.Service{}, &corev1.Service{},
	}
	names := []string{cn.PrimaryDeploymentName(), cn.PrimaryAutoscalerName(), cn.ApexServiceName(), cn.PrimaryServiceName(), cn.CanaryServiceName()}
	for i, o := range objs {
		o.SetNamespace(cn.Namespace)
		o.SetName(names[i])
	}
	if rt != nil {
		objs = append(objs, rt.Objects(cn)...)
	}
	copies, err := r.configCopies(ctx, cn)
	if err != nil {
		return err
	}
	objs = append(objs, copies...)
	for _, o := range objs {
		if err := r.dropOwner(ctx, cn, o); err != nil {
			return err
		}
	}
	return nil
}

// dropOwner takes cn's owner reference off obj (named by its namespace and name), if it has one.
func (r *CanaryReconciler) dropOwner(ctx context.Context, cn *v1alpha1.Canary, obj client.Object) error {
	key := client.ObjectKeyFromObject(obj)
	if err := r.Client.Get(ctx, key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	refs := obj.GetOwnerReferences()
	kept := slices.DeleteFunc(slices.Clone(refs), func(ref metav1.OwnerReference) bool { return ref.UID == cn.UID })
	if len(kept) == len(refs) {
		return nil
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	obj.SetOwnerReferences(kept)
	if err := r.Client.Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("leaving %T %s to outlive the Canary: %w", obj, key, err)
	}
	return nil
}
