package dataplane

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const host = "podinfo.example.com"

// primaryAndCanary starts the two Services trafficctl splits between, with two primary pods
// and one canary pod, and routes for warming up that send all of warm-<service>.test to each
// without a weighted choice, so that waiting for them draws no random numbers.
func (f *fixture) primaryAndCanary() (primary []*fakePod, canary *fakePod) {
	f.t.Helper()
	f.service("podinfo-primary", "podinfo-primary")
	f.service("podinfo-canary", "podinfo-canary")
	primary = []*fakePod{
		f.startPod("podinfo-primary-a", "podinfo-primary", true),
		f.startPod("podinfo-primary-b", "podinfo-primary", true),
	}
	canary = f.startPod("podinfo-canary-a", "podinfo-canary", true)
	for _, svc := range []string{"podinfo-primary", "podinfo-canary"} {
		f.route("warm-"+svc, withHostnames("warm-"+svc+".test"), withRule(routeRule(backends(backendTo(svc, svcPort, 1)))))
	}
	for _, svc := range []string{"podinfo-primary", "podinfo-canary"} {
		f.waitAccepted("warm-" + svc)
		f.waitServed("warm-"+svc+".test", "/", f.backend(svc))
	}
	return primary, canary
}

func split(primary, canary int32) routeMod {
	return withRule(routeRule(backends(
		backendTo("podinfo-primary", svcPort, primary),
		backendTo("podinfo-canary", svcPort, canary),
	)))
}

func TestWeightedSplit(t *testing.T) {
	t.Parallel()
	const n = 2000

	t.Run("seeded", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, func(o *Options) { o.Rand = rand.New(rand.NewPCG(1, 2)).Float64 })
		f.primaryAndCanary()
		f.route("podinfo", withHostnames(host), split(90, 10))
		f.waitAccepted("podinfo")

		var got []response
		for range n {
			got = append(got, f.get(host, "/"))
		}
		byBackend := count(got, func(r response) string { return r.backend })
		// 200 expected; the standard deviation is sqrt(2000 * 0.9 * 0.1) ≈ 13.4.
		assert.InDelta(t, 200, byBackend[f.backend("podinfo-canary")], 60, "canary share of %d: %v", n, byBackend)
		assert.Equal(t, n, byBackend[f.backend("podinfo-primary")]+byBackend[f.backend("podinfo-canary")], "%v", byBackend)
		assert.Equal(t, map[int]int{http.StatusOK: n}, countCodes(got))
	})

	t.Run("deterministic", func(t *testing.T) {
		t.Parallel()
		// draws are evenly spread over [0, 1): exactly 90% of them fall below 0.9.
		var draws atomic.Int64
		f := newFixture(t, func(o *Options) {
			o.Rand = func() float64 { return (float64(draws.Add(1)-1) + 0.5) / n }
		})
		f.primaryAndCanary()
		f.route("podinfo", withHostnames(host), split(90, 10))
		f.waitAccepted("podinfo")
		require.Zero(t, draws.Load(), "no request has needed a weighted choice yet")

		var got []response
		for range n {
			got = append(got, f.get(host, "/"))
		}
		assert.Equal(t, map[string]int{f.backend("podinfo-primary"): 1800, f.backend("podinfo-canary"): 200},
			count(got, func(r response) string { return r.backend }))
		// Round-robin over the primary's two pods; every response is the pod's own.
		assert.Equal(t, map[string]int{"podinfo-primary-a": 900, "podinfo-primary-b": 900, "podinfo-canary-a": 200},
			count(got, func(r response) string { return r.body }))
		assert.Equal(t, int64(n), draws.Load())
		assert.Equal(t, "1.0.0", got[0].header.Get("X-Version"), "upstream headers reach the client")
	})
}

func countCodes(rs []response) map[int]int {
	out := map[int]int{}
	for _, r := range rs {
		out[r.code]++
	}
	return out
}

