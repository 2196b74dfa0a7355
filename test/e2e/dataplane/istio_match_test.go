package dataplane

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
	istiometa "istio.io/api/meta/v1alpha1"
	istionet "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// served is a VirtualService in namespace infra, where testGateway is, naming it by its short
// name.
func served(name string, mods ...vsMod) *istionetv1.VirtualService {
	return newVirtualService("infra", name, append([]vsMod{withGateways("public-gw")}, mods...)...)
}

// istioWinner names the entry of spec.http a request goes to, "" for none.
func istioWinner(t istioTable, r *http.Request) string {
	c := t.match(r, 0)
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%s#%d", c.route.vs.key.Name, c.route.index)
}

func TestIstioMatch(t *testing.T) {
	to := dests(dest("podinfo", 9898, 0))
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		anyHost  = "podinfo.example.com"
		cookieRE = `^(.*?;\s*)?(canary=always)(;.*)?$`
	)
	tests := []struct {
		name    string
		vss     []*istionetv1.VirtualService
		method  string
		target  string
		host    string
		headers map[string]string
		want    string
	}{
		{
			name:   "an entry without matches takes every request",
			vss:    []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(httpTo(to)))},
			target: "/anything",
			want:   "a#0",
		},
		{
			name: "the first entry that matches wins, not the most specific",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onURI(prefix("/")))),
				httpTo(to, vsMatch(onURI(exact("/exact")))),
			))},
			target: "/exact",
			want:   "a#0",
		},
		{
			name: "a uri prefix is a string prefix, not whole path elements",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onURI(prefix("/beta")))),
				httpTo(to),
			))},
			target: "/betamax",
			want:   "a#0",
		},
		{
			name: "a uri regex matches the whole path",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onURI(regex("/v[0-9]")))),
				httpTo(to),
			))},
			target: "/v1/users",
			want:   "a#1",
		},
		{
			name: "ignoreUriCase",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onURI(exact("/Admin")), ignoringURICase())),
			))},
			target: "/aDMIN",
			want:   "a#0",
		},
		{
			name: "matches are ORed",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onURI(exact("/one"))), vsMatch(onURI(exact("/two")))),
				httpTo(to),
			))},
			target: "/two",
			want:   "a#0",
		},
		{
			name: "conditions within a match are ANDed",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onURI(prefix("/api")), onHeader("x-canary", exact("insider")))),
				httpTo(to),
			))},
			target:  "/web",
			headers: map[string]string{"X-Canary": "insider"},
			want:    "a#1",
		},
		{
			name: "a cookie by a header regex",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onHeader("cookie", regex(cookieRE)))),
				httpTo(to),
			))},
			target:  "/",
			headers: map[string]string{"Cookie": "session=1; canary=always"},
			want:    "a#0",
		},
		{
			name: "a header prefix",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onHeader("user-agent", prefix("curl/")))),
				httpTo(to),
			))},
			target:  "/",
			headers: map[string]string{"User-Agent": "curl/8.0"},
			want:    "a#0",
		},
		{
			name: "an empty header match asks for presence",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onHeader("x-debug", &istionet.StringMatch{}))),
				httpTo(to),
			))},
			target:  "/",
			headers: map[string]string{"X-Debug": ""},
			want:    "a#0",
		},
		{
			name: "withoutHeaders",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(withoutHeader("x-canary", exact("insider")))),
				httpTo(to),
			))},
			target:  "/",
			headers: map[string]string{"X-Canary": "insider"},
			want:    "a#1",
		},
		{
			name: "query parameters",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onQuery("version", exact("2")))),
				httpTo(to, vsMatch(onQuery("version", prefix("3.")))),
				httpTo(to, vsMatch(onQuery("version", regex("[4-9]")))),
				httpTo(to),
			))},
			target: "/?version=3.1",
			want:   "a#1",
		},
		{
			name: "method",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onMethod(exact("POST")))),
				httpTo(to),
			))},
			method: http.MethodPost,
			target: "/",
			want:   "a#0",
		},
		{
			name: "a match for other gateways never holds here",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onGateways("mesh"))),
				httpTo(to, vsMatch(onGateways("infra/public-gw"), onURI(prefix("/")))),
			))},
			target: "/",
			want:   "a#1",
		},
		{
			name: "an entry whose matches are all for other gateways is no catch-all",
			vss: []*istionetv1.VirtualService{served("a", withHosts(anyHost), withHTTP(
				httpTo(to, vsMatch(onGateways("mesh"))),
			))},
			target: "/",
			want:   "",
		},
		{
			name:   "another host",
			vss:    []*istionetv1.VirtualService{served("a", withHosts("other.example.com"), withHTTP(httpTo(to)))},
			target: "/",
			want:   "",
		},
		{
			name: "an exact host before a wildcard before *, whatever their age",
			vss: []*istionetv1.VirtualService{
				served("star", withHosts("*"), vsCreatedAt(old), withHTTP(httpTo(to))),
				served("wildcard", withHosts("*.example.com"), vsCreatedAt(old), withHTTP(httpTo(to))),
				served("exact", withHosts(anyHost), vsCreatedAt(old.Add(time.Hour)), withHTTP(httpTo(to))),
			},
			target: "/",
			want:   "exact#0",
		},
		{
			name:   "* takes every host",
			vss:    []*istionetv1.VirtualService{served("star", withHosts("*"), withHTTP(httpTo(to)))},
			host:   "anything.test",
			target: "/",
			want:   "star#0",
		},
		{
			name:   "a short host also stands for its Service's name",
			vss:    []*istionetv1.VirtualService{served("short", withHosts("podinfo"), withHTTP(httpTo(to)))},
			host:   "podinfo.infra.svc.cluster.local",
			target: "/",
			want:   "short#0",
		},
		{
			name: "VirtualServices for the same host: the oldest first",
			vss: []*istionetv1.VirtualService{
				served("young", withHosts(anyHost), vsCreatedAt(old.Add(time.Hour)), withHTTP(httpTo(to))),
				served("old", withHosts(anyHost), vsCreatedAt(old), withHTTP(httpTo(to))),
			},
			target: "/",
			want:   "old#0",
		},
		{
			name: "an older VirtualService without a matching entry falls through",
			vss: []*istionetv1.VirtualService{
				served("young", withHosts(anyHost), vsCreatedAt(old.Add(time.Hour)), withHTTP(httpTo(to))),
				served("old", withHosts(anyHost), vsCreatedAt(old), withHTTP(httpTo(to, vsMatch(onURI(prefix("/api")))))),
			},
			target: "/",
			want:   "young#0",
		},
		{
			name: "VirtualServices of other gateways are not served",
			vss: []*istionetv1.VirtualService{
				newVirtualService("infra", "mesh", withGateways("mesh"), withHosts(anyHost), withHTTP(httpTo(to))),
				newVirtualService("infra", "private", withGateways("private-gw"), withHosts(anyHost), withHTTP(httpTo(to))),
				newVirtualService("shop", "elsewhere", withGateways("public-gw"), withHosts(anyHost), withHTTP(httpTo(to))),
				newVirtualService("shop", "none", withHosts(anyHost), withHTTP(httpTo(to))),
				newVirtualService("shop", "qualified", withGateways("mesh", "infra/public-gw"), withHosts(anyHost), withHTTP(httpTo(to))),
			},
			target: "/",
			want:   "qualified#0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := buildIstioTable(tt.vss, testGateway)
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = anyHost
			if tt.host != "" {
				r.Host = tt.host
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			assert.Equal(t, tt.want, istioWinner(tbl, r))
		})
	}
}

