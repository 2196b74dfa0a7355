package dataplane

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var testGateway = gatewayRef{namespace: "infra", name: "public-gw"}

// attached is a route in namespace shop attached to testGateway.
func attached(name string, mods ...routeMod) gatewayv1.HTTPRoute {
	return *newRoute("shop", name, append([]routeMod{withParent("infra", "public-gw")}, mods...)...)
}

// winner names the rule a request goes to, "" for none.
func winner(t *table, r *http.Request) string {
	c := t.match(r)
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%s#%d", c.rule.route.key.Name, c.rule.index)
}

func TestMatch(t *testing.T) {
	to := backends(backendTo("podinfo", 9898, 1))
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		exact    = gatewayv1.PathMatchExact
		prefix   = gatewayv1.PathMatchPathPrefix
		regex    = gatewayv1.PathMatchRegularExpression
		hExact   = gatewayv1.HeaderMatchExact
		hRegex   = gatewayv1.HeaderMatchRegularExpression
		qExact   = gatewayv1.QueryParamMatchExact
		qRegex   = gatewayv1.QueryParamMatchRegularExpression
		anyHost  = "podinfo.example.com"
		cookieRE = `^(.*?;\s*)?(canary=always)(;.*)?$`
	)
	tests := []struct {
		name    string
		routes  []gatewayv1.HTTPRoute
		method  string
		target  string
		host    string
		headers map[string]string
		want    string
	}{
		{
			name:   "a rule without matches takes every path",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to)))},
			target: "/anything/at/all",
			want:   "a#0",
		},
		{
			name:   "no route",
			target: "/",
		},
		{
			name:   "a route of another Gateway is not served",
			routes: []gatewayv1.HTTPRoute{*newRoute("shop", "other", withParent("infra", "private-gw"), withRule(routeRule(to)))},
			target: "/",
		},
		{
			name:   "the parentRef namespace defaults to the route's",
			routes: []gatewayv1.HTTPRoute{*newRoute("infra", "local", withParent("", "public-gw"), withRule(routeRule(to)))},
			target: "/",
			want:   "local#0",
		},
		{
			name: "the longest prefix wins",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(path(prefix, "/api")))),
				withRule(routeRule(to, match(path(prefix, "/api/v2/")))),
			)},
			target: "/api/v2/items",
			want:   "a#1",
		},
		{
			name:   "a prefix matches whole path elements only",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to, match(path(prefix, "/api")))))},
			target: "/apix",
		},
		{
			name:   "a prefix matches itself with a trailing slash",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to, match(path(prefix, "/api")))))},
			target: "/api/",
			want:   "a#0",
		},
		{
			name: "exact beats a longer prefix",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(path(prefix, "/api/v2/items")))),
				withRule(routeRule(to, match(path(exact, "/api/v2/items")))),
			)},
			target: "/api/v2/items",
			want:   "a#1",
		},
		{
			name:   "exact does not match a longer path",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to, match(path(exact, "/api")))))},
			target: "/api/",
		},
		{
			name: "a regular expression must match the whole path and beats a prefix",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(path(prefix, "/")))),
				withRule(routeRule(to, match(path(regex, `/items/[0-9]+`)))),
			)},
			target: "/items/42",
			want:   "a#1",
		},
		{
			name: "a regular expression matching part of the path does not match",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(path(prefix, "/")))),
				withRule(routeRule(to, match(path(regex, `/items/[0-9]+`)))),
			)},
			target: "/items/42/reviews",
			want:   "a#0",
		},
		{
			name: "a method match beats none",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(path(prefix, "/")))),
				withRule(routeRule(to, match(path(prefix, "/"), method("POST")))),
			)},
			method: "POST",
			target: "/",
			want:   "a#1",
		},
		{
			name: "a method match does not take other methods",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(path(prefix, "/")))),
				withRule(routeRule(to, match(path(prefix, "/"), method("POST")))),
			)},
			target: "/",
			want:   "a#0",
		},
		{
			name: "more header matches win, and header names are case-insensitive",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(header(hExact, "x-canary", "true")))),
				withRule(routeRule(to, match(header(hExact, "X-Canary", "true"), header(hExact, "x-region", "eu")))),
			)},
			target:  "/",
			headers: map[string]string{"X-CANARY": "true", "x-region": "eu"},
			want:    "a#1",
		},
		{
			name:    "a header value is matched exactly",
			routes:  []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to, match(header(hExact, "x-canary", "true")))))},
			target:  "/",
			headers: map[string]string{"x-canary": "True"},
		},
		{
			name: "a cookie matches through a header regular expression",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to)),
				withRule(routeRule(to, match(header(hRegex, "Cookie", cookieRE)))),
			)},
			target:  "/",
			headers: map[string]string{"Cookie": "session=abc; canary=always; theme=dark"},
			want:    "a#1",
		},
		{
			name: "another cookie value does not match",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to)),
				withRule(routeRule(to, match(header(hRegex, "Cookie", cookieRE)))),
			)},
			target:  "/",
			headers: map[string]string{"Cookie": "canary=never"},
			want:    "a#0",
		},
		{
			name:   "a regular expression does not match an absent header",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to, match(header(hRegex, "x-user", ".*")))))},
			target: "/",
		},
		{
			name: "query parameters match exactly or by regular expression, and count for precedence",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to, match(query(qExact, "variant", "b")))),
				withRule(routeRule(to, match(query(qExact, "variant", "b"), query(qRegex, "user", "[0-9]+")))),
			)},
			target: "/?variant=b&user=17",
			want:   "a#1",
		},
		{
			name:   "query parameter names are case-sensitive",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to, match(query(qExact, "variant", "b")))))},
			target: "/?Variant=b",
		},
		{
			name: "every condition of a match must hold, any match of a rule will do",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to,
				match(path(prefix, "/api"), header(hExact, "x-canary", "true")),
				match(path(prefix, "/v2")),
			)))},
			target: "/v2/x",
			want:   "a#0",
		},
		{
			name: "an exact hostname beats a wildcard, which beats none",
			routes: []gatewayv1.HTTPRoute{
				attached("none", withRule(routeRule(to))),
				attached("wildcard", withHostnames("*.example.com"), withRule(routeRule(to))),
				attached("exact", withHostnames("podinfo.example.com"), withRule(routeRule(to))),
			},
			target: "/",
			host:   "PodInfo.Example.com:8080",
			want:   "exact#0",
		},
		{
			name: "a wildcard hostname matches subdomains",
			routes: []gatewayv1.HTTPRoute{
				attached("none", withRule(routeRule(to))),
				attached("wildcard", withHostnames("*.example.com"), withRule(routeRule(to))),
				attached("exact", withHostnames("podinfo.example.com"), withRule(routeRule(to))),
			},
			target: "/",
			host:   "a.b.example.com",
			want:   "wildcard#0",
		},
		{
			name:   "a wildcard hostname does not match its parent domain",
			routes: []gatewayv1.HTTPRoute{attached("wildcard", withHostnames("*.example.com"), withRule(routeRule(to)))},
			target: "/",
			host:   "example.com",
		},
		{
			name:   "a hostname that does not match leaves the route out",
			routes: []gatewayv1.HTTPRoute{attached("exact", withHostnames("podinfo.example.com"), withRule(routeRule(to)))},
			target: "/",
			host:   "other.example.com",
		},
		{
			name: "a better hostname wins over a longer path",
			routes: []gatewayv1.HTTPRoute{
				attached("none", withRule(routeRule(to, match(path(prefix, "/api/v2"))))),
				attached("exact", withHostnames(anyHost), withRule(routeRule(to))),
			},
			target: "/api/v2",
			want:   "exact#0",
		},
		{
			name: "across routes the longer path wins",
			routes: []gatewayv1.HTTPRoute{
				attached("short", withRule(routeRule(to, match(path(prefix, "/api"))))),
				attached("long", withRule(routeRule(to, match(path(prefix, "/api/v2"))))),
			},
			target: "/api/v2/x",
			want:   "long#0",
		},
		{
			name: "on a tie the oldest route wins",
			routes: []gatewayv1.HTTPRoute{
				attached("a", createdAt(old.Add(time.Hour)), withRule(routeRule(to))),
				attached("b", createdAt(old), withRule(routeRule(to))),
			},
			target: "/",
			want:   "b#0",
		},
		{
			name: "on a tie of age the first by name wins",
			routes: []gatewayv1.HTTPRoute{
				attached("b", createdAt(old), withRule(routeRule(to))),
				attached("a", createdAt(old), withRule(routeRule(to))),
			},
			target: "/",
			want:   "a#0",
		},
		{
			name:   "within a route the first rule wins a tie",
			routes: []gatewayv1.HTTPRoute{attached("a", withRule(routeRule(to)), withRule(routeRule(to)))},
			target: "/",
			want:   "a#0",
		},
		{
			name: "a route with an invalid regular expression is not served",
			routes: []gatewayv1.HTTPRoute{attached("a",
				withRule(routeRule(to)),
				withRule(routeRule(to, match(path(regex, `/items/(`)))),
			)},
			target: "/",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			req.Host = tt.host
			if req.Host == "" {
				req.Host = anyHost
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			assert.Equal(t, tt.want, winner(buildTable(tt.routes, testGateway), req))
		})
	}
}

