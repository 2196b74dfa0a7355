package istio

import (
	"context"
	"fmt"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

const (
	// managedByLabel marks the objects trafficctl creates, so people and tools can tell them apart
	// from their own.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = "trafficctl"
)

var (
	virtualServiceGVK  = istionetv1.SchemeGroupVersion.WithKind("VirtualService")
	destinationRuleGVK = istionetv1.SchemeGroupVersion.WithKind("DestinationRule")
)

// Router writes a Canary's weights into its VirtualService. It holds no state of its own:
// everything it needs to undo its changes lives in the VirtualService.
type Router struct {
	client       client.Client
	fieldManager string
}

// New returns a Router that writes through c under fieldManager, the server-side apply manager
// that owns trafficctl's fields (such as "trafficctl"). c's scheme must know istionetv1 types.
func New(c client.Client, fieldManager string) *Router {
	return &Router{client: c, fieldManager: fieldManager}
}

// Apply sets the split to w: it applies the primary's and the canary's DestinationRules, then
// creates or updates the VirtualService trafficctl owns, or takes over the apex routes of the
// user's. A VirtualService that cannot carry the split is reported as a router.InvalidRouteError;
// a write that lost a race with another writer returns an error to retry.
func (r *Router) Apply(ctx context.Context, cn *v1alpha1.Canary, w router.Weights) error {
	if err := checkWeights(w); err != nil {
		return err
	}
	if cn.UserOwnsRoute() {
		return r.applyUserRoute(ctx, cn, w)
	}
	// The DestinationRules come first, so traffic never reaches a Service before its policy does.
	if err := r.applyDestinationRules(ctx, cn); err != nil {
		return err
	}
	return r.applyOwnedRoute(ctx, cn, w)
}

// Observe reads the VirtualService back: the weights its first apex route carries, and whether
// Istio has reconciled its current generation, so a rollout waits for the mesh before it measures.
func (r *Router) Observe(ctx context.Context, cn *v1alpha1.Canary) (router.State, error) {
	vs := &istionetv1.VirtualService{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.VirtualServiceName()}, vs); err != nil {
		if apierrors.IsNotFound(err) {
			return router.State{Found: false}, nil
		}
		return router.State{}, fmt.Errorf("get VirtualService %s/%s: %w", cn.Namespace, cn.VirtualServiceName(), err)
	}
	return observe(vs, destinationsOf(cn), cn.UserOwnsRoute())
}

// Release undoes Apply when a Canary goes away. The VirtualService and DestinationRules trafficctl
// owns are left to the garbage collector; a VirtualService the user owns gets its apex routes'
// original destinations back.
func (r *Router) Release(ctx context.Context, cn *v1alpha1.Canary) error {
	if !cn.UserOwnsRoute() {
		return nil
	}
	return r.releaseUserRoute(ctx, cn)
}

// checkWeights rejects a split Istio would refuse: the CRD schema does not bound weights, but
// Istio's validation wants each between 0 and 100 and all of a route's adding up to 100.
func checkWeights(w router.Weights) error {
	if w.Primary < 0 || w.Canary < 0 || w.Primary+w.Canary != 100 {
		return fmt.Errorf("weights %s are not a split Istio accepts: each must be between 0 and 100 and they must add up to 100", w)
	}
	return nil
}

// applyOwnedRoute writes the whole VirtualService trafficctl owns: one catch-all HTTP route split
// between the primary and canary Services, with the Canary's timeout and retries.
func (r *Router) applyOwnedRoute(ctx context.Context, cn *v1alpha1.Canary, w router.Weights) error {
	d := destinationsOf(cn)
	route := map[string]any{
		"name":  d.apex,
		"route": d.split(shortHost, d.port, w),
	}
	if cn.Spec.Service.Timeout != "" {
		route["timeout"] = cn.Spec.Service.Timeout
	}
	if rt := cn.Spec.Service.Retries; rt != nil {
		retries := map[string]any{"attempts": int64(rt.Attempts)}
		if rt.PerTryTimeout != "" {
			retries["perTryTimeout"] = rt.PerTryTimeout
		}
		if rt.RetryOn != "" {
			retries["retryOn"] = rt.RetryOn
		}
		route["retries"] = retries
	}

	hosts := cn.Spec.Service.Hosts
	if len(hosts) == 0 {
		hosts = []string{d.apex}
	}
	spec := map[string]any{
		"hosts": stringsToAny(hosts),
		"http":  []any{route},
	}
	if len(cn.Spec.Service.Gateways) > 0 {
		spec["gateways"] = stringsToAny(cn.Spec.Service.Gateways)
	}

	vs := ownedObject(cn, virtualServiceGVK, d.virtualService)
	vs.Object["spec"] = spec
	return r.apply(ctx, vs)
}

// ownedObject is the skeleton of an object trafficctl owns on behalf of cn: labelled as
// trafficctl's and controlled by the Canary, so it goes away with it.
func ownedObject(cn *v1alpha1.Canary, gvk schema.GroupVersionKind, name string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	obj.SetNamespace(cn.Namespace)
	obj.SetName(name)
	obj.SetLabels(map[string]string{managedByLabel: managedByValue})
	obj.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(cn, v1alpha1.GroupVersion.WithKind("Canary"))})
	return obj
}

// apply writes obj with server-side apply under the Router's field manager, taking over any field
// another manager holds.
func (r *Router) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
		client.ForceOwnership, client.FieldOwner(r.fieldManager))
	if err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