func TestIstioBuildKeepsWhatItCannotServe(t *testing.T) {
	bad := served("bad", withHosts("podinfo.example.com"), withHTTP(
		httpTo(dests(dest("podinfo", 80, 0)), vsMatch(onURI(regex("(")))),
	))
	tbl := buildIstioTable([]*istionetv1.VirtualService{bad}, testGateway)
	v := tbl.services[types.NamespacedName{Namespace: "infra", Name: "bad"}]
	require.NotNil(t, v)
	assert.ErrorContains(t, v.err, "http[0]: match[0]: uri: invalid regular expression")
	assert.Empty(t, tbl.ordered, "a VirtualService that cannot be compiled carries no traffic")
}

func TestIstioBackend(t *testing.T) {
	tests := []struct {
		host    string
		service string
		invalid bool
	}{
		{host: "podinfo-canary", service: "apps/podinfo-canary"},
		{host: "podinfo-canary.shop", service: "shop/podinfo-canary"},
		{host: "podinfo-canary.shop.svc", service: "shop/podinfo-canary"},
		{host: "podinfo-canary.shop.svc.cluster.local", service: "shop/podinfo-canary"},
		{host: "Podinfo-Canary.shop.svc.cluster.local.", service: "shop/podinfo-canary"},
		{host: "api.example.com.", service: "/api.example.com", invalid: true},
		{host: "a.b.c.d", service: "/a.b.c.d", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			b := istioBackend(destination(tt.host, 8080), "apps")
			assert.Equal(t, tt.service, b.String())
			assert.Equal(t, tt.invalid, b.invalid)
			assert.Equal(t, int32(8080), b.port)
		})
	}
}

