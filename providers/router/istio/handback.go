package istio

import (
	"context"
	"fmt"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// HandBack is the VirtualService's part of a Canary's deletion, once the apex Service selects the
// target's pods: a VirtualService trafficctl created sends all traffic to the apex Service and
// stays, no longer owned by the Canary nor labelled as trafficctl's (its DestinationRules go with
// the Canary); one the user owns is given back as the user wrote it. One already so is not
// written.
func (r *Router) HandBack(ctx context.Context, cn *v1alpha1.Canary) error {
	if cn.UserOwnsRoute() {
		return r.releaseUserRoute(ctx, cn)
	}
	if done, _, err := r.HandedBack(ctx, cn); err != nil || done {
		return err
	}
	vs, err := handedBackVirtualService(cn)
	if err != nil {
		return err
	}
	return r.apply(ctx, vs)
}

// HandedBack reports whether the VirtualService has been handed back, as HandBack leaves it, and
// Istio reconciled that generation; when it has not, what is pending. One that does not exist has
// nothing to hand back.
func (r *Router) HandedBack(ctx context.Context, cn *v1alpha1.Canary) (bool, string, error) {
	vs := &istionetv1.VirtualService{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.VirtualServiceName()}, vs); err != nil {
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "", fmt.Errorf("get VirtualService %s/%s: %w", cn.Namespace, cn.VirtualServiceName(), err)
	}
	d := destinationsOf(cn)
	if cn.UserOwnsRoute() {
		if _, recorded := vs.Annotations[OriginalDestinationsAnnotation]; recorded {
			return false, fmt.Sprintf("VirtualService %s/%s still carries trafficctl's routes", vs.Namespace, vs.Name), nil
		}
	} else {
		for _, ref := range vs.OwnerReferences {
			if ref.UID == cn.UID {
				return false, fmt.Sprintf("VirtualService %s/%s is still the Canary's", vs.Namespace, vs.Name), nil
			}
		}
		for _, route := range vs.Spec.GetHttp() {
			if _, split := d.classify(route); split {
				return false, fmt.Sprintf("VirtualService %s/%s still sends traffic to Services %s and %s", vs.Namespace, vs.Name, d.primary, d.canary), nil
			}
		}
	}
	if hasStatus(vs) {
		r.reporting.Store(true)
	}
	accepted, message := acceptance(vs, r.reporting.Load())
	return accepted, message, nil
}

// handedBackVirtualService is the VirtualService trafficctl created, as it stays after its Canary:
// the Canary's hosts, gateways and route settings, sending every request to the apex Service, with
// neither an owner reference nor trafficctl's label.
func handedBackVirtualService(cn *v1alpha1.Canary) (*unstructured.Unstructured, error) {
	d := destinationsOf(cn)
	route, err := ownedRouteSettings(cn)
	if err != nil {
		return nil, err
	}
	route["name"] = d.apex
	route["route"] = []any{destination(d.apex+string(shortHost), d.port)}
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	vs.SetNamespace(cn.Namespace)
	vs.SetName(d.virtualService)
	vs.Object["spec"] = virtualServiceSpec(cn, []any{route})
	return vs, nil
}

// Objects are the objects trafficctl owns for cn's routing, by kind and name (empty otherwise):
// the VirtualService it created, and the DestinationRules; what an Orphan deletion lets outlive
// the Canary.
func (r *Router) Objects(cn *v1alpha1.Canary) []client.Object {
	var objs []client.Object
	if !cn.UserOwnsRoute() {
		vs := &istionetv1.VirtualService{}
		vs.Namespace, vs.Name = cn.Namespace, cn.VirtualServiceName()
		objs = append(objs, vs)
	}
	for _, host := range []string{cn.PrimaryServiceName(), cn.CanaryServiceName()} {
		dr := &istionetv1.DestinationRule{}
		dr.Namespace, dr.Name = cn.Namespace, host
		objs = append(objs, dr)
	}
	return objs
}
