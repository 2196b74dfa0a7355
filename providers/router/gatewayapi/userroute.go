package gatewayapi

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

// OriginalBackendsAnnotation holds, on a user's route, the backendRefs each apex rule had before
// trafficctl took it over, as a JSON list in the order of the apex rules, so Release can put them
// back after the controller has restarted any number of times. It is all trafficctl needs to
// record: the rules it adds are recognised by their names and backends, and the mirror it adds by
// its type and backend, so they are removed without a record.
const OriginalBackendsAnnotation = "trafficctl.io/original-backends"

// userRoute is a user's route as read for a rewrite. obj is the object as stored, so that the
// rules written back keep fields and defaults exactly, including any this module's types do not
// know; typed holds the same rules decoded, to find the apex rules.
type userRoute struct {
	obj   *unstructured.Unstructured
	rules []any
	typed []gatewayv1.HTTPRouteRule
}

// userRule is one rule of a user's route as the user wrote it.
type userRule struct {
	obj map[string]any
	// apex is true for a rule that sends traffic to the apex Service.
	apex bool
	// port is the port of the apex Service the rule sends traffic to.
	port int32
}

// applyUserRoute rewrites the user's route for routing, as userRules computes it from the live
// route. A route that already carries the result is not written. It returns the route as
// stored, nil when not written.
func (r *Router) applyUserRoute(ctx context.Context, cn *v1alpha1.Canary, routing rollout.Routing) (*unstructured.Unstructured, error) {
	route, err := r.getUserRoute(ctx, backendsOf(cn))
	if err != nil {
		return nil, err
	}
	rules, record, err := userRules(cn, routing, route)
	if err != nil {
		return nil, err
	}
	if equality.Semantic.DeepEqual(rules, route.rules) && route.obj.GetAnnotations()[OriginalBackendsAnnotation] == record {
		return nil, nil
	}
	return r.applyRules(ctx, route, rules, record)
}

// userRules are the rules of the user's route once it carries routing, and the record of the
// apex rules' original backends: before each apex rule the strategy's extra rules, and the apex
// rule itself split between the primary and canary Services. They are computed afresh from the
// route as the user wrote it, recovered from the live route, so a user's edit during the rollout
// is kept and a Routing that no longer asks for a rule removes it.
func userRules(cn *v1alpha1.Canary, routing rollout.Routing, route *userRoute) (rules []any, record string, err error) {
	b := backendsOf(cn)
	s, err := strategyOf(cn, routing, b)
	if err != nil {
		return nil, "", err
	}
	recorded, err := route.recorded()
	if err != nil {
		return nil, "", err
	}

	user, _ := route.restore(b, recorded)
	taken := map[string]bool{} // the names of the user's rules
	for _, rule := range user {
		if name, ok := rule.obj["name"].(string); ok {
			taken[name] = true
		}
	}
	var originals []any
	for _, rule := range user {
		if !rule.apex {
			rules = append(rules, rule.obj)
			continue
		}
		expanded, err := s.expand(rule.obj, len(originals), b, rule.port)
		if err != nil {
			return nil, "", err
		}
		for _, extra := range expanded[:len(expanded)-1] {
			if name := extra.(map[string]any)["name"].(string); taken[name] {
				return nil, "", &router.InvalidRouteError{Message: fmt.Sprintf(
					"HTTPRoute %s/%s has a rule named %s, a name trafficctl needs for a rule of this rollout; rename that rule",
					b.namespace, b.route, name)}
			}
		}
		originals = append(originals, rule.obj["backendRefs"])
		rules = append(rules, expanded...)
	}
	if len(originals) == 0 {
		return nil, "", b.noApexRule()
	}
	if err := b.checkLimits(rules); err != nil {
		return nil, "", err
	}
	data, err := json.Marshal(originals)
	if err != nil {
		return nil, "", fmt.Errorf("encode original backends of HTTPRoute %s/%s: %w", b.namespace, b.route, err)
	}
	return rules, string(data), nil
}

// releaseUserRoute gives the user's route back as the user wrote it: the rules trafficctl added
// and its mirror removed, the apex rules' recorded backendRefs restored, and the record dropped. A
// route that is gone, or that trafficctl never took over, is left alone.
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

	user, splits := route.restore(b, recorded)
	if splits != len(recorded) {
		return &router.InvalidRouteError{Message: fmt.Sprintf(
			"HTTPRoute %s/%s has %d rules that send traffic to Services %s and %s, but annotation %s records the backends of %d; restore their backendRefs by hand and remove the annotation",
			b.namespace, b.route, splits, b.primary, b.canary, OriginalBackendsAnnotation, len(recorded))}
	}
	rules := make([]any, len(user))
	for i, rule := range user {
		rules[i] = rule.obj
	}
	_, err = r.applyRules(ctx, route, rules, "")
	return err
}

