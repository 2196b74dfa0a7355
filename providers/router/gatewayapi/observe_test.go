package gatewayapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

func TestAcceptance(t *testing.T) {
	gw := gatewayv1.ParentReference{Name: "public-gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}
	// defaulted is gw as the apiserver stores it, group and kind filled in.
	defaulted := gw
	defaulted.Group = ptr.To(gatewayv1.Group(gatewayv1.GroupName))
	defaulted.Kind = ptr.To(gatewayv1.Kind("Gateway"))
	https := gw
	https.SectionName = ptr.To(gatewayv1.SectionName("https"))
	local := gatewayv1.ParentReference{Name: "local-gw"}
	localExplicit := gatewayv1.ParentReference{Name: "local-gw", Namespace: ptr.To(gatewayv1.Namespace("shop"))}

	tests := []struct {
		name         string
		parents      []gatewayv1.ParentReference
		status       []gatewayv1.RouteParentStatus
		wantAccepted bool
		wantMessage  string
	}{
		{
			name:         "no parents",
			wantAccepted: true,
		},
		{
			name:        "no status yet",
			parents:     []gatewayv1.ParentReference{gw},
			wantMessage: "waiting for Gateway infra/public-gw to accept generation 3 of HTTPRoute shop/podinfo",
		},
		{
			name:         "accepted, defaults filled in on one side only",
			parents:      []gatewayv1.ParentReference{gw},
			status:       []gatewayv1.RouteParentStatus{parentStatus(defaulted, metav1.ConditionTrue, 3)},
			wantAccepted: true,
		},
		{
			name:         "namespace defaults to the route's",
			parents:      []gatewayv1.ParentReference{local},
			status:       []gatewayv1.RouteParentStatus{parentStatus(localExplicit, metav1.ConditionTrue, 3)},
			wantAccepted: true,
		},
		{
			name:         "a later generation counts",
			parents:      []gatewayv1.ParentReference{gw},
			status:       []gatewayv1.RouteParentStatus{parentStatus(gw, metav1.ConditionTrue, 4)},
			wantAccepted: true,
		},
		{
			name:        "accepted an earlier generation",
			parents:     []gatewayv1.ParentReference{gw},
			status:      []gatewayv1.RouteParentStatus{parentStatus(gw, metav1.ConditionTrue, 2)},
			wantMessage: "waiting for Gateway infra/public-gw to accept generation 3 of HTTPRoute shop/podinfo",
		},
		{
			name:        "rejected",
			parents:     []gatewayv1.ParentReference{gw},
			status:      []gatewayv1.RouteParentStatus{parentStatus(gw, metav1.ConditionFalse, 3)},
			wantMessage: "Gateway infra/public-gw did not accept HTTPRoute shop/podinfo: NotAllowedByListeners: No listener allows this route.",
		},
		{
			name:        "a status for another section is not this parent's",
			parents:     []gatewayv1.ParentReference{https},
			status:      []gatewayv1.RouteParentStatus{parentStatus(gw, metav1.ConditionTrue, 3)},
			wantMessage: "waiting for Gateway infra/public-gw (section https) to accept generation 3 of HTTPRoute shop/podinfo",
		},
		{
			name:        "every parent must accept",
			parents:     []gatewayv1.ParentReference{gw, local},
			status:      []gatewayv1.RouteParentStatus{parentStatus(gw, metav1.ConditionTrue, 3)},
			wantMessage: "waiting for Gateway shop/local-gw to accept generation 3 of HTTPRoute shop/podinfo",
		},
		{
			name:    "one of several controllers accepting is enough",
			parents: []gatewayv1.ParentReference{gw},
			status: []gatewayv1.RouteParentStatus{
				parentStatus(gw, metav1.ConditionFalse, 3),
				parentStatus(gw, metav1.ConditionTrue, 3),
			},
			wantAccepted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := &gatewayv1.HTTPRoute{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "podinfo", Generation: 3},
				Spec:       gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: tt.parents}},
				Status:     gatewayv1.HTTPRouteStatus{RouteStatus: gatewayv1.RouteStatus{Parents: tt.status}},
			}
			accepted, message := acceptance(route)
			assert.Equal(t, tt.wantAccepted, accepted)
			assert.Equal(t, tt.wantMessage, message)
		})
	}
}