func TestZeroWeights(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.primaryAndCanary()
	f.route("podinfo", withHostnames(host), split(100, 0))
	f.route("nowhere", withHostnames("nowhere.example.com"), split(0, 0))
	f.waitAccepted("podinfo")
	f.waitAccepted("nowhere")

	for range 200 {
		r := f.get(host, "/")
		require.Equal(t, http.StatusOK, r.code)
		require.Equal(t, f.backend("podinfo-primary"), r.backend, "a backend of weight 0 is never chosen")
	}
	assert.Equal(t, http.StatusInternalServerError, f.get("nowhere.example.com", "/").code, "all weights 0")
}

func TestRouting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, canary := f.primaryAndCanary()
	toPrimary := backends(backendTo("podinfo-primary", svcPort, 1))
	toCanary := backends(backendTo("podinfo-canary", svcPort, 1))
	f.route("podinfo", withHostnames(host),
		withRule(routeRule(toPrimary)),
		withRule(routeRule(toCanary, match(header(gatewayv1.HeaderMatchExact, "x-canary", "insider")))),
		withRule(routeRule(toCanary, match(header(gatewayv1.HeaderMatchRegularExpression, "cookie", `^(.*?;\s*)?(canary=always)(;.*)?$`)))),
		withRule(routeRule(toCanary, match(path(gatewayv1.PathMatchPathPrefix, "/beta")))),
		withRule(gatewayv1.HTTPRouteRule{
			Matches: []gatewayv1.HTTPRouteMatch{match(path(gatewayv1.PathMatchPathPrefix, "/old"))},
			Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gatewayv1.HTTPRequestRedirectFilter{
				Path:       &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/new")},
				StatusCode: ptr.To(http.StatusMovedPermanently),
			}}},
		}),
		withRule(gatewayv1.HTTPRouteRule{
			Matches: []gatewayv1.HTTPRouteMatch{match(path(gatewayv1.PathMatchExact, "/headers"))},
			Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
				Set:    []gatewayv1.HTTPHeader{{Name: "X-Env", Value: "prod"}},
				Remove: []string{"X-Debug"},
			}}},
			BackendRefs: toCanary,
		}),
	)
	f.route("beta", withHostnames("beta.example.com"), withRule(routeRule(toCanary)))
	f.waitAccepted("podinfo")
	f.waitAccepted("beta")

	tests := []struct {
		name    string
		host    string
		target  string
		headers []string
		want    string
	}{
		{name: "default rule", host: host, target: "/", want: "podinfo-primary"},
		{name: "the port of the Host header is ignored", host: host + ":8080", target: "/", want: "podinfo-primary"},
		{name: "header", host: host, target: "/", headers: []string{"X-Canary", "insider"}, want: "podinfo-canary"},
		{name: "another header value", host: host, target: "/", headers: []string{"X-Canary", "outsider"}, want: "podinfo-primary"},
		{name: "cookie", host: host, target: "/", headers: []string{"Cookie", "session=1; canary=always"}, want: "podinfo-canary"},
		{name: "another cookie", host: host, target: "/", headers: []string{"Cookie", "canary=never"}, want: "podinfo-primary"},
		{name: "path", host: host, target: "/beta/feature", want: "podinfo-canary"},
		{name: "path elements", host: host, target: "/betamax", want: "podinfo-primary"},
		{name: "host", host: "beta.example.com", target: "/", want: "podinfo-canary"},
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
		assert.Equal(t, http.StatusNotFound, f.get("unknown.example.com", "/").code)
	})
	t.Run("redirect", func(t *testing.T) {
		r := f.get(host, "/old/page?x=1")
		assert.Equal(t, http.StatusMovedPermanently, r.code)
		_, port, _ := strings.Cut(strings.TrimPrefix(f.dp.URL(), "http://"), ":")
		assert.Equal(t, "http://"+host+":"+port+"/new/page?x=1", r.header.Get("Location"))
	})
	t.Run("request headers", func(t *testing.T) {
		r := f.get(host, "/headers", "X-Debug", "1", "X-Env", "dev")
		require.Equal(t, http.StatusOK, r.code)
		var seen *http.Request
		for _, req := range canary.requests() {
			if req.URL.Path == "/headers" {
				seen = req
			}
		}
		require.NotNil(t, seen)
		assert.Equal(t, "prod", seen.Header.Get("X-Env"))
		assert.Empty(t, seen.Header.Get("X-Debug"))
		assert.Equal(t, host, seen.Host, "the Host header reaches the pod unchanged")
	})
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.primaryAndCanary()
	f.route("podinfo", withHostnames(host), withRule(gatewayv1.HTTPRouteRule{
		BackendRefs: backends(backendTo("podinfo-primary", svcPort, 1)),
		Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("300ms"))},
	}))
	f.waitAccepted("podinfo")

	assert.Equal(t, http.StatusOK, f.get(host, "/?sleep=10ms").code)
	r := f.get(host, "/?sleep=5s")
	assert.Equal(t, http.StatusGatewayTimeout, r.code)
	assert.Equal(t, f.backend("podinfo-primary"), r.backend)
}

