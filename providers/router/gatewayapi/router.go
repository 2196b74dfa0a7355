package gatewayapi

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

const (
	// managedByLabel marks the routes trafficctl creates, so people and tools can tell them apart
	// from their own.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = "trafficctl"
)

// Router writes a Canary's routing into its HTTPRoute. Everything it needs to undo its changes
// lives in the route; it remembers only what it last wrote, to skip writing it again.
type Router struct {
	client       client.Client
	fieldManager string
	// applied keeps an idle reconcile from writing the route it owns again.
	applied router.Applied
}

// New returns a Router that writes through c under fieldManager, the server-side apply manager
// that owns trafficctl's fields (such as "trafficctl"). c's scheme must know gatewayv1 types.
func New(c client.Client, fieldManager string) *Router {
	return &Router{client: c, fieldManager: fieldManager}
}

// Apply makes the route carry routing: it creates or updates the route trafficctl owns, or takes
// over the apex rules of the user's route. A route that cannot carry it (no apex rule, or more
// rules than Gateway API allows) is reported as a router.InvalidRouteError; a write that lost a
// race with another writer returns an error to retry.
func (r *Router) Apply(ctx context.Context, cn *v1alpha1.Canary, routing rollout.Routing) error {
	apply := r.applyOwnedRoute
	if cn.UserOwnsRoute() {
		apply = r.applyUserRoute
	}
	stored, err := apply(ctx, cn, routing)
	if err != nil {
		return err
	}
	if stored != nil && routing.Mirror > 0 && routing.Mirror < 100 {
		return checkMirrorKept(cn, stored, routing.Mirror)
	}
	return nil
}

// Observe reads the route back: the Routing its rules carry, and whether every parent has
// accepted its current generation, so a rollout waits for the data plane before it measures.
func (r *Router) Observe(ctx context.Context, cn *v1alpha1.Canary) (rollout.State, error) {
	route := &gatewayv1.HTTPRoute{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.HTTPRouteName()}, route); err != nil {
		if apierrors.IsNotFound(err) {
			return rollout.State{Found: false}, nil
		}
		return rollout.State{}, fmt.Errorf("get HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	return observe(route, backendsOf(cn), cn.UserOwnsRoute())
}

// Release undoes Apply when a Canary goes away. A route trafficctl owns is left to the garbage
// collector; a route the user owns is given back as the user wrote it.
func (r *Router) Release(ctx context.Context, cn *v1alpha1.Canary) error {
	if !cn.UserOwnsRoute() {
		return nil
	}
	return r.releaseUserRoute(ctx, cn)
}

// applyOwnedRoute writes the whole route trafficctl owns, as ownedRoute builds it, unless the
// route (as cached) already carries it. It returns the route as stored, nil when not written.
func (r *Router) applyOwnedRoute(ctx context.Context, cn *v1alpha1.Canary, routing rollout.Routing) (*unstructured.Unstructured, error) {
	obj, err := ownedRoute(cn, routing)
	if err != nil {
		return nil, err
	}
	var live client.Object = &gatewayv1.HTTPRoute{}
	switch err := r.client.Get(ctx, client.ObjectKeyFromObject(obj), live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return nil, fmt.Errorf("get HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	return r.applied.Apply(ctx, r.client, r.fieldManager, obj, live)
}

// ownedRoute is the whole route trafficctl owns. Its rules are what a user's route with one
// catch-all apex rule would become: the strategy's extra rules (cohort, sticky sessions), then
// the catch-all rule, named split, divided between the primary and canary Services.
func ownedRoute(cn *v1alpha1.Canary, routing rollout.Routing) (*unstructured.Unstructured, error) {
	b := backendsOf(cn)
	s, err := strategyOf(cn, routing, b)
	if err != nil {
		return nil, err
	}
	catchAll := map[string]any{"name": splitRuleName, "matches": matchesOf(nil)}
	rules, err := s.expand(catchAll, 0, b, b.port)
	if err != nil {
		return nil, err
	}
	if err := b.checkLimits(rules); err != nil {
		return nil, err
	}

	spec := gatewayv1ac.HTTPRouteSpec()
	for _, p := range cn.Spec.Service.ParentRefs {
		spec.WithParentRefs(parentRef(p))
	}
	for _, h := range cn.Spec.Service.Hostnames {
		spec.WithHostnames(gatewayv1.Hostname(h))
	}
	route := gatewayv1ac.HTTPRoute(cn.HTTPRouteName(), cn.Namespace).
		WithLabels(map[string]string{managedByLabel: managedByValue}).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).
			WithKind("Canary").
			WithName(cn.Name).
			WithUID(cn.UID).
			WithController(true).
			WithBlockOwnerDeletion(true)).
		WithSpec(spec)

	// The rules are in stored form, shared with the user's route; the rest goes through the typed
	// builders and joins them in one object.
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(route)
	if err == nil {
		err = unstructured.SetNestedSlice(obj, rules, "spec", "rules")
	}
	if err != nil {
		return nil, fmt.Errorf("build apply of HTTPRoute %s/%s: %w", cn.Namespace, cn.HTTPRouteName(), err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// parentRef converts the Canary's copy of a Gateway API parent reference.
func parentRef(p v1alpha1.ParentReference) *gatewayv1ac.ParentReferenceApplyConfiguration {
	ref := gatewayv1ac.ParentReference().WithName(gatewayv1.ObjectName(p.Name))
	if p.Group != nil {
		ref.WithGroup(gatewayv1.Group(*p.Group))
	}
	if p.Kind != nil {
		ref.WithKind(gatewayv1.Kind(*p.Kind))
	}
	if p.Namespace != nil {
		ref.WithNamespace(gatewayv1.Namespace(*p.Namespace))
	}
	if p.SectionName != nil {
		ref.WithSectionName(gatewayv1.SectionName(*p.SectionName))
	}
	if p.Port != nil {
		ref.WithPort(*p.Port)
	}
	return ref
}