func TestIstioWeights(t *testing.T) {
	vs := served("a", withHosts("podinfo.example.com"), withHTTP(
		httpTo(dests(dest("podinfo-primary", 80, 0))),
		httpTo(dests(dest("podinfo-primary", 80, 90), dest("podinfo-canary", 80, 10))),
		&istionet.HTTPRoute{Route: dests(dest("podinfo-primary", 0, 0)), Timeout: seconds(0)},
		&istionet.HTTPRoute{Route: dests(dest("podinfo-primary", 0, 0)), Timeout: seconds(2 * time.Second)},
	))
	v := buildIstioTable([]*istionetv1.VirtualService{vs}, testGateway).ordered[0]
	require.Len(t, v.routes, 4)
	assert.Equal(t, int32(100), v.routes[0].backends[0].weight, "a single destination without a weight takes all")
	assert.Equal(t, []int32{90, 10}, []int32{v.routes[1].backends[0].weight, v.routes[1].backends[1].weight})
	assert.Equal(t, defaultTimeout, v.routes[0].timeout)
	assert.Equal(t, time.Duration(0), v.routes[2].timeout, "0s disables the timeout")
	assert.Equal(t, 2*time.Second, v.routes[3].timeout)
}

func TestIstioRedirectLocation(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		host     string
		redirect *istionet.HTTPRedirect
		match    *istioMatch
		want     string
	}{
		{
			name: "uri keeps the host, its port and the query", target: "/old/page?x=1", host: "shop.example.com:8080",
			redirect: &istionet.HTTPRedirect{Uri: "/new"},
			want:     "http://shop.example.com:8080/new?x=1",
		},
		{
			name: "a uri with a query replaces it", target: "/old?x=1", host: "shop.example.com",
			redirect: &istionet.HTTPRedirect{Uri: "/new?y=2"},
			want:     "http://shop.example.com/new?y=2",
		},
		{
			name: "authority", target: "/page", host: "shop.example.com:8080",
			redirect: &istionet.HTTPRedirect{Authority: "www.example.com"},
			want:     "http://www.example.com/page",
		},
		{
			name: "scheme drops the port", target: "/page", host: "shop.example.com:8080",
			redirect: &istionet.HTTPRedirect{Scheme: "https"},
			want:     "https://shop.example.com/page",
		},
		{
			name: "port", target: "/page", host: "shop.example.com",
			redirect: &istionet.HTTPRedirect{RedirectPort: &istionet.HTTPRedirect_Port{Port: 8443}, Scheme: "https"},
			want:     "https://shop.example.com:8443/page",
		},
		{
			name: "derived from the request port", target: "/page", host: "shop.example.com",
			redirect: &istionet.HTTPRedirect{RedirectPort: &istionet.HTTPRedirect_DerivePort{DerivePort: istionet.HTTPRedirect_FROM_REQUEST_PORT}},
			want:     "http://shop.example.com:31080/page",
		},
		{
			name: "prefix rewrite of a prefix match", target: "/old/page", host: "shop.example.com",
			redirect: &istionet.HTTPRedirect{PrefixRewrite: "/new"},
			match:    &istioMatch{uri: &stringMatch{kind: matchPrefix, value: "/old"}},
			want:     "http://shop.example.com/new/page",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			r.Host = tt.host
			assert.Equal(t, tt.want, istioRedirectLocation(r, tt.redirect, tt.match, 31080))
		})
	}
}

