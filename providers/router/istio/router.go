package istio

import (
	"context"
	"fmt"
	"sync/atomic"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
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

// Router writes a Canary's routing into its VirtualService. Everything it needs to undo its
// changes lives in the VirtualService; it remembers only what it last wrote, to skip writing it
// again.
type Router struct {
	client       client.Client
	fieldManager string
	// reporting is set once a VirtualService with a status has been seen: the mesh writes them
	// (istiod's status feature is on), so one without a status has not been reconciled yet. It is
	// learnt again after a restart, at the first VirtualService read with a status.
	reporting atomic.Bool
	// applied keeps an idle reconcile from writing the objects it owns again.
	applied router.Applied
}

// New returns a Router that writes through c under fieldManager, the server-side apply manager
// that owns trafficctl's fields (such as "trafficctl"). c's scheme must know istionetv1 types.
func New(c client.Client, fieldManager string) *Router {
	return &Router{client: c, fieldManager: fieldManager}
}

// Apply makes the VirtualService carry rt: it applies the primary's and the canary's
// DestinationRules, then creates or updates the VirtualService trafficctl owns, or takes over the
// apex routes of the user's. The split of rt goes on the apex routes, with the mirror and the
// sticky-session cookies; the cohort and sticky-session routes go before them. A Canary or a
// VirtualService that cannot carry rt is reported as a router.InvalidRouteError before anything is
// written, except raw route fields of service (match, headers, corsPolicy) that Istio's schema
// refuses, which only the apiserver can tell, on the VirtualService's write. A write that lost a
// race with another writer returns an error to retry.
func (r *Router) Apply(ctx context.Context, cn *v1alpha1.Canary, rt rollout.Routing) error {
	s, err := strategyOf(cn, rt, destinationsOf(cn))
	if err != nil {
		return err
	}
	if cn.UserOwnsRoute() {
		return r.applyUserRoute(ctx, cn, s)
	}
	vs, err := ownedVirtualService(cn, s)
	if err != nil {
		return err
	}
	// The DestinationRules come first, so traffic never reaches a Service before its policy does.
	if err := r.applyDestinationRules(ctx, cn); err != nil {
		return err
	}
	err = r.applyOwned(ctx, vs, &istionetv1.VirtualService{})
	if rejected(err) && hasRawRouteFields(cn) {
		// The raw fields are the user's and the likely fault; only the user can fix them.
		return fmt.Errorf("%w: %w", &router.InvalidRouteError{Message: fmt.Sprintf(
			"Istio's VirtualService schema does not accept service.match, service.headers or service.corsPolicy of Canary %s/%s; correct them",
			cn.Namespace, cn.Name)}, err)
	}
	return err
}

// Observe reads the VirtualService back: the Routing its rules carry, and whether Istio has
// reconciled its current generation, so a rollout waits for the mesh before it measures. Once
// any VirtualService has been read with a status, the mesh is known to write them, and one
// without a status is not yet reconciled.
func (r *Router) Observe(ctx context.Context, cn *v1alpha1.Canary) (rollout.State, error) {
	vs := &istionetv1.VirtualService{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.VirtualServiceName()}, vs); err != nil {
		if apierrors.IsNotFound(err) {
			return rollout.State{Found: false}, nil
		}
		return rollout.State{}, fmt.Errorf("get VirtualService %s/%s: %w", cn.Namespace, cn.VirtualServiceName(), err)
	}
	if hasStatus(vs) {
		r.reporting.Store(true)
	}
	return observe(vs, destinationsOf(cn), cn.UserOwnsRoute(), r.reporting.Load())
}

// Release undoes Apply when a Canary goes away. The VirtualService and DestinationRules trafficctl
// owns are left to the garbage collector; a VirtualService the user owns loses the routes
// trafficctl added and gets its apex routes' original destinations and mirrors back.
func (r *Router) Release(ctx context.Context, cn *v1alpha1.Canary) error {
	if !cn.UserOwnsRoute() {
		return nil
	}
	return r.releaseUserRoute(ctx, cn)
}