func TestServiceWithoutReadyPod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("podinfo-canary", "podinfo-canary")
	pod := f.startPod("podinfo-canary-a", "podinfo-canary", false)
	f.route("podinfo", withHostnames(host), withRule(routeRule(backends(backendTo("podinfo-canary", svcPort, 1)))))
	f.waitAccepted("podinfo")

	r := f.get(host, "/")
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Equal(t, f.backend("podinfo-canary"), r.backend)
	assert.Empty(t, pod.requests(), "a pod that is not Ready gets no traffic")

	f.setReady(pod, true)
	f.waitServed(host, "/", f.backend("podinfo-canary"))
	f.setReady(pod, false)
	require.Eventually(t, func() bool { return f.get(host, "/").code == http.StatusServiceUnavailable }, waitTimeout, tick)
}

func TestRouteStatus(t *testing.T) {
	t.Parallel()
	// This one plays the default Gateway, infra/public-gw, which no other test uses.
	f := newFixture(t, func(o *Options) { o.GatewayName, o.GatewayNamespace = "", "" })
	f.primaryAndCanary()
	f.route("podinfo", withHostnames(host), split(90, 10))

	first := f.waitAccepted("podinfo")
	p := ourParent(first)
	assert.Equal(t, gatewayv1.ObjectName(DefaultGatewayName), p.ParentRef.Name)
	assert.Equal(t, ptr.To(gatewayv1.Namespace(DefaultGatewayNamespace)), p.ParentRef.Namespace)
	resolved := meta.FindStatusCondition(p.Conditions, string(gatewayv1.RouteConditionResolvedRefs))
	require.NotNil(t, resolved)
	assert.Equal(t, metav1.ConditionTrue, resolved.Status)
	assert.Equal(t, first.Generation, resolved.ObservedGeneration)

	// Another controller reports on the same route.
	other := gatewayv1.RouteParentStatus{
		ParentRef:      gatewayv1.ParentReference{Name: "mesh", Kind: ptr.To(gatewayv1.Kind("Service")), Group: ptr.To(gatewayv1.Group(""))},
		ControllerName: "example.com/mesh",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			ObservedGeneration: first.Generation, LastTransitionTime: metav1.Now()}},
	}
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r := f.getRoute("podinfo")
		r.Status.Parents = append(r.Status.Parents, other)
		return env.Client.Status().Update(context.Background(), r)
	}))

	// The weight change is a new generation; once it is reported, the table has it: every
	// request goes to the canary at once.
	changed := f.updateRoute("podinfo", func(r *gatewayv1.HTTPRoute) {
		r.Spec.Rules[0].BackendRefs[0].Weight = ptr.To[int32](0)
		r.Spec.Rules[0].BackendRefs[1].Weight = ptr.To[int32](100)
	})
	require.Greater(t, changed.Generation, first.Generation)
	second := f.waitAccepted("podinfo")
	assert.Equal(t, changed.Generation, second.Generation)
	for range 20 {
		require.Equal(t, f.backend("podinfo-canary"), f.get(host, "/").backend)
	}
	require.Len(t, second.Status.Parents, 2)
	var kept *gatewayv1.RouteParentStatus
	for i := range second.Status.Parents {
		if second.Status.Parents[i].ControllerName == "example.com/mesh" {
			kept = &second.Status.Parents[i]
		}
	}
	require.NotNil(t, kept, "the other controller's entry is preserved")
	assert.Equal(t, first.Generation, kept.Conditions[0].ObservedGeneration)
	ours := meta.FindStatusCondition(ourParent(second).Conditions, string(gatewayv1.RouteConditionAccepted))
	assert.Equal(t, "Accepted", ours.Reason)
	assert.Equal(t, "Route is accepted by Gateway infra/public-gw.", ours.Message)
}

