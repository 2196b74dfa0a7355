package controllers_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	istioapi "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// istioCanary turns the suite's Canary into one that routes through an Istio VirtualService.
func istioCanary(cn *v1alpha1.Canary) {
	cn.Spec.Provider = v1alpha1.ProviderIstio
	cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
	cn.Spec.Service.Hosts = []string{"podinfo.example.com"}
	cn.Spec.Service.Gateways = []string{"infra/public-gw"}
	cn.Spec.Service.TrafficPolicy = &runtime.RawExtension{Raw: []byte(`{"tls":{"mode":"ISTIO_MUTUAL"}}`)}
}

func (c *cluster) virtualService(name string) *istionetv1.VirtualService {
	c.t.Helper()
	vs := &istionetv1.VirtualService{}
	require.NoError(c.t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, vs))
	return vs
}

func TestIstioHealthyRevisionIsPromoted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.startController()
	c.create(c.newCanary(istioCanary))
	cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	vs := c.virtualService("podinfo")
	assert.True(t, metav1.IsControlledBy(vs, cn))
	assert.Equal(t, []string{"podinfo.example.com"}, vs.Spec.GetHosts())
	assert.Equal(t, []string{"infra/public-gw"}, vs.Spec.GetGateways())
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := &istionetv1.DestinationRule{}
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, dr), "DestinationRule %s", name)
		assert.Equal(t, name, dr.Spec.GetHost())
		assert.Equal(t, istioapi.ClientTLSSettings_ISTIO_MUTUAL, dr.Spec.GetTrafficPolicy().GetTls().GetMode(), "the Canary's trafficPolicy")
	}

	c.setImage("podinfo:2.0")
	cn = c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the VirtualService walked every step")
	assert.Equal(t, "podinfo:2.0", c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, cn.Status.LastAppliedSpec, cn.Status.LastPromotedSpec)
}

// userVirtualService is a VirtualService a user wrote: the apex route carries a match, retries,
// a timeout and a fault; another route goes elsewhere.
func userVirtualService(ns string) *istionetv1.VirtualService {
	return &istionetv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "storefront", Namespace: ns, Labels: map[string]string{"owner": "shop-team"}},
		Spec: istioapi.VirtualService{
			Hosts:    []string{"shop.example.com"},
			Gateways: []string{"infra/public-gw"},
			Http: []*istioapi.HTTPRoute{
				{
					Name:    "api",
					Match:   []*istioapi.HTTPMatchRequest{{Uri: &istioapi.StringMatch{MatchType: &istioapi.StringMatch_Prefix{Prefix: "/api"}}}},
					Retries: &istioapi.HTTPRetry{Attempts: 3, PerTryTimeout: durationpb.New(2 * time.Second)},
					Timeout: durationpb.New(10 * time.Second),
					Route:   []*istioapi.HTTPRouteDestination{{Destination: &istioapi.Destination{Host: "podinfo", Port: &istioapi.PortSelector{Number: 9898}}}},
				},
				{
					Name:  "cart",
					Route: []*istioapi.HTTPRouteDestination{{Destination: &istioapi.Destination{Host: "cart." + ns + ".svc.cluster.local"}}},
				},
			},
		},
	}
}

func TestIstioUserVirtualServiceIsRestoredExactly(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.create(userVirtualService(c.ns))
	original := c.virtualService("storefront")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		istioCanary(cn)
		cn.Spec.Service.Hosts, cn.Spec.Service.Gateways = nil, nil
		cn.Spec.Service.VirtualServiceRef = &v1alpha1.LocalObjectReference{Name: "storefront"}
	}))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	c.eventuallyWeights([]int32{0, 10, 50, 0}, "the user's VirtualService walked every step")
	mid := c.virtualService("storefront")
	assert.Equal(t, original.Spec.GetHttp()[1].String(), mid.Spec.GetHttp()[1].String(), "the other route is the user's")
	assert.Equal(t, original.Spec.GetHttp()[0].GetRetries().String(), mid.Spec.GetHttp()[0].GetRetries().String())

	require.NoError(t, k8s.Delete(context.Background(), c.canary()))
	require.Eventually(t, func() bool { return c.notFound(&v1alpha1.Canary{}, "podinfo") }, 30*time.Second, 100*time.Millisecond)
	restored := c.virtualService("storefront")
	assert.Equal(t, original.Spec.String(), restored.Spec.String(), "the VirtualService is exactly what the user wrote")
	assert.Equal(t, original.Annotations, restored.Annotations)
	assert.Equal(t, original.Labels, restored.Labels)
}

func TestIstioUserVirtualServiceWithoutTheApexHostStalls(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.createTarget("podinfo:1.0")
	vs := userVirtualService(c.ns)
	vs.Spec.Http = vs.Spec.Http[1:] // only the route to the cart Service
	c.create(vs)
	original := c.virtualService("storefront")
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		istioCanary(cn)
		cn.Spec.Service.Hosts, cn.Spec.Service.Gateways = nil, nil
		cn.Spec.Service.VirtualServiceRef = &v1alpha1.LocalObjectReference{Name: "storefront"}
	}))

	cn := c.waitFor("Stalled", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		return meta.IsStatusConditionTrue(cn.Status.Conditions, rollout.ConditionStalled)
	})
	stalled := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionStalled)
	assert.Equal(t, rollout.ReasonInvalidRoute, stalled.Reason)
	assert.Contains(t, stalled.Message, "VirtualService "+c.ns+"/storefront")
	after := c.virtualService("storefront")
	assert.Equal(t, original.Spec.String(), after.Spec.String(), "nothing was written to the VirtualService")
	assert.Equal(t, original.ResourceVersion, after.ResourceVersion)
}
