package istio

import (
	"context"
	"encoding/json"
	"fmt"

	istionetapi "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

// OriginalDestinationsAnnotation holds, on a user's VirtualService, what each apex HTTP route had
// before trafficctl took it over, so Release can put it back after the controller has restarted
// any number of times: a JSON list in the order of the apex routes, each entry an object with the
// route's destinations ("route") and its mirror fields ("mirror", "mirrorPercentage" and the like)
// as the user wrote them; a field the route did not have is absent. Earlier versions of trafficctl
// recorded only the destinations, each entry a list; those records are still read.
const OriginalDestinationsAnnotation = "trafficctl.io/original-destinations"

// userRoute is a user's VirtualService as read for a rewrite. obj is the object as stored, so that
// the HTTP routes written back keep fields exactly, including any this module's types do not know;
// typed holds the same object decoded, to find the apex routes.
type userRoute struct {
	obj   *unstructured.Unstructured
	http  []any
	typed *istionetv1.VirtualService
}

// applyUserRoute makes the apex routes of the user's VirtualService carry the strategy: each is
// split between the primary and canary Services (with the mirror and sticky-session cookies), with
// the strategy's routes inserted before it. Routes trafficctl added earlier are dropped first. The
// apex routes' original destinations are recorded the first time, their mirrors whenever
// trafficctl's own mirror is not in place, so a user's edit to a mirror is what Release keeps.
// The DestinationRules are applied once the VirtualService is known to carry the strategy, so a
// VirtualService trafficctl cannot use leaves nothing behind.
func (r *Router) applyUserRoute(ctx context.Context, cn *v1alpha1.Canary, s strategy) error {
	vs, err := r.getUserRoute(ctx, destinationsOf(cn))
	if err != nil {
		return err
	}
	http, record, err := userHTTP(cn, s, vs)
	if err != nil {
		return err
	}
	if err := r.applyDestinationRules(ctx, cn); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(http, vs.http) && (record == "" || vs.obj.GetAnnotations()[OriginalDestinationsAnnotation] == record) {
		return nil // it carries them already
	}
	return r.applyHTTP(ctx, vs, http, record)
}

// userHTTP are the HTTP routes of the user's VirtualService once it carries the strategy, and
// the record of the apex routes' originals, computed from the VirtualService as it stands.
func userHTTP(cn *v1alpha1.Canary, s strategy, vs *userRoute) (http []any, record string, err error) {
	d := destinationsOf(cn)
	recorded, err := vs.recorded()
	if err != nil {
		return nil, "", err
	}
	if len(s.extra) > 0 {
		if err := vs.checkNames(d); err != nil {
			return nil, "", err
		}
	}

	var originals []any
	user := 0 // the place of a route among the user's own, for messages
	for i, route := range vs.typed.Spec.GetHttp() {
		if d.derivedKind(route) != "" {
			continue // rebuilt below from the apex route it was derived from
		}
		user++
		stored := vs.route(i)
		toApex, split := d.classify(route)
		form, port := d.target(route)
		var original map[string]any
		switch {
		case split && len(recorded) > 0:
			original, recorded = recorded[0], recorded[1:]
		case split:
			// Taken over, but the record is gone: the apex Service is the best thing to restore.
			original = map[string]any{"route": []any{destination(d.apex+string(form), port)}}
		case toApex:
			original = map[string]any{"route": stored["route"]}
		default:
			http = append(http, stored)
			continue
		}
		if !d.mirrorsToCanary(route) {
			// The route's mirror is the user's, maybe edited since it was recorded: it is what
			// Release must put back.
			original = withMirror(original, stored)
		}

		describe := fmt.Sprintf("HTTP route %s of VirtualService %s/%s", routeName(route, user), d.namespace, d.virtualService)
		routes, err := s.expand(restore(stored, original), len(originals), form, port, describe)
		if err != nil {
			return nil, "", err
		}
		http = append(http, routes...)
		originals = append(originals, original)
	}
	if len(originals) == 0 {
		return nil, "", d.noApexRoute()
	}

	data, err := json.Marshal(originals)
	if err != nil {
		return nil, "", fmt.Errorf("encode original routes of VirtualService %s/%s: %w", d.namespace, d.virtualService, err)
	}
	return http, string(data), nil
}

// releaseUserRoute drops the routes trafficctl added to the user's VirtualService, gives the apex
// routes their recorded destinations and mirrors back, and drops the record. A VirtualService that
// is gone, or that trafficctl never took over, is left alone.
func (r *Router) releaseUserRoute(ctx context.Context, cn *v1alpha1.Canary) error {
	d := destinationsOf(cn)
	vs, err := r.getUserRoute(ctx, d)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := vs.obj.GetAnnotations()[OriginalDestinationsAnnotation]; !ok {
		return nil
	}
	recorded, err := vs.recorded()
	if err != nil {
		return err
	}

	var http []any
	restored := 0
	for i, route := range vs.typed.Spec.GetHttp() {
		if d.derivedKind(route) != "" {
			continue
		}
		stored := vs.route(i)
		if _, split := d.classify(route); split {
			if restored < len(recorded) {
				original := recorded[restored]
				if !d.mirrorsToCanary(route) {
					original = withMirror(original, stored) // the user's, maybe edited during the rollout
				}
				stored = restore(stored, original)
			}
			restored++
		}
		http = append(http, stored)
	}
	if restored != len(recorded) {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"VirtualService %s/%s has %d HTTP routes that send traffic to Services %s and %s, but annotation %s records the destinations of %d; restore their destinations by hand and remove the annotation",
			d.namespace, d.virtualService, restored, d.primary, d.canary, OriginalDestinationsAnnotation, len(recorded))}
	}
	return r.applyHTTP(ctx, vs, http, "")
}