// ownedVirtualService is the whole VirtualService trafficctl owns: the strategy's routes, then one
// route split between the primary and canary Services, restricted to service.match. Every route
// carries the Canary's timeout, retries, headers and CORS policy.
func ownedVirtualService(cn *v1alpha1.Canary, s strategy) (*unstructured.Unstructured, error) {
	d := destinationsOf(cn)
	apex, err := ownedRouteSettings(cn)
	if err != nil {
		return nil, err
	}
	apex["name"] = d.apex
	http, err := s.expand(apex, 0, shortHost, d.port, fmt.Sprintf("service.match of Canary %s/%s", cn.Namespace, cn.Name))
	if err != nil {
		return nil, err
	}

	vs := ownedObject(cn, virtualServiceGVK, d.virtualService)
	vs.Object["spec"] = virtualServiceSpec(cn, http)
	return vs, nil
}

// virtualServiceSpec is the spec of a VirtualService trafficctl creates with the HTTP routes
// http: the Canary's hosts (the apex Service's name when it names none) and gateways.
func virtualServiceSpec(cn *v1alpha1.Canary, http []any) map[string]any {
	hosts := cn.Spec.Service.Hosts
	if len(hosts) == 0 {
		hosts = []string{cn.ApexServiceName()}
	}
	spec := map[string]any{
		"hosts": stringsToAny(hosts),
		"http":  http,
	}
	if len(cn.Spec.Service.Gateways) > 0 {
		spec["gateways"] = stringsToAny(cn.Spec.Service.Gateways)
	}
	return spec
}

// ownedRouteSettings are the fields of service every HTTP route of the VirtualService trafficctl
// owns carries: its match (which the strategy's routes narrow), timeout, retries, headers and
// CORS policy. The raw fields are sent as the user wrote them, so the apiserver checks them
// against the installed Istio schema.
func ownedRouteSettings(cn *v1alpha1.Canary) (map[string]any, error) {
	svc := cn.Spec.Service
	route := map[string]any{}
	if len(svc.Match) > 0 {
		matches := make([]any, len(svc.Match))
		for i := range svc.Match {
			m, err := decodeRaw(cn, fmt.Sprintf("service.match[%d]", i), &svc.Match[i])
			if err != nil {
				return nil, err
			}
			matches[i] = m
		}
		route["match"] = matches
	}
	if svc.Timeout != "" {
		route["timeout"] = svc.Timeout
	}
	if rt := svc.Retries; rt != nil {
		retries := map[string]any{"attempts": int64(rt.Attempts)}
		if rt.PerTryTimeout != "" {
			retries["perTryTimeout"] = rt.PerTryTimeout
		}
		if rt.RetryOn != "" {
			retries["retryOn"] = rt.RetryOn
		}
		route["retries"] = retries
	}
	for field, raw := range map[string]*runtime.RawExtension{"headers": svc.Headers, "corsPolicy": svc.CorsPolicy} {
		if raw == nil {
			continue
		}
		v, err := decodeRaw(cn, "service."+field, raw)
		if err != nil {
			return nil, err
		}
		route[field] = v
	}
	return route, nil
}

// hasRawRouteFields reports whether cn sets a route field trafficctl passes to Istio unchecked.
func hasRawRouteFields(cn *v1alpha1.Canary) bool {
	svc := cn.Spec.Service
	return len(svc.Match) > 0 || svc.Headers != nil || svc.CorsPolicy != nil
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

// applyOwned writes obj, an object trafficctl owns whole, unless it is cached (into live, an
// empty object of its type) already carrying it.
func (r *Router) applyOwned(ctx context.Context, obj *unstructured.Unstructured, live client.Object) error {
	switch err := r.client.Get(ctx, client.ObjectKeyFromObject(obj), live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return fmt.Errorf("get %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	_, err := r.applied.Apply(ctx, r.client, r.fieldManager, obj, live)
	return err
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
