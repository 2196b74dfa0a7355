package dataplane

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// refsVerdict is whether every backend a route names can be resolved.
type refsVerdict struct {
	ok      bool
	reason  gatewayv1.RouteConditionReason
	message string
}

// checkRefs resolves the backends of a route, those of its rules and of its mirror filters;
// exists reports whether a Service exists. The first problem gives the reason; the message
// names every problem.
func checkRefs(hr *gatewayv1.HTTPRoute, exists func(types.NamespacedName) (bool, error)) (refsVerdict, error) {
	var refs []gatewayv1.BackendObjectReference
	mirrorsOf := func(filters []gatewayv1.HTTPRouteFilter) {
		for _, f := range filters {
			if f.Type == gatewayv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil {
				refs = append(refs, f.RequestMirror.BackendRef)
			}
		}
	}
	for _, r := range hr.Spec.Rules {
		for _, b := range r.BackendRefs {
			refs = append(refs, b.BackendObjectReference)
			mirrorsOf(b.Filters)
		}
		mirrorsOf(r.Filters)
	}
	v := refsVerdict{ok: true, reason: gatewayv1.RouteReasonResolvedRefs}
	var problems []string
	fail := func(reason gatewayv1.RouteConditionReason, problem string) {
		if v.ok {
			v.ok, v.reason = false, reason
		}
		if !slices.Contains(problems, problem) {
			problems = append(problems, problem)
		}
	}
	for _, ref := range refs {
		b := newBackendRef(ref, hr.Namespace)
		if b.invalid {
			fail(gatewayv1.RouteReasonInvalidKind, fmt.Sprintf("backend %s is not a Service; only core Services are supported", b))
			continue
		}
		found, err := exists(b.service)
		if err != nil {
			return refsVerdict{}, err
		}
		if !found {
			fail(gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s does not exist", b))
		}
	}
	if v.ok {
		v.message = "All references are resolved."
	} else {
		v.message = strings.Join(problems, "; ") + "."
	}
	return v, nil
}

// desiredParents is what the Gateway reports about one generation of a route: an entry for
// every parentRef naming the Gateway. r is the route as the routing table loaded it.
func desiredParents(hr *gatewayv1.HTTPRoute, r *route, refs refsVerdict, gw gatewayRef, controller gatewayv1.GatewayController, now metav1.Time) []gatewayv1.RouteParentStatus {
	accepted := metav1.Condition{
		Type:    string(gatewayv1.RouteConditionAccepted),
		Status:  metav1.ConditionTrue,
		Reason:  string(gatewayv1.RouteReasonAccepted),
		Message: fmt.Sprintf("Route is accepted by Gateway %s.", gw),
	}
	if r.err != nil {
		accepted.Status, accepted.Reason = metav1.ConditionFalse, string(gatewayv1.RouteReasonUnsupportedValue)
		accepted.Message = fmt.Sprintf("Gateway %s cannot serve the route: %v.", gw, r.err)
	}
	resolved := metav1.Condition{
		Type:    string(gatewayv1.RouteConditionResolvedRefs),
		Status:  metav1.ConditionTrue,
		Reason:  string(refs.reason),
		Message: refs.message,
	}
	if !refs.ok {
		resolved.Status = metav1.ConditionFalse
	}
	var parents []gatewayv1.RouteParentStatus
	for _, ref := range hr.Spec.ParentRefs {
		if !gw.attached(ref, hr.Namespace) || slices.ContainsFunc(parents, func(p gatewayv1.RouteParentStatus) bool {
			return sameParent(p.ParentRef, ref, hr.Namespace)
		}) {
			continue
		}
		conditions := []metav1.Condition{accepted, resolved}
		for i := range conditions {
			conditions[i].ObservedGeneration = r.generation
			conditions[i].LastTransitionTime = now
		}
		parents = append(parents, gatewayv1.RouteParentStatus{ParentRef: ref, ControllerName: controller, Conditions: conditions})
	}
	return parents
}

// mergeParents puts the desired entries into a route's status.parents and reports whether
// anything changed. Entries that owned says are not ours stay as they are: other controllers',
// and ours for other Gateways. Ours that no parentRef asks for any more are dropped. A
// condition keeps its lastTransitionTime while its status stays the same.
func mergeParents(current, desired []gatewayv1.RouteParentStatus, owned func(gatewayv1.RouteParentStatus) bool, routeNamespace string) ([]gatewayv1.RouteParentStatus, bool) {
	merged := make([]gatewayv1.RouteParentStatus, 0, len(current)+len(desired))
	used := make([]bool, len(desired))
	for _, cur := range current {
		if !owned(cur) {
			merged = append(merged, cur)
			continue
		}
		i := slices.IndexFunc(desired, func(d gatewayv1.RouteParentStatus) bool {
			return sameParent(d.ParentRef, cur.ParentRef, routeNamespace)
		})
		if i < 0 || used[i] {
			continue
		}
		used[i] = true
		entry := *cur.DeepCopy()
		for _, c := range desired[i].Conditions {
			meta.SetStatusCondition(&entry.Conditions, c)
		}
		merged = append(merged, entry)
	}
	for i, d := range desired {
		if !used[i] {
			merged = append(merged, d)
		}
	}
	return merged, !equality.Semantic.DeepEqual(current, merged)
}

// sameParent compares parent references the way Gateway API defines them: an unset group,
// kind or namespace means gateway.networking.k8s.io, Gateway and the route's namespace.
func sameParent(a, b gatewayv1.ParentReference, routeNamespace string) bool {
	group := func(r gatewayv1.ParentReference) gatewayv1.Group {
		if r.Group == nil {
			return gatewayv1.GroupName
		}
		return *r.Group
	}
	kind := func(r gatewayv1.ParentReference) gatewayv1.Kind {
		if r.Kind == nil {
			return "Gateway"
		}
		return *r.Kind
	}
	namespace := func(r gatewayv1.ParentReference) gatewayv1.Namespace {
		if r.Namespace == nil {
			return gatewayv1.Namespace(routeNamespace)
		}
		return *r.Namespace
	}
	deref := func(s *gatewayv1.SectionName) gatewayv1.SectionName {
		if s == nil {
			return ""
		}
		return *s
	}
	port := func(p *gatewayv1.PortNumber) gatewayv1.PortNumber {
		if p == nil {
			return 0
		}
		return *p
	}
	return a.Name == b.Name && group(a) == group(b) && kind(a) == kind(b) &&
		namespace(a) == namespace(b) && deref(a.SectionName) == deref(b.SectionName) && port(a.Port) == port(b.Port)
}

// reportStatus brings the Gateway's entries in a route's status up to date with the routing
// table t, which was built from cached. Only the generation the table loaded is reported: when
// the route has moved on, the newer generation is on its way into the cache and gets a sync
// of its own. The write goes to the status subresource, read fresh, retried on conflicts.
func (d *DataPlane) reportStatus(ctx context.Context, cached *gatewayv1.HTTPRoute, t *table) error {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	var desired []gatewayv1.RouteParentStatus
	if r, served := t.routes[key]; served {
		refs, err := checkRefs(cached, d.serviceExists(ctx))
		if err != nil {
			return err
		}
		desired = desiredParents(cached, r, refs, d.gateway, d.controllerName(), metav1.Now())
	}
	owned := func(p gatewayv1.RouteParentStatus) bool {
		return p.ControllerName == d.controllerName() && d.gateway.attached(p.ParentRef, cached.Namespace)
	}
	if _, changed := mergeParents(cached.Status.Parents, desired, owned, cached.Namespace); !changed {
		return nil
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		live := &gatewayv1.HTTPRoute{}
		if err := d.apiReader.Get(ctx, key, live); err != nil {
			return client.IgnoreNotFound(err)
		}
		if live.Generation != cached.Generation || live.UID != cached.UID {
			return nil
		}
		parents, changed := mergeParents(live.Status.Parents, desired, owned, live.Namespace)
		if !changed {
			return nil
		}
		live.Status.Parents = parents
		if err := d.client.Status().Update(ctx, live); err != nil {
			return err
		}
		d.log.V(1).Info("reported route status", "route", key, "generation", live.Generation)
		return nil
	})
}

func (d *DataPlane) controllerName() gatewayv1.GatewayController {
	return gatewayv1.GatewayController(d.opts.ControllerName)
}

// serviceExists looks Services up in the cache.
func (d *DataPlane) serviceExists(ctx context.Context) func(types.NamespacedName) (bool, error) {
	return func(key types.NamespacedName) (bool, error) {
		err := d.cache.Get(ctx, key, &corev1.Service{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
}