func TestBuildTableKeepsRoutesItCannotServe(t *testing.T) {
	bad := attached("bad", withRule(routeRule(nil, match(header(gatewayv1.HeaderMatchRegularExpression, "x", `(`)))))
	tbl := buildTable([]gatewayv1.HTTPRoute{bad}, testGateway)
	require.Len(t, tbl.routes, 1)
	for _, r := range tbl.routes {
		assert.ErrorContains(t, r.err, `rule 0, match 0: header x: invalid regular expression "("`)
	}
	assert.Empty(t, tbl.candidates)
}

func TestRuleTimeouts(t *testing.T) {
	timeouts := func(request, backend string) routeMod {
		return withRule(gatewayv1.HTTPRouteRule{Timeouts: &gatewayv1.HTTPRouteTimeouts{
			Request:        durationOrNil(request),
			BackendRequest: durationOrNil(backend),
		}})
	}
	tests := []struct {
		name             string
		request, backend string
		want             time.Duration
	}{
		{name: "default", want: defaultTimeout},
		{name: "request", request: "2s", want: 2 * time.Second},
		{name: "zero disables", request: "0s", want: 0},
		{name: "backend shortens", request: "2s", backend: "500ms", want: 500 * time.Millisecond},
		{name: "backend does not lengthen", request: "2s", backend: "1m", want: 2 * time.Second},
		{name: "backend alone", backend: "1s", want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := compileRoute(newRoute("shop", "a", timeouts(tt.request, tt.backend)))
			require.NoError(t, r.err)
			assert.Equal(t, tt.want, r.rules[0].timeout)
		})
	}
}

func durationOrNil(s string) *gatewayv1.Duration {
	if s == "" {
		return nil
	}
	d := gatewayv1.Duration(s)
	return &d
}
