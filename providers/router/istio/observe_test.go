package istio

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/trafficctl/trafficctl/rollout"
	istiometa "istio.io/api/meta/v1alpha1"
	istionetapi "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAcceptance(t *testing.T) {
	tests := []struct {
		name         string
		status       *istiometa.IstioStatus
		reporting    bool
		wantAccepted bool
		wantMessage  string
	}{
		{
			name:        "no status where the mesh writes them: not reconciled yet",
			status:      &istiometa.IstioStatus{},
			reporting:   true,
			wantMessage: "waiting for Istio to report on generation 3 of VirtualService shop/podinfo: the mesh writes the status of VirtualServices, and this one has none yet",
		},
		{
			name:         "where the mesh writes them, the current generation is accepted",
			status:       &istiometa.IstioStatus{ObservedGeneration: 3},
			reporting:    true,
			wantAccepted: true,
		},
		{
			name:         "no status: Istio reports nothing, so nothing to wait for",
			status:       &istiometa.IstioStatus{},
			wantAccepted: true,
		},
		{
			name:         "current generation, no conditions",
			status:       &istiometa.IstioStatus{ObservedGeneration: 3},
			wantAccepted: true,
		},
		{
			name:         "a later generation counts",
			status:       &istiometa.IstioStatus{ObservedGeneration: 4},
			wantAccepted: true,
		},
		{
			name:        "an earlier generation",
			status:      &istiometa.IstioStatus{ObservedGeneration: 2},
			wantMessage: "waiting for Istio to reconcile generation 3 of VirtualService shop/podinfo; it has seen generation 2",
		},
		{
			name: "reconciled",
			status: &istiometa.IstioStatus{ObservedGeneration: 3, Conditions: []*istiometa.IstioCondition{
				{Type: "Reconciled", Status: "True", ObservedGeneration: 3},
			}},
			wantAccepted: true,
		},
		{
			name: "not reconciled yet",
			status: &istiometa.IstioStatus{ObservedGeneration: 3, Conditions: []*istiometa.IstioCondition{
				{Type: "Reconciled", Status: "False", Reason: "InProgress", Message: "2/3 proxies up to date."},
			}},
			wantMessage: `Istio has not reconciled VirtualService shop/podinfo: condition Reconciled is "False": InProgress: 2/3 proxies up to date.`,
		},
		{
			name: "reconciled an earlier generation",
			status: &istiometa.IstioStatus{ObservedGeneration: 3, Conditions: []*istiometa.IstioCondition{
				{Type: "Reconciled", Status: "True", ObservedGeneration: 2},
			}},
			wantMessage: "waiting for Istio to reconcile generation 3 of VirtualService shop/podinfo; its Reconciled condition is about generation 2",
		},
		{
			name: "other conditions do not count",
			status: &istiometa.IstioStatus{ObservedGeneration: 3, Conditions: []*istiometa.IstioCondition{
				{Type: "Warning", Status: "True"},
			}},
			wantAccepted: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "podinfo", Generation: 3}}
			tt.status.DeepCopyInto(&vs.Status)
			accepted, message := acceptance(vs, tt.reporting)
			assert.Equal(t, tt.wantAccepted, accepted)
			assert.Equal(t, tt.wantMessage, message)
		})
	}
}

func TestService(t *testing.T) {
	d := destinations{namespace: "shop", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary"}
	tests := []struct {
		host     string
		wantName string
		wantForm hostForm
	}{
		{host: "podinfo", wantName: "podinfo", wantForm: shortHost},
		{host: "podinfo.shop", wantName: "podinfo", wantForm: ".shop"},
		{host: "podinfo.shop.svc", wantName: "podinfo", wantForm: ".shop.svc"},
		{host: "podinfo.shop.svc.cluster.local", wantName: "podinfo", wantForm: ".shop.svc.cluster.local"},
		{host: "podinfo-primary.shop.svc.cluster.local", wantName: "podinfo-primary", wantForm: ".shop.svc.cluster.local"},
		{host: "podinfo.other"},
		{host: "podinfo.other.svc.cluster.local"},
		{host: "podinfo.example.com"},
		{host: ".shop"},
		{host: ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			name, form := d.service(tt.host)
			assert.Equal(t, tt.wantName, name)
			assert.Equal(t, tt.wantForm, form)
		})
	}
}

