package istio

import (
	"context"
	"encoding/json"
	"fmt"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

// OriginalDestinationsAnnotation holds, on a user's VirtualService, the route (destinations) list
// each apex HTTP route had before trafficctl took it over, as a JSON list in the order of the apex
// routes, so Release can put them back after the controller has restarted any number of times.
const OriginalDestinationsAnnotation = "trafficctl.io/original-destinations"

// userRoute is a user's VirtualService as read for a rewrite. obj is the object as stored, so that
// the HTTP routes written back keep fields exactly, including any this module's types do not know;
// typed holds the same object decoded, to find the apex routes.
type userRoute struct {
	obj   *unstructured.Unstructured
	http  []any
	typed *istionetv1.VirtualService
}

// applyUserRoute points the apex routes of the user's VirtualService at the primary and canary
// Services with weights w, recording their original destinations the first time. The
// DestinationRules are applied once the VirtualService is known to have an apex route, so a
// VirtualService trafficctl cannot use leaves nothing behind.
func (r *Router) applyUserRoute(ctx context.Context, cn *v1alpha1.Canary, w router.Weights) error {
	d := destinationsOf(cn)
	vs, err := r.getUserRoute(ctx, d)
	if err != nil {
		return err
	}
	recorded, err := vs.recorded()
	if err != nil {
		return err
	}

	var originals []any
	changed := false
	for i, route := range vs.typed.Spec.GetHttp() {
		toApex, split := d.classify(route)
		form, port := d.target(route)
		switch {
		case split && len(recorded) > 0:
			originals, recorded = append(originals, recorded[0]), recorded[1:]
		case split:
			// Taken over, but the record is gone: the apex Service is the best thing to restore.
			originals = append(originals, []any{destination(d.apex+string(form), port)})
			changed = true
		case toApex:
			originals = append(originals, vs.route(i)["route"])
			changed = true
		default:
			continue
		}
		vs.route(i)["route"] = d.split(form, port, w)
	}
	if len(originals) == 0 {
		return d.noApexRoute()
	}

	record := vs.obj.GetAnnotations()[OriginalDestinationsAnnotation]
	if changed || record == "" {
		data, err := json.Marshal(originals)
		if err != nil {
			return fmt.Errorf("encode original destinations of VirtualService %s/%s: %w", d.namespace, d.virtualService, err)
		}
		record = string(data)
	}
	if err := r.applyDestinationRules(ctx, cn); err != nil {
		return err
	}
	return r.applyHTTP(ctx, vs, record)
}

// releaseUserRoute gives the apex routes of the user's VirtualService their recorded destinations
// back and drops the record. A VirtualService that is gone, or that trafficctl never took over, is
// left alone.
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

	restored := 0
	for i, route := range vs.typed.Spec.GetHttp() {
		if _, split := d.classify(route); !split {
			continue
		}
		if restored < len(recorded) {
			vs.route(i)["route"] = recorded[restored]
		}
		restored++
	}
	if restored != len(recorded) {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"VirtualService %s/%s has %d HTTP routes that send traffic to Services %s and %s, but annotation %s records the destinations of %d; restore their destinations by hand and remove the annotation",
			d.namespace, d.virtualService, restored, d.primary, d.canary, OriginalDestinationsAnnotation, len(recorded))}
	}
	return r.applyHTTP(ctx, vs, "")
}

// applyHTTP writes the VirtualService's HTTP routes, and the record of original destinations
// unless it is empty, and nothing else: the user's field manager keeps every other field.
// spec.http is an atomic list, so the whole list is applied, and the live resourceVersion makes a
// write that raced with another writer fail with a conflict rather than undo the other write.
//
// Once trafficctl has applied spec.http it is its only owner, so every later apply under its field
// manager must carry it: an apply without it would delete the HTTP routes.
func (r *Router) applyHTTP(ctx context.Context, vs *userRoute, record string) error {
	patch := &unstructured.Unstructured{}
	patch.SetGroupVersionKind(virtualServiceGVK)
	patch.SetNamespace(vs.obj.GetNamespace())
	patch.SetName(vs.obj.GetName())
	patch.SetResourceVersion(vs.obj.GetResourceVersion())
	if record != "" {
		patch.SetAnnotations(map[string]string{OriginalDestinationsAnnotation: record})
	}
	if err := unstructured.SetNestedSlice(patch.Object, vs.http, "spec", "http"); err != nil {
		return fmt.Errorf("build apply of VirtualService %s/%s: %w", vs.obj.GetNamespace(), vs.obj.GetName(), err)
	}
	return r.apply(ctx, patch)
}

// getUserRoute reads the user's VirtualService straight from the apiserver. One that is not there
// is a plain error, wrapping the NotFound: the user may be about to create it.
func (r *Router) getUserRoute(ctx context.Context, d destinations) (*userRoute, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(virtualServiceGVK)
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: d.namespace, Name: d.virtualService}, obj); err != nil {
		return nil, fmt.Errorf("get VirtualService %s/%s: %w", d.namespace, d.virtualService, err)
	}
	http, _, err := unstructured.NestedSlice(obj.Object, "spec", "http")
	if err != nil {
		return nil, fmt.Errorf("read HTTP routes of VirtualService %s/%s: %w", d.namespace, d.virtualService, err)
	}
	typed := &istionetv1.VirtualService{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, typed); err != nil {
		return nil, fmt.Errorf("decode VirtualService %s/%s: %w", d.namespace, d.virtualService, err)
	}
	if len(typed.Spec.GetHttp()) != len(http) {
		return nil, fmt.Errorf("decode VirtualService %s/%s: %d HTTP routes stored, %d decoded", d.namespace, d.virtualService, len(http), len(typed.Spec.GetHttp()))
	}
	for i := range http {
		if _, ok := http[i].(map[string]any); !ok {
			return nil, fmt.Errorf("HTTP route %d of VirtualService %s/%s is not an object", i, d.namespace, d.virtualService)
		}
	}
	return &userRoute{obj: obj, http: http, typed: typed}, nil
}

// route is the stored form of HTTP route i, to edit in place.
func (u *userRoute) route(i int) map[string]any { return u.http[i].(map[string]any) }

// recorded decodes the original destination lists from the annotation; none when it is absent.
func (u *userRoute) recorded() ([]any, error) {
	data, ok := u.obj.GetAnnotations()[OriginalDestinationsAnnotation]
	if !ok {
		return nil, nil
	}
	var recorded []any
	// k8sjson keeps whole numbers as int64, the form unstructured objects hold them in.
	if err := k8sjson.Unmarshal([]byte(data), &recorded); err != nil {
		return nil, &router.InvalidRouteError{Message: fmt.Sprintf(
			"annotation %s of VirtualService %s/%s is not the JSON trafficctl wrote (%v); restore the apex routes' destinations by hand and remove the annotation",
			OriginalDestinationsAnnotation, u.obj.GetNamespace(), u.obj.GetName(), err)}
	}
	return recorded, nil
}