func TestUnresolvedBackend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.route("podinfo", withHostnames(host), withRule(routeRule(backends(backendTo("podinfo-canary", svcPort, 1)))))

	route := f.waitAccepted("podinfo")
	resolved := meta.FindStatusCondition(ourParent(route).Conditions, string(gatewayv1.RouteConditionResolvedRefs))
	require.NotNil(t, resolved)
	assert.Equal(t, metav1.ConditionFalse, resolved.Status)
	assert.Equal(t, string(gatewayv1.RouteReasonBackendNotFound), resolved.Reason)
	assert.Equal(t, "Service "+f.ns+"/podinfo-canary does not exist.", resolved.Message)
	assert.Equal(t, route.Generation, resolved.ObservedGeneration)
	assert.Equal(t, http.StatusInternalServerError, f.get(host, "/").code)

	// The Service appears: the same generation becomes resolved, and traffic flows.
	f.service("podinfo-canary", "podinfo-canary")
	f.startPod("podinfo-canary-a", "podinfo-canary", true)
	require.Eventually(t, func() bool {
		c := meta.FindStatusCondition(ourParent(f.getRoute("podinfo")).Conditions, string(gatewayv1.RouteConditionResolvedRefs))
		return c.Status == metav1.ConditionTrue && c.Reason == string(gatewayv1.RouteReasonResolvedRefs)
	}, waitTimeout, tick)
	f.waitServed(host, "/", f.backend("podinfo-canary"))
}

func TestRouteOfAnotherGateway(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.primaryAndCanary()
	ignored := newRoute(f.ns, "elsewhere", withParent(f.ns, "private-gw"), withHostnames("elsewhere.example.com"),
		withRule(routeRule(backends(backendTo("podinfo-primary", svcPort, 1)))))
	ignored.Generation = 0
	require.NoError(t, env.Client.Create(context.Background(), ignored))
	// A route created later and reported on means the data plane has seen the earlier one.
	f.route("later", withHostnames("later.example.com"), withRule(routeRule(backends(backendTo("podinfo-primary", svcPort, 1)))))
	f.waitAccepted("later")

	assert.Equal(t, http.StatusNotFound, f.get("elsewhere.example.com", "/").code)
	assert.Empty(t, f.getRoute("elsewhere").Status.Parents, "no status for a route of another Gateway")
}

