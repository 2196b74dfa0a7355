package gatewayapi

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// HandBack is the route's part of a Canary's deletion, once the apex Service selects the target's
// pods: a route trafficctl created sends all traffic to the apex Service and stays, no longer
// owned by the Canary nor labelled as trafficctl's; a route the user owns is given back as the
// user wrote it. A route already so is not written.
func (r *Router) HandBack(ctx context.Context, cn *v1alpha1.Canary) error {
	if cn.UserOwnsRoute() {
		return r.releaseUserRoute(ctx, cn)
	}
	if done, _, err := r.HandedBack(ctx, cn); err != nil || done {
		return err
	}
	obj, err := handedBackRoute(cn)
	if err != nil {
		return err
	}
	if err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.ForceOwnership, client.FieldOwner(r.fieldManager)); err != nil {
		return fmt.Errorf("apply HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	return nil
}

// HandedBack reports whether the route has been handed back, as HandBack leaves it, and every
// parent accepted that generation; when it has not, what is pending. A route that does not exist
// has nothing to hand back.
func (r *Router) HandedBack(ctx context.Context, cn *v1alpha1.Canary) (bool, string, error) {
	route := &gatewayv1.HTTPRoute{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.HTTPRouteName()}, route); err != nil {
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "", fmt.Errorf("get HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	b := backendsOf(cn)
	if cn.UserOwnsRoute() {
		if _, recorded := route.Annotations[OriginalBackendsAnnotation]; recorded {
			return false, fmt.Sprintf("HTTPRoute %s/%s still carries trafficctl's rules", route.Namespace, route.Name), nil
		}
	} else {
		for _, ref := range route.OwnerReferences {
			if ref.UID == cn.UID {
				return false, fmt.Sprintf("HTTPRoute %s/%s is still the Canary's", route.Namespace, route.Name), nil
			}
		}
		for _, rule := range route.Spec.Rules {
			if _, split := b.classify(rule); split || b.derived(rule) {
				return false, fmt.Sprintf("HTTPRoute %s/%s still sends traffic to Services %s and %s", route.Namespace, route.Name, b.primary, b.canary), nil
			}
		}
	}
	accepted, message := acceptance(route)
	return accepted, message, nil
}

// handedBackRoute is the route trafficctl created, as it stays after its Canary: the parents and
// hostnames of the Canary and one rule sending every request to the apex Service, with neither an
// owner reference nor trafficctl's label, which the apply of them by trafficctl's field manager
// removes.
func handedBackRoute(cn *v1alpha1.Canary) (*unstructured.Unstructured, error) {
	b := backendsOf(cn)
	spec := gatewayv1ac.HTTPRouteSpec()
	for _, p := range cn.Spec.Service.ParentRefs {
		spec.WithParentRefs(parentRef(p))
	}
	for _, h := range cn.Spec.Service.Hostnames {
		spec.WithHostnames(gatewayv1.Hostname(h))
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gatewayv1ac.HTTPRoute(cn.HTTPRouteName(), cn.Namespace).WithSpec(spec))
	if err == nil {
		rule := map[string]any{"name": splitRuleName, "matches": matchesOf(nil), "backendRefs": []any{serviceRef(b.apex, b.port, 1)}}
		err = unstructured.SetNestedSlice(obj, []any{rule}, "spec", "rules")
	}
	if err != nil {
		return nil, fmt.Errorf("build HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// Objects are the objects of cn's route that trafficctl owns (by kind and name, empty otherwise):
// what an Orphan deletion lets outlive the Canary.
func (r *Router) Objects(cn *v1alpha1.Canary) []client.Object {
	if cn.UserOwnsRoute() {
		return nil
	}
	route := &gatewayv1.HTTPRoute{}
	route.Namespace, route.Name = cn.Namespace, cn.HTTPRouteName()
	return []client.Object{route}
}
