package dataplane

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
	istiometa "istio.io/api/meta/v1alpha1"
	istionet "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// virtualService creates a VirtualService in the fixture's namespace, naming its Gateway by
// its short name, and deletes it when the test ends.
func (f *fixture) virtualService(name string, mods ...vsMod) *istionetv1.VirtualService {
	f.t.Helper()
	vs := newVirtualService(f.ns, name, append([]vsMod{withGateways(gatewayName)}, mods...)...)
	f.create(vs)
	return vs
}

func (f *fixture) create(vs *istionetv1.VirtualService) {
	f.t.Helper()
	vs.Generation = 0
	require.NoError(f.t, env.Client.Create(context.Background(), vs))
	f.t.Cleanup(func() { _ = client.IgnoreNotFound(env.Client.Delete(context.Background(), vs)) })
}

// updateVirtualService changes a VirtualService's spec, retrying on conflicts.
func (f *fixture) updateVirtualService(name string, mutate func(*istionetv1.VirtualService)) *istionetv1.VirtualService {
	f.t.Helper()
	vs := &istionetv1.VirtualService{}
	require.NoError(f.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, vs); err != nil {
			return err
		}
		mutate(vs)
		return env.Client.Update(context.Background(), vs)
	}))
	return vs
}

func (f *fixture) getVirtualService(name string) *istionetv1.VirtualService {
	f.t.Helper()
	vs := &istionetv1.VirtualService{}
	require.NoError(f.t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, vs))
	return vs
}

func reconciledCondition(vs *istionetv1.VirtualService) *istiometa.IstioCondition {
	for _, c := range vs.Status.Conditions {
		if c.Type == conditionReconciled {
			return c
		}
	}
	return nil
}

// waitReconciled waits until the data plane reports the VirtualService's current generation
// Reconciled, as Istio does, which also means its routing table has loaded that generation.
func (f *fixture) waitReconciled(name string) *istionetv1.VirtualService {
	f.t.Helper()
	var last *istionetv1.VirtualService
	ok := assert.Eventually(f.t, func() bool {
		last = f.getVirtualService(name)
		c := reconciledCondition(last)
		return last.Status.ObservedGeneration == last.Generation && c != nil && c.Status == "True" && c.ObservedGeneration == last.Generation
	}, waitTimeout, tick, "VirtualService %s was not reconciled", name)
	if !ok {
		f.t.Fatalf("VirtualService %s/%s status: %v", f.ns, name, &last.Status)
	}
	return last
}

func vsSplit(primary, canary int32) vsMod {
	return withHTTP(httpTo(dests(dest("podinfo-primary", uint32(svcPort), primary), dest("podinfo-canary", uint32(svcPort), canary))))
}

func TestIstioWeightedSplit(t *testing.T) {
	t.Parallel()
	const n = 2000
	// draws are evenly spread over [0, 1): exactly 90% of them fall below 0.9.
	var draws atomic.Int64
	f := newFixture(t, func(o *Options) {
		o.Rand = func() float64 { return (float64(draws.Add(1)-1) + 0.5) / n }
	})
	f.primaryAndCanary()
	f.virtualService("podinfo", withHosts(host), vsSplit(90, 10))
	f.waitReconciled("podinfo")
	require.Zero(t, draws.Load(), "no request has needed a weighted choice yet")

	var got []response
	for range n {
		got = append(got, f.get(host, "/"))
	}
	assert.Equal(t, map[string]int{f.backend("podinfo-primary"): 1800, f.backend("podinfo-canary"): 200},
		count(got, func(r response) string { return r.backend }))
	assert.Equal(t, map[string]int{"podinfo-primary-a": 900, "podinfo-primary-b": 900, "podinfo-canary-a": 200},
		count(got, func(r response) string { return r.body }))
	assert.Equal(t, int64(n), draws.Load())
}

