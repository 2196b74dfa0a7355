package dataplane

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const testController = gatewayv1.GatewayController("trafficctl.io/e2e-dataplane")

func TestCheckRefs(t *testing.T) {
	existing := map[types.NamespacedName]bool{{Namespace: "shop", Name: "podinfo-primary"}: true}
	exists := func(key types.NamespacedName) (bool, error) { return existing[key], nil }
	mirrorTo := func(name string) gatewayv1.HTTPRouteFilter {
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[int32](9898)},
		}}
	}
	configMap := backendTo("settings", 80, 1)
	configMap.Kind = ptr.To(gatewayv1.Kind("ConfigMap"))

	tests := []struct {
		name  string
		route *gatewayv1.HTTPRoute
		want  refsVerdict
	}{
		{
			name:  "resolved",
			route: newRoute("shop", "a", withRule(routeRule(backends(backendTo("podinfo-primary", 9898, 100))))),
			want:  refsVerdict{ok: true, reason: gatewayv1.RouteReasonResolvedRefs, message: "All references are resolved."},
		},
		{
			name:  "a missing Service, even with weight 0",
			route: newRoute("shop", "a", withRule(routeRule(backends(backendTo("podinfo-primary", 9898, 100), backendTo("podinfo-canary", 9898, 0))))),
			want:  refsVerdict{reason: gatewayv1.RouteReasonBackendNotFound, message: "Service shop/podinfo-canary does not exist."},
		},
		{
			name: "a missing mirror",
			route: newRoute("shop", "a", withRule(gatewayv1.HTTPRouteRule{
				BackendRefs: backends(backendTo("podinfo-primary", 9898, 1)),
				Filters:     []gatewayv1.HTTPRouteFilter{mirrorTo("shadow")},
			})),
			want: refsVerdict{reason: gatewayv1.RouteReasonBackendNotFound, message: "Service shop/shadow does not exist."},
		},
		{
			name:  "another kind first, then a missing Service",
			route: newRoute("shop", "a", withRule(routeRule(backends(configMap, backendTo("gone", 80, 1))))),
			want: refsVerdict{reason: gatewayv1.RouteReasonInvalidKind,
				message: "backend shop/settings is not a Service; only core Services are supported; Service shop/gone does not exist."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkRefs(tt.route, exists)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	_, err := checkRefs(tests[0].route, func(types.NamespacedName) (bool, error) { return false, errors.New("cache gone") })
	assert.ErrorContains(t, err, "cache gone")
}

func TestDesiredParents(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	hr := newRoute("shop", "podinfo",
		withParent("infra", "public-gw"),
		withParent("infra", "private-gw"),
		withParent("infra", "public-gw"), // twice: one entry
		withRule(routeRule(backends(backendTo("podinfo-primary", 9898, 1)))))
	hr.Generation = 4
	r, _ := compileRoute(hr)
	refs := refsVerdict{reason: gatewayv1.RouteReasonBackendNotFound, message: "Service shop/podinfo-canary does not exist."}

	got := desiredParents(hr, r, refs, testGateway, testController, now)

	require.Len(t, got, 1)
	assert.Equal(t, hr.Spec.ParentRefs[0], got[0].ParentRef)
	assert.Equal(t, testController, got[0].ControllerName)
	assert.Equal(t, []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "Route is accepted by Gateway infra/public-gw.", ObservedGeneration: 4, LastTransitionTime: now},
		{Type: "ResolvedRefs", Status: metav1.ConditionFalse, Reason: "BackendNotFound", Message: "Service shop/podinfo-canary does not exist.", ObservedGeneration: 4, LastTransitionTime: now},
	}, got[0].Conditions)

	r.err = errors.New(`rule 0, match 0: path: invalid regular expression "("`)
	got = desiredParents(hr, r, refs, testGateway, testController, now)
	accepted := meta.FindStatusCondition(got[0].Conditions, "Accepted")
	require.NotNil(t, accepted)
	assert.Equal(t, metav1.ConditionFalse, accepted.Status)
	assert.Equal(t, "UnsupportedValue", accepted.Reason)
	assert.Equal(t, `Gateway infra/public-gw cannot serve the route: rule 0, match 0: path: invalid regular expression "(".`, accepted.Message)
}

