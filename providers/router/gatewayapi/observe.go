package gatewayapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/trafficctl/trafficctl/rollout"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// observe reads the state of a route that exists. A user's route without an apex rule is an
// InvalidRouteError; a route trafficctl owns without one is simply not split yet, which the next
// Apply repairs.
func observe(route *gatewayv1.HTTPRoute, b backends, userOwned bool) (rollout.State, error) {
	split, ok := b.splitRule(route.Spec.Rules)
	if !ok {
		if userOwned {
			return rollout.State{}, b.noApexRule()
		}
		return rollout.State{Found: true, Message: fmt.Sprintf(
			"HTTPRoute %s/%s does not send traffic to Services %s and %s yet",
			route.Namespace, route.Name, b.primary, b.canary)}, nil
	}
	if _, taken := b.classify(split); !taken {
		// A Routing with zero weights, which never equals one trafficctl asks for, so nothing
		// waits on a route it has not written.
		return rollout.State{Found: true, Message: fmt.Sprintf(
			"HTTPRoute %s/%s still sends traffic to Service %s, not yet to %s and %s",
			route.Namespace, route.Name, b.apex, b.primary, b.canary)}, nil
	}
	accepted, message := acceptance(route)
	return rollout.State{Found: true, Routing: b.routing(split, route.Spec.Rules), Accepted: accepted, Message: message}, nil
}

// splitRule is the rule that carries the split: the first apex rule, skipping the rules trafficctl
// derives from one (a cohort rule sends traffic to the canary alone, and is no split). ok is false
// when the route has no apex rule.
func (b backends) splitRule(rules []gatewayv1.HTTPRouteRule) (rule gatewayv1.HTTPRouteRule, ok bool) {
	for _, rule := range rules {
		if b.derived(rule) {
			continue
		}
		if toApex, split := b.classify(rule); toApex || split {
			return rule, true
		}
	}
	return gatewayv1.HTTPRouteRule{}, false
}

// routing reads the Routing back from the rules: the weights, mirror and sticky cookie of the
// split rule, and whether the cohort rules are there.
func (b backends) routing(split gatewayv1.HTTPRouteRule, rules []gatewayv1.HTTPRouteRule) rollout.Routing {
	var r rollout.Routing
	for _, ref := range split.BackendRefs {
		weight := ptr.Deref(ref.Weight, 1) // Gateway API's default weight
		switch b.service(ref.BackendObjectReference) {
		case b.primary:
			r.Weights.Primary += weight
		case b.canary:
			r.Weights.Canary += weight
			if r.Sticky == "" {
				r.Sticky = stickyValue(ref.Filters)
			}
		}
	}
	// A user's apex backend weighted other than 1, or beside other backends, carries the split
	// multiplied by its weight: read back in percent.
	if sum := r.Weights.Primary + r.Weights.Canary; sum != 100 && sum > 0 {
		canary := int32((int64(r.Weights.Canary)*100 + int64(sum)/2) / int64(sum))
		r.Weights = rollout.ForCanary(canary)
	}
	for _, f := range split.Filters {
		if b.mirror(f) {
			r.Mirror = mirrorPercent(*f.RequestMirror)
			break
		}
	}
	for _, rule := range rules {
		if b.derived(rule) && strings.HasPrefix(derivedRuleName.FindStringSubmatch(string(*rule.Name))[1], "cohort-") {
			r.Cohort = true
		}
	}
	return r
}

// mirrorPercent is the share a RequestMirror filter copies: percent, or fraction, or every
// request when neither is set.
func mirrorPercent(m gatewayv1.HTTPRequestMirrorFilter) int32 {
	switch {
	case m.Percent != nil:
		return *m.Percent
	case m.Fraction != nil:
		return int32(int64(m.Fraction.Numerator) * 100 / int64(ptr.Deref(m.Fraction.Denominator, 100)))
	default:
		return 100
	}
}