func TestSplitRoute(t *testing.T) {
	d := destinations{namespace: "shop", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary"}
	to := func(host string, weight int32) *istionetapi.HTTPRouteDestination {
		return &istionetapi.HTTPRouteDestination{Destination: &istionetapi.Destination{Host: host}, Weight: weight}
	}
	route := func(name string, dsts ...*istionetapi.HTTPRouteDestination) *istionetapi.HTTPRoute {
		return &istionetapi.HTTPRoute{Name: name, Route: dsts}
	}
	tests := []struct {
		name      string
		routes    []*istionetapi.HTTPRoute
		wantRoute string
		want      rollout.Weights
		wantOK    bool
	}{
		{name: "no routes"},
		{name: "no apex route", routes: []*istionetapi.HTTPRoute{route("static", to("static", 0))}},
		{
			name:      "still to the apex Service",
			routes:    []*istionetapi.HTTPRoute{route("api", to("podinfo.shop.svc.cluster.local", 0))},
			wantRoute: "api",
			wantOK:    true,
		},
		{
			name:      "the first apex route counts",
			routes:    []*istionetapi.HTTPRoute{route("static", to("static", 0)), route("a", to("podinfo-primary", 70), to("podinfo-canary", 30)), route("b", to("podinfo", 0))},
			wantRoute: "a",
			want:      rollout.Weights{Primary: 70, Canary: 30},
			wantOK:    true,
		},
		{
			name: "routes trafficctl added do not count",
			routes: []*istionetapi.HTTPRoute{
				route("trafficctl-cohort-0", to("podinfo-canary", 0)),
				route("trafficctl-sticky-primary", to("podinfo-primary", 0)),
				route("a", to("podinfo-primary", 90), to("podinfo-canary", 10)),
			},
			wantRoute: "a",
			want:      rollout.Weights{Primary: 90, Canary: 10},
			wantOK:    true,
		},
		{
			name:      "a user's route named like trafficctl's that still goes to the apex Service counts",
			routes:    []*istionetapi.HTTPRoute{route("trafficctl-cohort-0", to("podinfo", 0))},
			wantRoute: "trafficctl-cohort-0",
			wantOK:    true,
		},
		{
			name:      "a zero weight",
			routes:    []*istionetapi.HTTPRoute{route("a", to("podinfo-primary.shop", 100), to("podinfo-canary.shop", 0))},
			wantRoute: "a",
			want:      rollout.Weights{Primary: 100},
			wantOK:    true,
		},
		{
			name:      "a lone destination without a weight takes everything",
			routes:    []*istionetapi.HTTPRoute{route("a", to("podinfo-canary", 0))},
			wantRoute: "a",
			want:      rollout.Weights{Canary: 100},
			wantOK:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			split, ok := d.splitRoute(tt.routes)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.wantRoute, split.GetName())
			if ok {
				assert.Equal(t, tt.want, d.weights(split))
			}
		})
	}
}

func TestMirrorAndSticky(t *testing.T) {
	d := destinations{namespace: "shop", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary"}
	cookie := func(value string) *istionetapi.Headers {
		return &istionetapi.Headers{Response: &istionetapi.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
	}
	tests := []struct {
		name       string
		route      *istionetapi.HTTPRoute
		wantMirror int32
		wantSticky string
	}{
		{name: "neither", route: &istionetapi.HTTPRoute{}},
		{
			name:       "a mirror to the canary with a percentage",
			route:      &istionetapi.HTTPRoute{Mirror: &istionetapi.Destination{Host: "podinfo-canary.shop.svc"}, MirrorPercentage: &istionetapi.Percent{Value: 25}},
			wantMirror: 25,
		},
		{
			name:       "a mirror to the canary without a percentage mirrors everything",
			route:      &istionetapi.HTTPRoute{Mirror: &istionetapi.Destination{Host: "podinfo-canary"}},
			wantMirror: 100,
		},
		{
			name:  "a user's mirror elsewhere is not trafficctl's",
			route: &istionetapi.HTTPRoute{Mirror: &istionetapi.Destination{Host: "shadow"}, MirrorPercentage: &istionetapi.Percent{Value: 10}},
		},
		{
			name: "the cookie the canary sets",
			route: &istionetapi.HTTPRoute{Route: []*istionetapi.HTTPRouteDestination{
				{Destination: &istionetapi.Destination{Host: "podinfo-primary"}, Headers: cookie("stay=1; Max-Age=60; Path=/")},
				{Destination: &istionetapi.Destination{Host: "podinfo-canary"}, Headers: cookie("canary=7f3a9; Max-Age=60; Path=/")},
			}},
			wantSticky: "7f3a9",
		},
		{
			name: "only the primary sets a cookie",
			route: &istionetapi.HTTPRoute{Route: []*istionetapi.HTTPRouteDestination{
				{Destination: &istionetapi.Destination{Host: "podinfo-primary"}, Headers: cookie("stay=1; Max-Age=60; Path=/")},
				{Destination: &istionetapi.Destination{Host: "podinfo-canary"}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantMirror, d.mirror(tt.route))
			assert.Equal(t, tt.wantSticky, d.sticky(tt.route))
		})
	}
}