// restore is a copy of route with the fields trafficctl rewrites (destinations and mirror) as
// original records them: the apex route as the user wrote it.
func restore(route, original map[string]any) map[string]any {
	out := runtime.DeepCopyJSON(route)
	for _, f := range mirrorFields {
		delete(out, f)
	}
	for k, v := range original {
		out[k] = runtime.DeepCopyJSONValue(v)
	}
	return out
}

// withMirror is a copy of original with route's mirror fields in place of the ones it records.
func withMirror(original, route map[string]any) map[string]any {
	out := runtime.DeepCopyJSON(original)
	for _, f := range mirrorFields {
		delete(out, f)
		if v, ok := route[f]; ok {
			out[f] = runtime.DeepCopyJSONValue(v)
		}
	}
	return out
}

// routeName names an HTTP route in messages: by its name, or by its place among the user's
// routes, counting from 1.
func routeName(route *istionetapi.HTTPRoute, place int) string {
	if route.GetName() != "" {
		return fmt.Sprintf("%q", route.GetName())
	}
	return fmt.Sprintf("#%d", place)
}

// checkNames rejects a VirtualService with a route of the user's that carries a name trafficctl
// gives the routes it adds, which would then be ambiguous.
func (u *userRoute) checkNames(d destinations) error {
	for _, route := range u.typed.Spec.GetHttp() {
		if derivedRouteName.MatchString(route.GetName()) && d.derivedKind(route) == "" {
			return &router.InvalidRouteError{Message: fmt.Sprintf(
				"HTTP route %q of VirtualService %s/%s carries a name trafficctl gives the routes it adds; rename it",
				route.GetName(), d.namespace, d.virtualService)}
		}
	}
	return nil
}

