package gatewayapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/providers/router"
)

func TestMirrorKeptReportsAPrunedPercent(t *testing.T) {
	b := backends{namespace: "shop", route: "podinfo", apex: "podinfo", primary: "podinfo-primary", canary: "podinfo-canary", port: 9898}
	route := func(percent *int32) *gatewayv1.HTTPRoute {
		ref := func(name string, weight int32) gatewayv1.HTTPBackendRef {
			return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To[gatewayv1.PortNumber](9898)},
				Weight:                 ptr.To(weight),
			}}
		}
		return &gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "podinfo"},
			Spec: gatewayv1.HTTPRouteSpec{Rules: []gatewayv1.HTTPRouteRule{{
				Name: ptr.To[gatewayv1.SectionName]("split"),
				Filters: []gatewayv1.HTTPRouteFilter{{
					Type: gatewayv1.HTTPRouteFilterRequestMirror,
					RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
						BackendRef: gatewayv1.BackendObjectReference{Name: "podinfo-canary", Port: ptr.To[gatewayv1.PortNumber](9898)},
						Percent:    percent,
					},
				}},
				BackendRefs: []gatewayv1.HTTPBackendRef{ref("podinfo-primary", 100), ref("podinfo-canary", 0)},
			}}},
		}
	}

	err := mirrorKept(route(nil), b, 50)
	assert.True(t, router.IsInvalidRoute(err), "a percent the apiserver pruned: %v", err)
	assert.ErrorContains(t, err, "analysis.mirrorWeight")
	assert.ErrorContains(t, err, "HTTPRoute shop/podinfo")

	assert.NoError(t, mirrorKept(route(ptr.To[int32](50)), b, 50), "the percent was stored")
	assert.NoError(t, mirrorKept(route(nil), b, 100), "every request was asked for")
}