func TestRewriteIstio(t *testing.T) {
	prefixMatch := &istioMatch{uri: &stringMatch{kind: matchPrefix, value: "/api/"}}
	exactMatch := &istioMatch{uri: &stringMatch{kind: matchExact, value: "/api/v1"}}
	tests := []struct {
		name    string
		rewrite *istionet.HTTPRewrite
		match   *istioMatch
		target  string
		want    string
	}{
		{name: "the matched prefix", rewrite: &istionet.HTTPRewrite{Uri: "/"}, match: prefixMatch, target: "/api/v1?x=1", want: "/v1"},
		{name: "the whole path of an exact match", rewrite: &istionet.HTTPRewrite{Uri: "/v2"}, match: exactMatch, target: "/api/v1", want: "/v2"},
		{name: "an entry without matches has the prefix /", rewrite: &istionet.HTTPRewrite{Uri: "/app/"}, target: "/page", want: "/app/page"},
		{
			name:    "a regex rewrite with Envoy's groups",
			rewrite: &istionet.HTTPRewrite{UriRegexRewrite: &istionet.RegexRewrite{Match: `^/service/([^/]+)(/.*)$`, Rewrite: `\2/instance/\1`}},
			target:  "/service/foo/v1/api",
			want:    "/v1/api/instance/foo",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := served("a", withHosts("h"), withHTTP(&istionet.HTTPRoute{Route: dests(dest("podinfo", 0, 0)), Rewrite: tt.rewrite}))
			ru := buildIstioTable([]*istionetv1.VirtualService{vs}, testGateway).ordered[0].routes[0]
			out := httptest.NewRequest(http.MethodGet, tt.target, nil)
			rewriteIstio(out, ru, tt.match)
			assert.Equal(t, tt.want, out.URL.Path)
		})
	}
}

func TestSampledPercent(t *testing.T) {
	calls := 0
	rnd := func(x float64) func() float64 { return func() float64 { calls++; return x } }
	assert.True(t, sampledPercent(100, rnd(0.99)))
	assert.False(t, sampledPercent(0, rnd(0)))
	assert.Zero(t, calls, "no draw without a choice")
	assert.True(t, sampledPercent(0.5, rnd(0.004)))
	assert.False(t, sampledPercent(0.5, rnd(0.006)))
	assert.Equal(t, 2, calls)
}

func TestDesiredIstioStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	other := &istiometa.IstioCondition{Type: "Other", Status: "True"}
	v := &virtualService{generation: 3}

	got, changed := desiredIstioStatus(&istiometa.IstioStatus{Conditions: []*istiometa.IstioCondition{other}}, v, testGateway, t0)
	require.True(t, changed)
	assert.Equal(t, int64(3), got.ObservedGeneration)
	require.Len(t, got.Conditions, 2)
	assert.Equal(t, "Other", got.Conditions[0].Type, "other conditions stay")
	rec := got.Conditions[1]
	assert.Equal(t, []string{conditionReconciled, "True", messageReconciled}, []string{rec.Type, rec.Status, rec.Message})
	assert.Equal(t, int64(3), rec.ObservedGeneration)

	_, changed = desiredIstioStatus(got, v, testGateway, t0.Add(time.Minute))
	assert.False(t, changed, "nothing to write for the same generation")

	next, changed := desiredIstioStatus(got, &virtualService{generation: 4}, testGateway, t0.Add(time.Minute))
	require.True(t, changed)
	assert.Equal(t, int64(4), next.ObservedGeneration)
	assert.Equal(t, timestamppb.New(t0).AsTime(), next.Conditions[1].LastTransitionTime.AsTime(), "the status stayed True")
	assert.Equal(t, int64(3), got.ObservedGeneration, "the current status is not changed")

	broken, changed := desiredIstioStatus(next, &virtualService{generation: 5, err: fmt.Errorf("http[0]: bad")}, testGateway, t0.Add(time.Hour))
	require.True(t, changed)
	assert.Equal(t, "False", broken.Conditions[1].Status)
	assert.Equal(t, reasonUnsupportedValue, broken.Conditions[1].Reason)
	assert.Equal(t, "Gateway infra/public-gw cannot serve the VirtualService: http[0]: bad.", broken.Conditions[1].Message)
	assert.Equal(t, t0.Add(time.Hour), broken.Conditions[1].LastTransitionTime.AsTime())
}