func TestMergeParents(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2026, 11, 1, 11, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	public := gatewayv1.ParentReference{Name: "public-gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}
	// publicDefaulted is public as the apiserver stores it.
	publicDefaulted := public
	publicDefaulted.Group = ptr.To(gatewayv1.Group(gatewayv1.GroupName))
	publicDefaulted.Kind = ptr.To(gatewayv1.Kind("Gateway"))
	private := gatewayv1.ParentReference{Name: "private-gw", Namespace: ptr.To(gatewayv1.Namespace("infra"))}
	entry := func(ref gatewayv1.ParentReference, controller gatewayv1.GatewayController, status metav1.ConditionStatus, gen int64, at metav1.Time) gatewayv1.RouteParentStatus {
		return gatewayv1.RouteParentStatus{ParentRef: ref, ControllerName: controller, Conditions: []metav1.Condition{{
			Type: "Accepted", Status: status, Reason: "Accepted", ObservedGeneration: gen, LastTransitionTime: at,
		}}}
	}
	other := entry(public, "example.com/other-gateway", metav1.ConditionFalse, 1, earlier)
	oursElsewhere := entry(private, testController, metav1.ConditionTrue, 1, earlier)
	owned := func(p gatewayv1.RouteParentStatus) bool {
		return p.ControllerName == testController && testGateway.attached(p.ParentRef, "shop")
	}
	tests := []struct {
		name        string
		current     []gatewayv1.RouteParentStatus
		desired     []gatewayv1.RouteParentStatus
		want        []gatewayv1.RouteParentStatus
		wantChanged bool
	}{
		{
			name:        "first report, other entries kept",
			current:     []gatewayv1.RouteParentStatus{other, oursElsewhere},
			desired:     []gatewayv1.RouteParentStatus{entry(public, testController, metav1.ConditionTrue, 2, now)},
			want:        []gatewayv1.RouteParentStatus{other, oursElsewhere, entry(public, testController, metav1.ConditionTrue, 2, now)},
			wantChanged: true,
		},
		{
			name:        "a new generation keeps the transition time of an unchanged status",
			current:     []gatewayv1.RouteParentStatus{entry(publicDefaulted, testController, metav1.ConditionTrue, 2, earlier), other},
			desired:     []gatewayv1.RouteParentStatus{entry(public, testController, metav1.ConditionTrue, 3, now)},
			want:        []gatewayv1.RouteParentStatus{entry(publicDefaulted, testController, metav1.ConditionTrue, 3, earlier), other},
			wantChanged: true,
		},
		{
			name:        "a changed status moves the transition time",
			current:     []gatewayv1.RouteParentStatus{entry(publicDefaulted, testController, metav1.ConditionTrue, 2, earlier)},
			desired:     []gatewayv1.RouteParentStatus{entry(public, testController, metav1.ConditionFalse, 2, now)},
			want:        []gatewayv1.RouteParentStatus{entry(publicDefaulted, testController, metav1.ConditionFalse, 2, now)},
			wantChanged: true,
		},
		{
			name:    "up to date",
			current: []gatewayv1.RouteParentStatus{entry(publicDefaulted, testController, metav1.ConditionTrue, 2, earlier)},
			desired: []gatewayv1.RouteParentStatus{entry(public, testController, metav1.ConditionTrue, 2, now)},
			want:    []gatewayv1.RouteParentStatus{entry(publicDefaulted, testController, metav1.ConditionTrue, 2, earlier)},
		},
		{
			name:        "a route that left the Gateway loses only our entry for it",
			current:     []gatewayv1.RouteParentStatus{other, entry(public, testController, metav1.ConditionTrue, 2, earlier), oursElsewhere},
			want:        []gatewayv1.RouteParentStatus{other, oursElsewhere},
			wantChanged: true,
		},
		{
			name:    "a route never attached is left alone",
			current: []gatewayv1.RouteParentStatus{other, oursElsewhere},
			want:    []gatewayv1.RouteParentStatus{other, oursElsewhere},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeParents(tt.current, tt.desired, owned, "shop")
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantChanged, changed)
		})
	}
}

func TestSameParent(t *testing.T) {
	local := gatewayv1.ParentReference{Name: "gw"}
	explicit := gatewayv1.ParentReference{Name: "gw", Namespace: ptr.To(gatewayv1.Namespace("shop")),
		Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: ptr.To(gatewayv1.Kind("Gateway"))}
	section := local
	section.SectionName = ptr.To(gatewayv1.SectionName("https"))
	assert.True(t, sameParent(local, explicit, "shop"))
	assert.False(t, sameParent(local, explicit, "web"))
	assert.False(t, sameParent(local, section, "shop"))
}
