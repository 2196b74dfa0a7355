package gatewayapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/providers/router"
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

func TestWeights(t *testing.T) {
	b := backends{namespace: "shop", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary"}
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
	otherNamespace := func(r *gatewayv1.HTTPBackendRef) { r.Namespace = ptr.To(gatewayv1.Namespace("other")) }
	serviceImport := func(r *gatewayv1.HTTPBackendRef) {
		r.Group = ptr.To(gatewayv1.Group("multicluster.x-k8s.io"))
		r.Kind = ptr.To(gatewayv1.Kind("ServiceImport"))
	}

	tests := []struct {
		name   string
		rules  []gatewayv1.HTTPRouteRule
		want   router.Weights
		wantOK bool
	}{
		{
			name:  "no rules",
			rules: nil,
		},
		{
			name:  "only other backends",
			rules: []gatewayv1.HTTPRouteRule{rule(ref("static", nil)), rule(ref("podinfo", nil, otherNamespace)), rule(ref("podinfo", nil, serviceImport))},
		},
		{
			name:   "apex Service not taken over yet: no split",
			rules:  []gatewayv1.HTTPRouteRule{rule(ref("static", nil)), rule(ref("podinfo", ptr.To[int32](7)))},
			want:   router.Weights{},
			wantOK: true,
		},
		{
			name:   "split",
			rules:  []gatewayv1.HTTPRouteRule{rule(ref("podinfo-primary", ptr.To[int32](75)), ref("podinfo-canary", ptr.To[int32](25)))},
			want:   router.Weights{Primary: 75, Canary: 25},
			wantOK: true,
		},
		{
			name:   "an unset weight counts as 1",
			rules:  []gatewayv1.HTTPRouteRule{rule(ref("podinfo-primary", nil), ref("podinfo-canary", ptr.To[int32](0)))},
			want:   router.Weights{Primary: 1, Canary: 0},
			wantOK: true,
		},
		{
			name: "the first apex rule answers",
			rules: []gatewayv1.HTTPRouteRule{
				rule(ref("podinfo-primary", ptr.To[int32](90)), ref("podinfo-canary", ptr.To[int32](10))),
				rule(ref("podinfo-primary", ptr.To[int32](50)), ref("podinfo-canary", ptr.To[int32](50))),
			},
			want:   router.Weights{Primary: 90, Canary: 10},
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := b.weights(tt.rules)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}