func TestIstioRouting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, canary := f.primaryAndCanary()
	toPrimary := dests(dest("podinfo-primary", uint32(svcPort), 0))
	toCanary := dests(dest("podinfo-canary."+f.ns+".svc.cluster.local", uint32(svcPort), 0))
	// An HTTPRoute for the same host loses to the VirtualService.
	f.route("podinfo", withHostnames(host), withRule(routeRule(backends(backendTo("podinfo-canary", svcPort, 1)))))
	f.waitAccepted("podinfo")
	f.virtualService("podinfo", withHosts(host, "*.beta.example.com"), withHTTP(
		httpTo(dests(dest("podinfo-canary."+f.ns, uint32(svcPort), 0)), vsMatch(onHeader("x-canary", exact("insider")))),
		httpTo(toCanary, vsMatch(onHeader("cookie", regex(`^(.*?;\s*)?(canary=always)(;.*)?$`)))),
		httpTo(toCanary, vsMatch(onURI(prefix("/beta"))), vsMatch(onQuery("canary", exact("true")))),
		&istionet.HTTPRoute{
			Match:    []*istionet.HTTPMatchRequest{vsMatch(onURI(prefix("/old")))},
			Redirect: &istionet.HTTPRedirect{Uri: "/new"},
		},
		&istionet.HTTPRoute{
			Match:   []*istionet.HTTPMatchRequest{vsMatch(onURI(prefix("/v1/")))},
			Rewrite: &istionet.HTTPRewrite{Uri: "/v2/"},
			Headers: &istionet.Headers{
				Request:  &istionet.Headers_HeaderOperations{Set: map[string]string{"x-env": "prod"}, Add: map[string]string{"x-via": "vs"}, Remove: []string{"x-debug"}},
				Response: &istionet.Headers_HeaderOperations{Set: map[string]string{"x-served-by": "istio"}},
			},
			Route: toCanary,
		},
		&istionet.HTTPRoute{
			Match:   []*istionet.HTTPMatchRequest{vsMatch(onURI(prefix("/slow")))},
			Timeout: seconds(300 * time.Millisecond),
			Route:   toPrimary,
		},
		&istionet.HTTPRoute{
			Match:          []*istionet.HTTPMatchRequest{vsMatch(onURI(exact("/gone")))},
			DirectResponse: &istionet.HTTPDirectResponse{Status: http.StatusGone, Body: &istionet.HTTPBody{Specifier: &istionet.HTTPBody_String_{String_: "gone"}}},
		},
		httpTo(toPrimary, vsMatch(onURI(prefix("/")))),
		// Never reached: the entry before takes every path, though this one is more specific.
		httpTo(toCanary, vsMatch(onURI(exact("/shadowed")))),
	))
	f.waitReconciled("podinfo")

	tests := []struct {
		name    string
		host    string
		target  string
		headers []string
		want    string
	}{
		{name: "the catch-all entry", host: host, target: "/", want: "podinfo-primary"},
		{name: "header", host: host, target: "/", headers: []string{"X-Canary", "insider"}, want: "podinfo-canary"},
		{name: "another header value", host: host, target: "/", headers: []string{"X-Canary", "outsider"}, want: "podinfo-primary"},
		{name: "cookie", host: host, target: "/", headers: []string{"Cookie", "session=1; canary=always"}, want: "podinfo-canary"},
		{name: "another cookie", host: host, target: "/", headers: []string{"Cookie", "canary=never"}, want: "podinfo-primary"},
		{name: "uri prefix", host: host, target: "/betamax", want: "podinfo-canary"},
		{name: "matches are ORed", host: host, target: "/?canary=true", want: "podinfo-canary"},
		{name: "the first match wins", host: host, target: "/shadowed", want: "podinfo-primary"},
		{name: "wildcard host", host: "a.beta.example.com", target: "/", want: "podinfo-primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.get(tt.host, tt.target, tt.headers...)
			assert.Equal(t, http.StatusOK, r.code)
			assert.Equal(t, f.backend(tt.want), r.backend)
			assert.True(t, strings.HasPrefix(r.body, tt.want+"-"), "answered by pod %q", r.body)
		})
	}

	t.Run("unknown host", func(t *testing.T) {
		assert.Equal(t, http.StatusNotFound, f.get("beta.example.com", "/").code)
	})
	t.Run("redirect", func(t *testing.T) {
		r := f.get(host+":8080", "/old/page?x=1")
		assert.Equal(t, http.StatusMovedPermanently, r.code)
		assert.Equal(t, "http://"+host+":8080/new?x=1", r.header.Get("Location"))
	})
	t.Run("direct response", func(t *testing.T) {
		r := f.get(host, "/gone")
		assert.Equal(t, http.StatusGone, r.code)
		assert.Equal(t, "gone", r.body)
	})
	t.Run("rewrite and headers", func(t *testing.T) {
		r := f.get(host, "/v1/users", "X-Debug", "1", "X-Env", "dev")
		require.Equal(t, http.StatusOK, r.code)
		assert.Equal(t, "istio", r.header.Get("X-Served-By"))
		var seen *http.Request
		for _, req := range canary.requests() {
			if req.URL.Path == "/v2/users" {
				seen = req
			}
		}
		require.NotNil(t, seen, "the canary received /v2/users")
		assert.Equal(t, "prod", seen.Header.Get("X-Env"))
		assert.Equal(t, "vs", seen.Header.Get("X-Via"))
		assert.Empty(t, seen.Header.Get("X-Debug"))
		assert.Equal(t, host, seen.Host)
	})
	t.Run("timeout", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, f.get(host, "/slow?sleep=10ms").code)
		r := f.get(host, "/slow?sleep=5s")
		assert.Equal(t, http.StatusGatewayTimeout, r.code)
		assert.Equal(t, f.backend("podinfo-primary"), r.backend)
	})
}

