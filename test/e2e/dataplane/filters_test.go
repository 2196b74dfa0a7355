package dataplane

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestRedirectLocation(t *testing.T) {
	prefixMatch := &matcher{pathType: gatewayv1.PathMatchPathPrefix, path: "/old"}
	exactMatch := &matcher{pathType: gatewayv1.PathMatchExact, path: "/old/page"}
	full := func(p string) *gatewayv1.HTTPPathModifier {
		return &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(p)}
	}
	prefix := func(p string) *gatewayv1.HTTPPathModifier {
		return &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To(p)}
	}
	tests := []struct {
		name     string
		filter   gatewayv1.HTTPRequestRedirectFilter
		match    *matcher
		target   string
		want     string
		wantCode int
	}{
		{
			name:     "nothing set keeps the request's URL and the listener port",
			target:   "/old/page?x=1",
			want:     "http://podinfo.example.com:8080/old/page?x=1",
			wantCode: http.StatusFound,
		},
		{
			name:     "a scheme brings its well-known port, which is not written",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Scheme: ptr.To("https"), StatusCode: ptr.To(301)},
			target:   "/old/page",
			want:     "https://podinfo.example.com/old/page",
			wantCode: http.StatusMovedPermanently,
		},
		{
			name:     "hostname and port",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Hostname: ptr.To(gatewayv1.PreciseHostname("new.example.com")), Port: ptr.To[int32](9000)},
			target:   "/",
			want:     "http://new.example.com:9000/",
			wantCode: http.StatusFound,
		},
		{
			name:     "port 80 on http is not written",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Port: ptr.To[int32](80)},
			target:   "/",
			want:     "http://podinfo.example.com/",
			wantCode: http.StatusFound,
		},
		{
			name:     "full path",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Path: full("/new")},
			match:    prefixMatch,
			target:   "/old/page?x=1",
			want:     "http://podinfo.example.com:8080/new?x=1",
			wantCode: http.StatusFound,
		},
		{
			name:     "prefix",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Path: prefix("/new")},
			match:    prefixMatch,
			target:   "/old/page",
			want:     "http://podinfo.example.com:8080/new/page",
			wantCode: http.StatusFound,
		},
		{
			name:     "prefix replaced by the root",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Path: prefix("/")},
			match:    prefixMatch,
			target:   "/old/page",
			want:     "http://podinfo.example.com:8080/page",
			wantCode: http.StatusFound,
		},
		{
			name:     "prefix that is the whole path",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Path: prefix("/")},
			match:    prefixMatch,
			target:   "/old",
			want:     "http://podinfo.example.com:8080/",
			wantCode: http.StatusFound,
		},
		{
			name:     "prefix replacement needs a prefix match",
			filter:   gatewayv1.HTTPRequestRedirectFilter{Path: prefix("/new")},
			match:    exactMatch,
			target:   "/old/page",
			want:     "http://podinfo.example.com:8080/old/page",
			wantCode: http.StatusFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			req.Host = "podinfo.example.com:8080"
			assert.Equal(t, tt.want, redirectLocation(req, &tt.filter, tt.match, 8080))
			assert.Equal(t, tt.wantCode, redirectCode(&tt.filter))
		})
	}
}

func TestApplyFilters(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	req.Host = "podinfo.example.com"
	req.Header.Set("X-Remove-Me", "1")
	req.Header.Set("X-Replace-Me", "old")
	req.Header.Set("X-Append", "a")
	mirror := &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{Name: "podinfo-canary"}}
	respHeaders := &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Served-By", Value: "dataplane"}}}
	filters := []gatewayv1.HTTPRouteFilter{
		{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set:    []gatewayv1.HTTPHeader{{Name: "x-replace-me", Value: "new"}, {Name: "Host", Value: "internal.example.com"}},
			Add:    []gatewayv1.HTTPHeader{{Name: "x-append", Value: "b"}},
			Remove: []string{"x-remove-me"},
		}},
		{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
			Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/v2")},
		}},
		{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: mirror},
		{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: respHeaders},
		{Type: gatewayv1.HTTPRouteFilterCORS}, // not implemented, and without its field: skipped
		{Type: gatewayv1.HTTPRouteFilterExtensionRef, ExtensionRef: &gatewayv1.LocalObjectReference{Name: "x"}},
	}
	var f filtered
	applyFilters(req, filters, &matcher{pathType: gatewayv1.PathMatchPathPrefix, path: "/api"}, 8080, &f)

	assert.Equal(t, "internal.example.com", req.Host)
	assert.Equal(t, "new", req.Header.Get("X-Replace-Me"))
	assert.Equal(t, []string{"a", "b"}, req.Header.Values("X-Append"))
	assert.Empty(t, req.Header.Values("X-Remove-Me"))
	assert.Equal(t, "/v2/items", req.URL.Path)
	assert.Nil(t, f.redirect)
	assert.Equal(t, []*gatewayv1.HTTPRequestMirrorFilter{mirror}, f.mirrors)
	assert.Equal(t, []*gatewayv1.HTTPHeaderFilter{respHeaders}, f.responseHeaders)
}

func TestMirrored(t *testing.T) {
	calls := 0
	at := func(x float64) func() float64 {
		return func() float64 { calls++; return x }
	}
	tests := []struct {
		name   string
		filter gatewayv1.HTTPRequestMirrorFilter
		rnd    float64
		want   bool
		draws  int
	}{
		{name: "neither percent nor fraction mirrors all", want: true},
		{name: "100 percent", filter: gatewayv1.HTTPRequestMirrorFilter{Percent: ptr.To[int32](100)}, want: true},
		{name: "0 percent", filter: gatewayv1.HTTPRequestMirrorFilter{Percent: ptr.To[int32](0)}, want: false},
		{name: "25 percent, drawn below", filter: gatewayv1.HTTPRequestMirrorFilter{Percent: ptr.To[int32](25)}, rnd: 0.249, want: true, draws: 1},
		{name: "25 percent, drawn above", filter: gatewayv1.HTTPRequestMirrorFilter{Percent: ptr.To[int32](25)}, rnd: 0.25, want: false, draws: 1},
		{name: "fraction with default denominator", filter: gatewayv1.HTTPRequestMirrorFilter{Fraction: &gatewayv1.Fraction{Numerator: 5}}, rnd: 0.049, want: true, draws: 1},
		{name: "fraction 1/3, drawn above", filter: gatewayv1.HTTPRequestMirrorFilter{Fraction: &gatewayv1.Fraction{Numerator: 1, Denominator: ptr.To[int32](3)}}, rnd: 0.34, want: false, draws: 1},
		{name: "fraction 3/3", filter: gatewayv1.HTTPRequestMirrorFilter{Fraction: &gatewayv1.Fraction{Numerator: 3, Denominator: ptr.To[int32](3)}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = 0
			assert.Equal(t, tt.want, mirrored(&tt.filter, at(tt.rnd)))
			assert.Equal(t, tt.draws, calls)
		})
	}
}

func TestShadowHost(t *testing.T) {
	assert.Equal(t, "podinfo.example.com-shadow", shadowHost("podinfo.example.com"))
	assert.Equal(t, "podinfo.example.com-shadow:8080", shadowHost("podinfo.example.com:8080"))
}