// restore recovers the rules as the user wrote them from the live route: the rules trafficctl
// added are dropped, and each split rule loses trafficctl's mirror and gets back the backendRefs
// recorded for it, or the apex Service when the record has none. splits counts the split rules.
// The live route is left as it is.
func (u *userRoute) restore(b backends, recorded []any) (rules []userRule, splits int) {
	for i, typed := range u.typed {
		if b.derived(typed) {
			continue
		}
		rule := runtime.DeepCopyJSON(u.rule(i))
		toApex, split := b.classify(typed)
		port := b.portOf(typed)
		if split {
			if splits < len(recorded) {
				rule["backendRefs"] = runtime.DeepCopyJSONValue(recorded[splits])
			} else {
				rule["backendRefs"] = []any{serviceRef(b.apex, port, 1)}
			}
			splits++
			rule = b.withoutMirror(rule, typed.Filters)
		}
		rules = append(rules, userRule{obj: rule, apex: toApex || split, port: port})
	}
	return rules, splits
}

// withoutMirror is rule without the mirror trafficctl adds; typed are its filters decoded. A
// filters list left empty goes, as it was absent before trafficctl added to it.
func (b backends) withoutMirror(rule map[string]any, typed []gatewayv1.HTTPRouteFilter) map[string]any {
	stored, _ := rule["filters"].([]any)
	if len(stored) != len(typed) {
		return rule
	}
	var kept []any
	for i, f := range typed {
		if !b.mirror(f) {
			kept = append(kept, stored[i])
		}
	}
	switch {
	case len(kept) == len(stored):
	case len(kept) == 0:
		delete(rule, "filters")
	default:
		rule["filters"] = kept
	}
	return rule
}

// applyRules writes rules as route's rules, and the record of original backends unless it is
// empty, and nothing else: the user's field manager keeps every other field. spec.rules is an
// atomic list, so the whole list is applied, and the live resourceVersion makes a write that raced
// with another writer fail with a conflict rather than undo the other write.
//
// Once trafficctl has applied spec.rules it is their only owner, so every later apply under its
// field manager must carry them: an apply without them would delete the rules.
func (r *Router) applyRules(ctx context.Context, route *userRoute, rules []any, record string) (*unstructured.Unstructured, error) {
	patch := &unstructured.Unstructured{}
	patch.SetGroupVersionKind(schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"))
	patch.SetNamespace(route.obj.GetNamespace())
	patch.SetName(route.obj.GetName())
	patch.SetResourceVersion(route.obj.GetResourceVersion())
	if record != "" {
		patch.SetAnnotations(map[string]string{OriginalBackendsAnnotation: record})
	}
	if err := unstructured.SetNestedSlice(patch.Object, rules, "spec", "rules"); err != nil {
		return nil, fmt.Errorf("build apply of HTTPRoute %s/%s: %w", route.obj.GetNamespace(), route.obj.GetName(), err)
	}
	err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(patch),
		client.ForceOwnership, client.FieldOwner(r.fieldManager))
	if err != nil {
		return nil, fmt.Errorf("apply HTTPRoute %s/%s: %w", route.obj.GetNamespace(), route.obj.GetName(), err)
	}
	return patch, nil
}

// getUserRoute reads the user's route as stored, every field kept (through the controller's cache
// of unstructured objects). A route that is not there is a plain error, wrapping the NotFound: the
// user may be about to create it.
func (r *Router) getUserRoute(ctx context.Context, b backends) (*userRoute, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"))
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: b.namespace, Name: b.route}, obj); err != nil {
		return nil, fmt.Errorf("get HTTPRoute %s/%s: %w", b.namespace, b.route, err)
	}
	return parseUserRoute(obj)
}

// parseUserRoute reads a user's route as stored: its rules as they are, and decoded.
func parseUserRoute(obj *unstructured.Unstructured) (*userRoute, error) {
	rules, _, err := unstructured.NestedSlice(obj.Object, "spec", "rules")
	if err != nil {
		return nil, fmt.Errorf("read rules of HTTPRoute %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	var typed gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &typed); err != nil {
		return nil, fmt.Errorf("decode HTTPRoute %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	for i := range rules {
		if _, ok := rules[i].(map[string]any); !ok {
			return nil, fmt.Errorf("rule %d of HTTPRoute %s/%s is not an object", i, obj.GetNamespace(), obj.GetName())
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