// applyHTTP writes http as the VirtualService's HTTP routes, and the record of original routes
// unless it is empty, and nothing else: the user's field manager keeps every other field.
// spec.http is an atomic list, so the whole list is applied, and the live resourceVersion makes a
// write that raced with another writer fail with a conflict rather than undo the other write.
//
// Once trafficctl has applied spec.http it is its only owner, so every later apply under its field
// manager must carry it: an apply without it would delete the HTTP routes.
func (r *Router) applyHTTP(ctx context.Context, vs *userRoute, http []any, record string) error {
	patch := &unstructured.Unstructured{}
	patch.SetGroupVersionKind(virtualServiceGVK)
	patch.SetNamespace(vs.obj.GetNamespace())
	patch.SetName(vs.obj.GetName())
	patch.SetResourceVersion(vs.obj.GetResourceVersion())
	if record != "" {
		patch.SetAnnotations(map[string]string{OriginalDestinationsAnnotation: record})
	}
	if err := unstructured.SetNestedSlice(patch.Object, http, "spec", "http"); err != nil {
		return fmt.Errorf("build apply of VirtualService %s/%s: %w", vs.obj.GetNamespace(), vs.obj.GetName(), err)
	}
	return r.apply(ctx, patch)
}

// getUserRoute reads the user's VirtualService as stored, every field kept (through the
// controller's cache of unstructured objects). One that is not there is a plain error, wrapping
// the NotFound: the user may be about to create it.
func (r *Router) getUserRoute(ctx context.Context, d destinations) (*userRoute, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(virtualServiceGVK)
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: d.namespace, Name: d.virtualService}, obj); err != nil {
		return nil, fmt.Errorf("get VirtualService %s/%s: %w", d.namespace, d.virtualService, err)
	}
	return parseUserRoute(obj)
}

// parseUserRoute reads a user's VirtualService as stored: its HTTP routes as they are, and
// decoded.
func parseUserRoute(obj *unstructured.Unstructured) (*userRoute, error) {
	ns, name := obj.GetNamespace(), obj.GetName()
	http, _, err := unstructured.NestedSlice(obj.Object, "spec", "http")
	if err != nil {
		return nil, fmt.Errorf("read HTTP routes of VirtualService %s/%s: %w", ns, name, err)
	}
	typed := &istionetv1.VirtualService{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, typed); err != nil {
		return nil, fmt.Errorf("decode VirtualService %s/%s: %w", ns, name, err)
	}
	if len(typed.Spec.GetHttp()) != len(http) {
		return nil, fmt.Errorf("decode VirtualService %s/%s: %d HTTP routes stored, %d decoded", ns, name, len(http), len(typed.Spec.GetHttp()))
	}
	for i := range http {
		if _, ok := http[i].(map[string]any); !ok {
			return nil, fmt.Errorf("HTTP route %d of VirtualService %s/%s is not an object", i, ns, name)
		}
	}
	return &userRoute{obj: obj, http: http, typed: typed}, nil
}

// route is the stored form of HTTP route i, to edit in place.
func (u *userRoute) route(i int) map[string]any { return u.http[i].(map[string]any) }

// recorded decodes the original routes from the annotation, each an object holding the fields
// trafficctl rewrites; none when it is absent. An entry in the earlier format, a list of
// destinations, becomes an object with those destinations alone: trafficctl did not touch the
// mirror then.
func (u *userRoute) recorded() ([]map[string]any, error) {
	data, ok := u.obj.GetAnnotations()[OriginalDestinationsAnnotation]
	if !ok {
		return nil, nil
	}
	invalid := func(reason string) error {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"annotation %s of VirtualService %s/%s is not the JSON trafficctl wrote (%s); restore the apex routes' destinations by hand and remove the annotation",
			OriginalDestinationsAnnotation, u.obj.GetNamespace(), u.obj.GetName(), reason)}
	}
	var entries []any
	// k8sjson keeps whole numbers as int64, the form unstructured objects hold them in.
	if err := k8sjson.Unmarshal([]byte(data), &entries); err != nil {
		return nil, invalid(err.Error())
	}
	recorded := make([]map[string]any, len(entries))
	for i, entry := range entries {
		switch entry := entry.(type) {
		case []any:
			recorded[i] = map[string]any{"route": entry}
		case map[string]any:
			if _, ok := entry["route"].([]any); !ok {
				return nil, invalid(fmt.Sprintf("entry %d has no route list", i))
			}
			recorded[i] = entry
		default:
			return nil, invalid(fmt.Sprintf("entry %d is neither an object nor a list", i))
		}
	}
	return recorded, nil
}
