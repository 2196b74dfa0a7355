package gatewayapi

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

// OriginalBackendsAnnotation holds, on a user's route, the backendRefs each apex rule had before
// trafficctl took it over, as a JSON list in the order of the apex rules, so Release can put them
// back after the controller has restarted any number of times.
const OriginalBackendsAnnotation = "trafficctl.io/original-backends"

// userRoute is a user's route as read for a rewrite. obj is the object as stored, so that the
// rules written back keep fields and defaults exactly, including any this module's types do not
// know; typed holds the same rules decoded, to find the apex rules.
type userRoute struct {
	obj   *unstructured.Unstructured
	rules []any
	typed []gatewayv1.HTTPRouteRule
}

// applyUserRoute points the apex rules of the user's route at the primary and canary Services
// with weights w, recording their original backendRefs the first time.
func (r *Router) applyUserRoute(ctx context.Context, cn *v1alpha1.Canary, w router.Weights) error {
	b := backendsOf(cn)
	route, err := r.getUserRoute(ctx, b)
	if err != nil {
		return err
	}
	recorded, err := route.recorded()
	if err != nil {
		return err
	}

	var originals []any
	changed := false
	for i, rule := range route.typed {
		toApex, split := b.classify(rule)
		switch {
		case split && len(recorded) > 0:
			originals, recorded = append(originals, recorded[0]), recorded[1:]
		case split:
			// Taken over, but the record is gone: the apex Service is the best thing to restore.
			originals = append(originals, []any{serviceRef(b.apex, b.portOf(rule), 1)})
			changed = true
		case toApex:
			originals = append(originals, route.rule(i)["backendRefs"])
			changed = true
		default:
			continue
		}
		route.rule(i)["backendRefs"] = b.split(b.portOf(rule), w)
	}
	if len(originals) == 0 {
		return b.noApexRule()
	}

	record := route.obj.GetAnnotations()[OriginalBackendsAnnotation]
	if changed || record == "" {
		data, err := json.Marshal(originals)
		if err != nil {
			return fmt.Errorf("encode original backends of HTTPRoute %s/%s: %w", b.namespace, b.route, err)
		}
		record = string(data)
	}
	return r.applyRules(ctx, route, record)
}

// releaseUserRoute gives the apex rules of the user's route their recorded backendRefs back and
// drops the record. A route that is gone, or that trafficctl never took over, is left alone.
func (r *Router) releaseUserRoute(ctx context.Context, cn *v1alpha1.Canary) error {
	b := backendsOf(cn)
	route, err := r.getUserRoute(ctx, b)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, ok := route.obj.GetAnnotations()[OriginalBackendsAnnotation]; !ok {
		return nil
	}
	recorded, err := route.recorded()
	if err != nil {
		return err
	}

	restored := 0
	for i, rule := range route.typed {
		if _, split := b.classify(rule); !split {
			continue
		}
		if restored < len(recorded) {
			route.rule(i)["backendRefs"] = recorded[restored]
		}
		restored++
	}
	if restored != len(recorded) {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"HTTPRoute %s/%s has %d rules that send traffic to Services %s and %s, but annotation %s records the backends of %d; restore their backendRefs by hand and remove the annotation",
			b.namespace, b.route, restored, b.primary, b.canary, OriginalBackendsAnnotation, len(recorded))}
	}
	return r.applyRules(ctx, route, "")
}

// applyRules writes route's rules, and the record of original backends unless it is empty, and
// nothing else: the user's field manager keeps every other field. spec.rules is an atomic list, so
// the whole list is applied, and the live resourceVersion makes a write that raced with another
// writer fail with a conflict rather than undo the other write.
//
// Once trafficctl has applied spec.rules it is their only owner, so every later apply under its
// field manager must carry them: an apply without them would delete the rules.
func (r *Router) applyRules(ctx context.Context, route *userRoute, record string) error {
	patch := &unstructured.Unstructured{}
	patch.SetGroupVersionKind(schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"))
	patch.SetNamespace(route.obj.GetNamespace())
	patch.SetName(route.obj.GetName())
	patch.SetResourceVersion(route.obj.GetResourceVersion())
	if record != "" {
		patch.SetAnnotations(map[string]string{OriginalBackendsAnnotation: record})
	}
	if err := unstructured.SetNestedSlice(patch.Object, route.rules, "spec", "rules"); err != nil {
		return fmt.Errorf("build apply of HTTPRoute %s/%s: %w", route.obj.GetNamespace(), route.obj.GetName(), err)
	}
	err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(patch),
		client.ForceOwnership, client.FieldOwner(r.fieldManager))
	if err != nil {
		return fmt.Errorf("apply HTTPRoute %s/%s: %w", route.obj.GetNamespace(), route.obj.GetName(), err)
	}
	return nil
}

// getUserRoute reads the user's route straight from the apiserver. A route that is not there is a
// plain error, wrapping the NotFound: the user may be about to create it.
func (r *Router) getUserRoute(ctx context.Context, b backends) (*userRoute, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"))
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: b.namespace, Name: b.route}, obj); err != nil {
		return nil, fmt.Errorf("get HTTPRoute %s/%s: %w", b.namespace, b.route, err)
	}
	rules, _, err := unstructured.NestedSlice(obj.Object, "spec", "rules")
	if err != nil {
		return nil, fmt.Errorf("read rules of HTTPRoute %s/%s: %w", b.namespace, b.route, err)
	}
	var typed gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &typed); err != nil {
		return nil, fmt.Errorf("decode HTTPRoute %s/%s: %w", b.namespace, b.route, err)
	}
	for i := range rules {
		if _, ok := rules[i].(map[string]any); !ok {
			return nil, fmt.Errorf("rule %d of HTTPRoute %s/%s is not an object", i, b.namespace, b.route)
		}
	}
	return &userRoute{obj: obj, rules: rules, typed: typed.Spec.Rules}, nil
}

// rule is the stored form of rule i, to edit in place.
func (u *userRoute) rule(i int) map[string]any { return u.rules[i].(map[string]any) }

// recorded decodes the original backendRefs lists from the annotation; none when it is absent.
func (u *userRoute) recorded() ([]any, error) {
	data, ok := u.obj.GetAnnotations()[OriginalBackendsAnnotation]
	if !ok {
		return nil, nil
	}
	var recorded []any
	// k8sjson keeps whole numbers as int64, the form unstructured objects hold them in.
	if err := k8sjson.Unmarshal([]byte(data), &recorded); err != nil {
		return nil, &router.InvalidRouteError{Message: fmt.Sprintf(
			"annotation %s of HTTPRoute %s/%s is not the JSON trafficctl wrote (%v); restore the apex rules' backendRefs by hand and remove the annotation",
			OriginalBackendsAnnotation, u.obj.GetNamespace(), u.obj.GetName(), err)}
	}
	return recorded, nil
}