func TestIstioMirror(t *testing.T) {
	t.Parallel()
	// Every other draw is below one half: exactly half of the requests are mirrored.
	var draws atomic.Int64
	f := newFixture(t, func(o *Options) {
		o.Rand = func() float64 { return []float64{0.25, 0.75}[(draws.Add(1)-1)%2] }
	})
	primary, canary := f.primaryAndCanary()
	f.virtualService("podinfo", withHosts(host), withHTTP(&istionet.HTTPRoute{
		Route:            dests(dest("podinfo-primary", uint32(svcPort), 0)),
		Mirror:           destination("podinfo-canary", uint32(svcPort)),
		MirrorPercentage: &istionet.Percent{Value: 50},
	}))
	f.waitReconciled("podinfo")
	before := len(canary.requests())

	const n = 20
	for range n {
		r := f.do(http.MethodPost, host, "/echo", strings.NewReader("payload"))
		require.Equal(t, http.StatusOK, r.code)
		require.Equal(t, f.backend("podinfo-primary"), r.backend, "the client sees the primary's response")
	}
	require.Eventually(t, func() bool { return len(canary.requests())-before == n/2 }, waitTimeout, tick,
		"the mirror did not receive a copy of half the requests")
	for _, req := range canary.requests()[before:] {
		assert.Equal(t, host+"-shadow", req.Host)
		assert.Equal(t, "/echo", req.URL.Path)
	}
	echoed := 0
	for _, p := range primary {
		for _, req := range p.requests() {
			if req.URL.Path == "/echo" {
				echoed++
			}
		}
	}
	assert.Equal(t, n, echoed)
	assert.Equal(t, int64(n), draws.Load(), "one draw per request, for the mirror")
	// Shadow traffic counts like any other request to the canary: the warm-up's one and the
	// mirrored ones, each recorded once its response is in.
	assert.Eventually(t, func() bool {
		return value(f.scrape()["istio_requests_total"], map[string]string{
			"reporter": "destination", "destination_workload": "podinfo-canary", "destination_workload_namespace": f.ns,
			"destination_service_name": "podinfo-canary", "destination_service_namespace": f.ns, "response_code": "200",
		}) == float64(1+n/2)
	}, waitTimeout, tick, "mirrored requests are counted for the canary")
}

func TestIstioStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.primaryAndCanary()
	// The Gateway named as <namespace>/<name>.
	f.create(newVirtualService(f.ns, "podinfo", withGateways("mesh", f.ns+"/"+gatewayName), withHosts(host), vsSplit(90, 10)))

	first := f.waitReconciled("podinfo")
	c := reconciledCondition(first)
	assert.Equal(t, messageReconciled, c.Message)
	require.NotNil(t, c.LastTransitionTime)
	// Istio writes the generation as a string, and so does the data plane.
	raw := &unstructured.Unstructured{}
	raw.SetGroupVersionKind(istionetv1.SchemeGroupVersion.WithKind("VirtualService"))
	require.NoError(t, env.Client.Get(context.Background(), client.ObjectKeyFromObject(first), raw))
	observed, _, _ := unstructured.NestedFieldNoCopy(raw.Object, "status", "observedGeneration")
	assert.Equal(t, "1", observed)

	// Another condition, as Istio's analysis might write, is kept.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vs := f.getVirtualService("podinfo")
		vs.Status.Conditions = append(vs.Status.Conditions, &istiometa.IstioCondition{
			Type: "Analyzed", Status: "True", LastTransitionTime: timestamppb.Now(),
		})
		return env.Client.Status().Update(context.Background(), vs)
	}))

	// The weight change is a new generation; once it is reconciled, the table has it: every
	// request goes to the canary at once.
	changed := f.updateVirtualService("podinfo", func(vs *istionetv1.VirtualService) {
		vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = 0, 100
	})
	require.Greater(t, changed.Generation, first.Generation)
	second := f.waitReconciled("podinfo")
	assert.Equal(t, changed.Generation, second.Generation)
	for range 20 {
		require.Equal(t, f.backend("podinfo-canary"), f.get(host, "/").backend)
	}
	require.Len(t, second.Status.Conditions, 2)
	assert.Equal(t, "Analyzed", second.Status.Conditions[1].Type, "the other condition is preserved")
	assert.True(t, reconciledCondition(second).LastTransitionTime.AsTime().Equal(c.LastTransitionTime.AsTime()),
		"Reconciled stayed True, so its lastTransitionTime stays")
}