func parentStatus(ref gatewayv1.ParentReference, status metav1.ConditionStatus, generation int64) gatewayv1.RouteParentStatus {
	reason, message := "Accepted", "Route is accepted."
	if status == metav1.ConditionFalse {
		reason, message = "NotAllowedByListeners", "No listener allows this route."
	}
	return gatewayv1.RouteParentStatus{
		ParentRef:      ref,
		ControllerName: "example.com/gateway-controller",
		Conditions: []metav1.Condition{{
			Type: "Accepted", Status: status, ObservedGeneration: generation, Reason: reason, Message: message,
		}},
	}
}

func TestObserveRouting(t *testing.T) {
	b := backends{namespace: "shop", route: "storefront", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary"}
	ref := func(name string, weight *int32, mods ...func(*gatewayv1.HTTPBackendRef)) gatewayv1.HTTPBackendRef {
		r := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name)},
			Weight:                 weight,
		}}
		for _, mod := range mods {
			mod(&r)
		}
		return r
	}
	rule := func(refs ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
		return gatewayv1.HTTPRouteRule{BackendRefs: refs}
	}
	named := func(name string, r gatewayv1.HTTPRouteRule) gatewayv1.HTTPRouteRule {
		r.Name = ptr.To(gatewayv1.SectionName(name))
		return r
	}
	withFilters := func(r gatewayv1.HTTPRouteRule, filters ...gatewayv1.HTTPRouteFilter) gatewayv1.HTTPRouteRule {
		r.Filters = filters
		return r
	}
	mirror := func(to string, percent *int32, fraction *gatewayv1.Fraction) gatewayv1.HTTPRouteFilter {
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(to), Port: ptr.To[int32](9898)},
			Percent:    percent,
			Fraction:   fraction,
		}}
	}
	setCookie := func(value string) func(*gatewayv1.HTTPBackendRef) {
		return func(r *gatewayv1.HTTPBackendRef) {
			r.Filters = []gatewayv1.HTTPRouteFilter{{
				Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
				ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}}},
			}}
		}
	}
	otherNamespace := func(r *gatewayv1.HTTPBackendRef) { r.Namespace = ptr.To(gatewayv1.Namespace("other")) }
	serviceImport := func(r *gatewayv1.HTTPBackendRef) {
		r.Group = ptr.To(gatewayv1.Group("multicluster.x-k8s.io"))
		r.Kind = ptr.To(gatewayv1.Kind("ServiceImport"))
	}
	split := rule(ref("podinfo-primary", ptr.To[int32](75)), ref("podinfo-canary", ptr.To[int32](25)))
	weights := rollout.Weights{Primary: 75, Canary: 25}

	tests := []struct {
		name        string
		rules       []gatewayv1.HTTPRouteRule
		want        rollout.Routing
		wantMessage string
		wantErr     bool
	}{
		{
			name:        "no rules",
			wantMessage: "HTTPRoute shop/storefront does not send traffic to Services podinfo-primary and podinfo-canary yet",
			wantErr:     true,
		},
		{
			name:        "only other backends",
			rules:       []gatewayv1.HTTPRouteRule{rule(ref("static", nil)), rule(ref("podinfo", nil, otherNamespace)), rule(ref("podinfo", nil, serviceImport))},
			wantMessage: "HTTPRoute shop/storefront does not send traffic to Services podinfo-primary and podinfo-canary yet",
			wantErr:     true,
		},
		{
			name:        "apex Service not taken over yet: no split",
			rules:       []gatewayv1.HTTPRouteRule{rule(ref("static", nil)), rule(ref("podinfo", ptr.To[int32](7)))},
			wantMessage: "HTTPRoute shop/storefront still sends traffic to Service podinfo, not yet to podinfo-primary and podinfo-canary",
		},
		{
			name:  "split",
			rules: []gatewayv1.HTTPRouteRule{split},
			want:  rollout.Routing{Weights: weights},
		},
		{
			name:  "an unset weight counts as 1",
			rules: []gatewayv1.HTTPRouteRule{rule(ref("podinfo-primary", nil), ref("podinfo-canary", ptr.To[int32](1)))},
			want:  rollout.Routing{Weights: rollout.ForCanary(50)},
		},
		{
			name:  "weights that do not add up to 100 are read in percent",
			rules: []gatewayv1.HTTPRouteRule{rule(ref("podinfo-primary", ptr.To[int32](240)), ref("podinfo-canary", ptr.To[int32](60)), ref("legacy", ptr.To[int32](100)))},
			want:  rollout.Routing{Weights: rollout.ForCanary(20)},
		},
		{
			name:  "the first apex rule answers",
			rules: []gatewayv1.HTTPRouteRule{split, rule(ref("podinfo-primary", ptr.To[int32](50)), ref("podinfo-canary", ptr.To[int32](50)))},
			want:  rollout.Routing{Weights: weights},
		},
		{
			name: "a cohort rule is not the split",
			rules: []gatewayv1.HTTPRouteRule{
				named("trafficctl-cohort-0", rule(ref("podinfo-canary", ptr.To[int32](1)))),
				named("trafficctl-cohort-1", rule(ref("podinfo-canary", ptr.To[int32](1)))),
				split,
			},
			want: rollout.Routing{Weights: weights, Cohort: true},
		},
		{
			name: "a cohort rule before a later apex rule counts",
			rules: []gatewayv1.HTTPRouteRule{
				split,
				named("trafficctl-apex1-cohort-0", rule(ref("podinfo-canary", ptr.To[int32](1)))),
				split,
			},
			want: rollout.Routing{Weights: weights, Cohort: true},
		},
		{
			name: "sticky rules are not cohort rules",
			rules: []gatewayv1.HTTPRouteRule{
				named("trafficctl-sticky-canary", rule(ref("podinfo-canary", ptr.To[int32](1)))),
				named("trafficctl-sticky-primary", rule(ref("podinfo-primary", ptr.To[int32](1)))),
				split,
			},
			want: rollout.Routing{Weights: weights},
		},
		{
			name: "a user's rule with a trafficctl name is the user's",
			rules: []gatewayv1.HTTPRouteRule{
				named("trafficctl-cohort-0", rule(ref("static", nil))),
				named("trafficctl-cohort-1", rule(ref("podinfo-primary", ptr.To[int32](60)), ref("podinfo-canary", ptr.To[int32](40)))),
				split,
			},
			want: rollout.Routing{Weights: rollout.Weights{Primary: 60, Canary: 40}},
		},
		{
			name:  "mirror percent",
			rules: []gatewayv1.HTTPRouteRule{withFilters(split, mirror("podinfo-canary", ptr.To[int32](30), nil))},
			want:  rollout.Routing{Weights: weights, Mirror: 30},
		},
		{
			name:  "mirror of every request",
			rules: []gatewayv1.HTTPRouteRule{withFilters(split, mirror("podinfo-canary", nil, nil))},
			want:  rollout.Routing{Weights: weights, Mirror: 100},
		},
		{
			name:  "mirror fraction",
			rules: []gatewayv1.HTTPRouteRule{withFilters(split, mirror("podinfo-canary", nil, &gatewayv1.Fraction{Numerator: 1, Denominator: ptr.To[int32](4)}))},
			want:  rollout.Routing{Weights: weights, Mirror: 25},
		},
		{
			name:  "a mirror to another Service is the user's",
			rules: []gatewayv1.HTTPRouteRule{withFilters(split, mirror("audit", ptr.To[int32](30), nil))},
			want:  rollout.Routing{Weights: weights},
		},
		{
			name: "sticky value from the canary's Set-Cookie",
			rules: []gatewayv1.HTTPRouteRule{rule(
				ref("podinfo-primary", ptr.To[int32](75), setCookie("stay-primary=p1; Max-Age=60; Path=/")),
				ref("podinfo-canary", ptr.To[int32](25), setCookie("canary=rev-2; Max-Age=60; Path=/")),
			)},
			want: rollout.Routing{Weights: weights, Sticky: "rev-2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := &gatewayv1.HTTPRoute{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "storefront", Generation: 1},
				Spec:       gatewayv1.HTTPRouteSpec{Rules: tt.rules},
			}
			owned, err := observe(route, b, false)
			require.NoError(t, err)
			assert.Equal(t, rollout.State{Found: true, Routing: tt.want, Accepted: tt.wantMessage == "", Message: tt.wantMessage}, owned)

			user, err := observe(route, b, true)
			if tt.wantErr {
				assert.True(t, router.IsInvalidRoute(err), "a user's route without an apex rule: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, owned, user)
		})
	}
}