// stickyValue is the cookie value a backend's Set-Cookie response header sets, such as v1 in
// "canary=v1; Max-Age=86400; Path=/"; "" without one.
func stickyValue(filters []gatewayv1.HTTPRouteFilter) string {
	for _, f := range filters {
		if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || f.ResponseHeaderModifier == nil {
			continue
		}
		for _, h := range slices.Concat(f.ResponseHeaderModifier.Set, f.ResponseHeaderModifier.Add) {
			if !strings.EqualFold(string(h.Name), "Set-Cookie") {
				continue
			}
			pair, _, _ := strings.Cut(h.Value, ";")
			if _, value, ok := strings.Cut(pair, "="); ok {
				return strings.TrimSpace(value)
			}
		}
	}
	return ""
}

// acceptance reports whether every parent of the route has accepted its current generation, and
// when one has not, which one and why. A route with no parents has nothing to wait for.
func acceptance(route *gatewayv1.HTTPRoute) (bool, string) {
	for _, ref := range route.Spec.ParentRefs {
		if pending := parentPending(route, ref); pending != "" {
			return false, pending
		}
	}
	return true, ""
}

// parentPending says why the parent ref has not accepted the route's current generation, or
// returns "" when it has. Any status entry for the parent will do, since several controllers may
// report on one parent.
func parentPending(route *gatewayv1.HTTPRoute, ref gatewayv1.ParentReference) string {
	var rejected *metav1.Condition
	for _, status := range route.Status.Parents {
		if !sameParent(status.ParentRef, ref, route.Namespace) {
			continue
		}
		c := meta.FindStatusCondition(status.Conditions, string(gatewayv1.RouteConditionAccepted))
		if c == nil || c.ObservedGeneration < route.Generation {
			continue
		}
		if c.Status == metav1.ConditionTrue {
			return ""
		}
		if c.Status == metav1.ConditionFalse {
			rejected = c
		}
	}
	if rejected != nil {
		return fmt.Sprintf("%s did not accept HTTPRoute %s/%s: %s: %s",
			describeParent(ref, route.Namespace), route.Namespace, route.Name, rejected.Reason, rejected.Message)
	}
	return fmt.Sprintf("waiting for %s to accept generation %d of HTTPRoute %s/%s",
		describeParent(ref, route.Namespace), route.Generation, route.Namespace, route.Name)
}

// sameParent compares two parent references the way Gateway API defines them: an unset group,
// kind or namespace means gateway.networking.k8s.io, Gateway and the route's namespace.
func sameParent(a, b gatewayv1.ParentReference, routeNamespace string) bool {
	return a.Name == b.Name &&
		parentGroup(a) == parentGroup(b) &&
		parentKind(a) == parentKind(b) &&
		parentNamespace(a, routeNamespace) == parentNamespace(b, routeNamespace) &&
		ptr.Deref(a.SectionName, "") == ptr.Deref(b.SectionName, "") &&
		ptr.Deref(a.Port, 0) == ptr.Deref(b.Port, 0)
}

func describeParent(ref gatewayv1.ParentReference, routeNamespace string) string {
	s := fmt.Sprintf("%s %s/%s", parentKind(ref), parentNamespace(ref, routeNamespace), ref.Name)
	if ref.SectionName != nil {
		s += fmt.Sprintf(" (section %s)", *ref.SectionName)
	}
	if ref.Port != nil {
		s += fmt.Sprintf(" (port %d)", *ref.Port)
	}
	return s
}

func parentGroup(ref gatewayv1.ParentReference) gatewayv1.Group {
	if ref.Group == nil {
		return gatewayv1.GroupName
	}
	return *ref.Group
}

func parentKind(ref gatewayv1.ParentReference) gatewayv1.Kind {
	if ref.Kind == nil {
		return "Gateway"
	}
	return *ref.Kind
}

func parentNamespace(ref gatewayv1.ParentReference, routeNamespace string) gatewayv1.Namespace {
	if ref.Namespace == nil {
		return gatewayv1.Namespace(routeNamespace)
	}
	return *ref.Namespace
}