func TestVirtualServiceOfAnotherGateway(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.primaryAndCanary()
	to := withHTTP(httpTo(dests(dest("podinfo-primary", uint32(svcPort), 0))))
	ignored := []*istionetv1.VirtualService{
		newVirtualService(f.ns, "private", withGateways("private-gw"), withHosts("private.example.com"), to),
		newVirtualService(f.ns, "mesh", withGateways("mesh"), withHosts("mesh.example.com"), to),
		newVirtualService(f.ns, "sidecars", withHosts("sidecars.example.com"), to),
		newVirtualService(f.ns, "elsewhere", withGateways("elsewhere/"+gatewayName), withHosts("elsewhere.example.com"), to),
	}
	for _, vs := range ignored {
		f.create(vs)
	}
	// A VirtualService created later and reconciled means the data plane has seen the others.
	f.virtualService("later", withHosts("later.example.com"), to)
	f.waitReconciled("later")

	for _, vs := range ignored {
		assert.Equal(t, http.StatusNotFound, f.get(vs.Spec.Hosts[0], "/").code, vs.Name)
		got := f.getVirtualService(vs.Name)
		assert.Zero(t, got.Status.ObservedGeneration, "no status for %s", vs.Name)
		assert.Empty(t, got.Status.Conditions, "no status for %s", vs.Name)
	}
	assert.Equal(t, http.StatusOK, f.get("later.example.com", "/").code)
}

func TestIstioMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("podinfo-primary", "podinfo-primary")
	f.startPod("podinfo-primary-7d4b9c8f5-x2x7k", "podinfo-primary", true, ownedBy("podinfo-primary-7d4b9c8f5"))
	f.virtualService("podinfo", withHosts(host), withHTTP(httpTo(dests(dest("podinfo-primary", uint32(svcPort), 0)))))
	f.virtualService("broken", withHosts("broken.example.com"), withHTTP(httpTo(dests(dest("podinfo-canary", uint32(svcPort), 0)))))
	f.waitReconciled("podinfo")
	f.waitReconciled("broken")
	f.waitServed(host, "/", f.backend("podinfo-primary")) // the first request counted
	for range 4 {
		require.Equal(t, http.StatusOK, f.get(host, "/").code)
	}
	for range 2 {
		require.Equal(t, http.StatusInternalServerError, f.get("broken.example.com", "/").code, "no such Service")
	}

	m := f.scrape()
	assert.Equal(t, 5.0, value(m["dataplane_requests_total"], map[string]string{
		"route_kind": kindVirtualService, "route_namespace": f.ns, "route_name": "podinfo",
		"backend": f.backend("podinfo-primary"), "code": "200"}))
	assert.Equal(t, 2.0, value(m["dataplane_requests_total"], map[string]string{
		"route_kind": kindVirtualService, "route_namespace": f.ns, "route_name": "broken",
		"backend": f.backend("podinfo-canary"), "code": "500"}))
	assert.Equal(t, 5.0, value(m["istio_requests_total"], map[string]string{
		"reporter": "destination", "destination_workload": "podinfo-primary", "destination_workload_namespace": f.ns,
		"destination_service_name": "podinfo-primary", "destination_service_namespace": f.ns, "response_code": "200",
	}))
	assert.Equal(t, 5.0, value(m["envoy_cluster_upstream_rq"], map[string]string{
		"envoy_cluster_name": f.ns + "_podinfo-primary_80", "envoy_response_code": "200"}))
}