func TestMirror(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	primary, canary := f.primaryAndCanary()
	f.route("podinfo", withHostnames(host), withRule(gatewayv1.HTTPRouteRule{
		BackendRefs: backends(backendTo("podinfo-primary", svcPort, 1)),
		Filters: []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{Name: "podinfo-canary", Port: ptr.To(svcPort)},
		}}},
	}))
	f.waitAccepted("podinfo")
	before := len(canary.requests())

	const n = 20
	for range n {
		r := f.do(http.MethodPost, host, "/echo", strings.NewReader("payload"))
		require.Equal(t, http.StatusOK, r.code)
		require.Equal(t, f.backend("podinfo-primary"), r.backend, "the client sees the primary's response")
		require.True(t, strings.HasPrefix(r.body, "podinfo-primary-"), r.body)
	}
	require.Eventually(t, func() bool { return len(canary.requests())-before == n }, waitTimeout, tick,
		"the mirror did not receive a copy of every request")
	for _, req := range canary.requests()[before:] {
		assert.Equal(t, host+"-shadow", req.Host)
		assert.Equal(t, http.MethodPost, req.Method)
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
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("podinfo-primary", "podinfo-primary")
	f.service("podinfo-canary", "podinfo-canary")
	f.startPod("podinfo-primary-7d4b9c8f5-x2x7k", "podinfo-primary", true, ownedBy("podinfo-primary-7d4b9c8f5"))
	f.startPod("podinfo-canary-5f6d7c8b9-q9w8e", "podinfo-canary", false, ownedBy("podinfo-canary-5f6d7c8b9"))
	f.route("podinfo", withHostnames(host), withRule(routeRule(backends(backendTo("podinfo-primary", svcPort, 1)))))
	f.route("broken", withHostnames("broken.example.com"), withRule(routeRule(backends(backendTo("podinfo-canary", svcPort, 1)))))
	f.waitAccepted("podinfo")
	f.waitAccepted("broken")
	f.waitServed(host, "/", f.backend("podinfo-primary")) // the first request counted
	for range 9 {
		require.Equal(t, http.StatusOK, f.get(host, "/").code)
	}
	for range 3 {
		require.Equal(t, http.StatusServiceUnavailable, f.get("broken.example.com", "/").code)
	}
	for range 2 {
		r := f.get(host, "/?status=500")
		require.Equal(t, http.StatusInternalServerError, r.code, "the backend's status reaches the client")
		require.Equal(t, "1.0.0", r.header.Get("X-Version"))
	}

	m := f.scrape()
	primaryCluster, canaryCluster := f.ns+"_podinfo-primary_80", f.ns+"_podinfo-canary_80"
	assert.Equal(t, 10.0, value(m["envoy_cluster_upstream_rq"], map[string]string{"envoy_cluster_name": primaryCluster, "envoy_response_code": "200"}))
	assert.Equal(t, 2.0, value(m["envoy_cluster_upstream_rq"], map[string]string{"envoy_cluster_name": primaryCluster, "envoy_response_code": "500"}))
	assert.Equal(t, 3.0, value(m["envoy_cluster_upstream_rq"], map[string]string{"envoy_cluster_name": canaryCluster, "envoy_response_code": "503"}))
	assert.GreaterOrEqual(t, value(m["envoy_cluster_upstream_rq_time"], map[string]string{"envoy_cluster_name": primaryCluster}), 12.0)
	assert.NotContains(t, m, "envoy_cluster_upstream_rq_total", "Envoy's counter has no _total suffix")

	istio := func(workload, service, code string) map[string]string {
		return map[string]string{
			"reporter": "destination", "destination_workload": workload, "destination_workload_namespace": f.ns,
			"destination_service_name": service, "destination_service_namespace": f.ns, "response_code": code,
		}
	}
	assert.Equal(t, 10.0, value(m["istio_requests_total"], istio("podinfo-primary", "podinfo-primary", "200")))
	assert.Equal(t, 10.0, value(m["istio_request_duration_milliseconds"], istio("podinfo-primary", "podinfo-primary", "200")))
	assert.Equal(t, 2.0, value(m["istio_requests_total"], istio("podinfo-primary", "podinfo-primary", "500")))
	noPod := istio("unknown", "podinfo-canary", "503")
	noPod["destination_workload_namespace"] = "unknown"
	assert.Equal(t, 3.0, value(m["istio_requests_total"], noPod))

	assert.Equal(t, 10.0, value(m["dataplane_requests_total"], map[string]string{
		"route_kind": kindHTTPRoute, "route_namespace": f.ns, "route_name": "podinfo", "backend": f.backend("podinfo-primary"), "code": "200"}))
	assert.Equal(t, 3.0, value(m["dataplane_requests_total"], map[string]string{
		"route_kind": kindHTTPRoute, "route_namespace": f.ns, "route_name": "broken", "backend": f.backend("podinfo-canary"), "code": "503"}))
}
