package istio_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/providers/router/istio"
	"github.com/trafficctl/trafficctl/rollout"
)

// strategyVS is a user's VirtualService for the strategy tests: a route to another Service first,
// then the apex route, with two matches, a host in its long form on its own port, a timeout,
// retries and a mirror of the user's own.
const strategyVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
  labels: {team: shop}
  annotations: {example.com/note: mine}
spec:
  hosts: [shop.example.com]
  gateways: [mesh]
  http:
  - name: static
    match: [{uri: {prefix: /static}}]
    route: [{destination: {host: static}}]
  - name: api
    match:
    - uri: {prefix: /api}
    - uri: {prefix: /v1}
      headers: {x-env: {exact: prod}}
    route:
    - destination: {host: podinfo.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    timeout: 10s
    retries: {attempts: 2, retryOn: 5xx}
    mirror: {host: shadow}
    mirrorPercentage: {value: 5}
`

// ownedPrimary is the HTTP routes of the VirtualService trafficctl owns at rest.
const ownedPrimary = `
- name: podinfo
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 100
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 0
`

// userPrimary is the HTTP routes of strategyVS at rest: the apex route split, everything else the
// user's, the user's mirror included.
const userPrimary = `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: api
  match:
  - uri: {prefix: /api}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}}
  route:
  - destination: {host: podinfo-primary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 100
  - destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 0
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
`

// strategyCases are the strategies, each with the HTTP routes it gives the VirtualService
// trafficctl owns and strategyVS.
var strategyCases = []struct {
	name    string
	canary  []func(*v1alpha1.Canary)
	routing rollout.Routing
	owned   string
	user    string
}{
	{
		name:    "weights",
		routing: weights(90, 10),
		owned: `
- name: podinfo
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 90
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 10
`,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: api
  match:
  - uri: {prefix: /api}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}}
  route:
  - destination: {host: podinfo-primary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 90
  - destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 10
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
`,
	},
	{
		name:    "cohort by header, exact",
		canary:  []func(*v1alpha1.Canary){withCohort(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"X-Canary": {Exact: "insider"}}})},
		routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
		owned: `
- name: trafficctl-cohort-0
  match: [{headers: {x-canary: {exact: insider}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
` + ownedPrimary,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: trafficctl-cohort-0
  match:
  - uri: {prefix: /api}
    headers: {x-canary: {exact: insider}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, x-canary: {exact: insider}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
` + userPrimary[strings.Index(userPrimary, "- name: api"):],
	},
	{
		name: "cohort by header, regex and prefix",
		canary: []func(*v1alpha1.Canary){withCohort(
			v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-user": {Regex: "alice|bob"}}},
			v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-group": {Prefix: "beta"}}},
		)},
		routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
		owned: `
- name: trafficctl-cohort-0
  match: [{headers: {x-user: {regex: alice|bob}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
- name: trafficctl-cohort-1
  match: [{headers: {x-group: {prefix: beta}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
` + ownedPrimary,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: trafficctl-cohort-0
  match:
  - uri: {prefix: /api}
    headers: {x-user: {regex: alice|bob}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, x-user: {regex: alice|bob}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
- name: trafficctl-cohort-1
  match:
  - uri: {prefix: /api}
    headers: {x-group: {prefix: beta}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, x-group: {prefix: beta}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
` + userPrimary[strings.Index(userPrimary, "- name: api"):],
	},
	{
		name:    "cohort by cookie",
		canary:  []func(*v1alpha1.Canary){withCohort(v1alpha1.HTTPMatch{Cookies: map[string]v1alpha1.StringMatch{"canary": {Exact: "always"}}})},
		routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
		owned: `
- name: trafficctl-cohort-0
  match: [{headers: {cookie: {regex: '(.*;\s*)?canary=always(;.*)?'}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
` + ownedPrimary,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: trafficctl-cohort-0
  match:
  - uri: {prefix: /api}
    headers: {cookie: {regex: '(.*;\s*)?canary=always(;.*)?'}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, cookie: {regex: '(.*;\s*)?canary=always(;.*)?'}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
` + userPrimary[strings.Index(userPrimary, "- name: api"):],
	},
	{
		name: "cohort by query parameter",
		canary: []func(*v1alpha1.Canary){withCohort(v1alpha1.HTTPMatch{QueryParams: map[string]v1alpha1.StringMatch{
			"variant": {Exact: "b"},
			"ref":     {Prefix: "mail.v2"},
		}})},
		routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
		owned: `
- name: trafficctl-cohort-0
  match: [{queryParams: {variant: {exact: b}, ref: {regex: 'mail\.v2.*'}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
` + ownedPrimary,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: trafficctl-cohort-0
  match:
  - uri: {prefix: /api}
    queryParams: {variant: {exact: b}, ref: {regex: 'mail\.v2.*'}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}}
    queryParams: {variant: {exact: b}, ref: {regex: 'mail\.v2.*'}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
` + userPrimary[strings.Index(userPrimary, "- name: api"):],
	},
	{
		name:    "mirror",
		canary:  []func(*v1alpha1.Canary){withMirror(20)},
		routing: rollout.Routing{Weights: rollout.ForCanary(0), Mirror: 20},
		owned: `
- name: podinfo
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 100
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 0
  mirror: {host: podinfo-canary, port: {number: 9898}}
  mirrorPercentage: {value: 20}
`,
		// trafficctl's mirror takes the place of the user's while it is in force.
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: api
  match:
  - uri: {prefix: /api}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}}
  route:
  - destination: {host: podinfo-primary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 100
  - destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 0
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
  mirrorPercentage: {value: 20}
`,
	},
	{
		name:    "sticky",
		canary:  []func(*v1alpha1.Canary){withSessionAffinity("canary", "", 600)},
		routing: rollout.Routing{Weights: rollout.ForCanary(10), Sticky: "r1"},
		owned: `
- name: trafficctl-sticky-canary
  match: [{headers: {cookie: {regex: '(.*;\s*)?canary=r1(;.*)?'}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
- name: podinfo
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 90
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 10
    headers: {response: {add: {Set-Cookie: canary=r1; Max-Age=600; Path=/}}}
`,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: trafficctl-sticky-canary
  match:
  - uri: {prefix: /api}
    headers: {cookie: {regex: '(.*;\s*)?canary=r1(;.*)?'}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, cookie: {regex: '(.*;\s*)?canary=r1(;.*)?'}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
- name: api
  match:
  - uri: {prefix: /api}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}}
  route:
  - destination: {host: podinfo-primary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 90
  - destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 10
    headers: {response: {add: {Set-Cookie: canary=r1; Max-Age=600; Path=/}}}
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
`,
	},
	{
		name:    "sticky with a primary cookie",
		canary:  []func(*v1alpha1.Canary){withSessionAffinity("canary", "stable", 0)},
		routing: rollout.Routing{Weights: rollout.ForCanary(50), Sticky: "r2"},
		owned: `
- name: trafficctl-sticky-canary
  match: [{headers: {cookie: {regex: '(.*;\s*)?canary=r2(;.*)?'}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
- name: trafficctl-sticky-primary
  match: [{headers: {cookie: {regex: '(.*;\s*)?stable=r2(;.*)?'}}}]
  route: [{destination: {host: podinfo-primary, port: {number: 9898}}}]
- name: podinfo
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 50
    headers: {response: {add: {Set-Cookie: stable=r2; Max-Age=86400; Path=/}}}
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 50
    headers: {response: {add: {Set-Cookie: canary=r2; Max-Age=86400; Path=/}}}
`,
		user: `
- name: static
  match: [{uri: {prefix: /static}}]
  route: [{destination: {host: static}}]
- name: trafficctl-sticky-canary
  match:
  - uri: {prefix: /api}
    headers: {cookie: {regex: '(.*;\s*)?canary=r2(;.*)?'}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, cookie: {regex: '(.*;\s*)?canary=r2(;.*)?'}}
  route: [{destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
- name: trafficctl-sticky-primary
  match:
  - uri: {prefix: /api}
    headers: {cookie: {regex: '(.*;\s*)?stable=r2(;.*)?'}}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}, cookie: {regex: '(.*;\s*)?stable=r2(;.*)?'}}
  route: [{destination: {host: podinfo-primary.NAMESPACE.svc.cluster.local, port: {number: 8080}}}]
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
- name: api
  match:
  - uri: {prefix: /api}
  - uri: {prefix: /v1}
    headers: {x-env: {exact: prod}}
  route:
  - destination: {host: podinfo-primary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 50
    headers: {response: {add: {Set-Cookie: stable=r2; Max-Age=86400; Path=/}}}
  - destination: {host: podinfo-canary.NAMESPACE.svc.cluster.local, port: {number: 8080}}
    weight: 50
    headers: {response: {add: {Set-Cookie: canary=r2; Max-Age=86400; Path=/}}}
  timeout: 10s
  retries: {attempts: 2, retryOn: 5xx}
  mirror: {host: shadow}
  mirrorPercentage: {value: 5}
`,
	},
}

func TestOwnedVirtualServiceStrategies(t *testing.T) {
	for _, tt := range strategyCases {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			cn := newCanary(t, ns, tt.canary...)
			r := istio.New(env.Client, fieldManager)

			require.NoError(t, r.Apply(ctx, cn, tt.routing))
			vs := getVS(t, ns, "podinfo")
			assert.Equal(t, jsonValue(t, ns, tt.owned), spec(t, vs, "http"))
			assertObserved(t, r, cn, tt.routing)

			require.NoError(t, r.Apply(ctx, cn, tt.routing))
			assert.Equal(t, vs.GetResourceVersion(), getVS(t, ns, "podinfo").GetResourceVersion(), "the same routing again writes nothing")

			require.NoError(t, r.Apply(ctx, cn, rollout.Primary()))
			assert.Equal(t, jsonValue(t, ns, ownedPrimary), spec(t, getVS(t, ns, "podinfo"), "http"), "at rest only the split is left")
			assertObserved(t, r, cn, rollout.Primary())
		})
	}
}

func TestUserVirtualServiceStrategies(t *testing.T) {
	for _, tt := range strategyCases {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			original := createUserVS(t, ns, strategyVS)
			cn := newCanary(t, ns, append([]func(*v1alpha1.Canary){withUserRoute("storefront")}, tt.canary...)...)
			r := istio.New(env.Client, fieldManager)

			require.NoError(t, r.Apply(ctx, cn, tt.routing))
			vs := getVS(t, ns, "storefront")
			assert.Equal(t, jsonValue(t, ns, tt.user), spec(t, vs, "http"))
			assertObserved(t, r, cn, tt.routing)

			require.NoError(t, r.Apply(ctx, cn, tt.routing))
			assert.Equal(t, vs.GetResourceVersion(), getVS(t, ns, "storefront").GetResourceVersion(), "the same routing again writes nothing")

			require.NoError(t, r.Apply(ctx, cn, rollout.Primary()))
			assert.Equal(t, jsonValue(t, ns, userPrimary), spec(t, getVS(t, ns, "storefront"), "http"), "at rest only the split is left")
			assertObserved(t, r, cn, rollout.Primary())

			require.NoError(t, r.Apply(ctx, cn, tt.routing))
			require.NoError(t, r.Release(ctx, cn))
			assertRestored(t, original, getVS(t, ns, "storefront"))
		})
	}
}

// TestUserVirtualServiceRollout runs a user's VirtualService through a rollout that uses every
// strategy, then releases it: it is exactly what the user wrote.
func TestUserVirtualServiceRollout(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserVS(t, ns, userVS)
	cn := newCanary(t, ns, withUserRoute("storefront"))
	// One Canary does not combine these strategies, but a Canary edited between rollouts does.
	cn.Spec.Analysis.Match = []v1alpha1.HTTPMatch{
		{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}},
		{Cookies: map[string]v1alpha1.StringMatch{"beta": {Exact: "yes"}, "region": {Prefix: "eu"}}},
	}
	cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "stable", MaxAge: 60}
	r := istio.New(env.Client, fieldManager)

	for _, rt := range []rollout.Routing{
		rollout.Primary(),
		{Weights: rollout.ForCanary(0), Mirror: 50},
		{Weights: rollout.ForCanary(0), Cohort: true},
		{Weights: rollout.ForCanary(10), Sticky: "a1", Mirror: 10},
		{Weights: rollout.ForCanary(50), Sticky: "a1"},
		{Weights: rollout.ForCanary(100), Cohort: true, Sticky: "a1"},
	} {
		require.NoError(t, r.Apply(ctx, cn, rt), "%s", rt)
		assertObserved(t, r, cn, rt)
		http := httpRoutes(t, getVS(t, ns, "storefront"))
		names := make([]string, 0, len(http))
		for _, h := range http {
			name, _ := h.(map[string]any)["name"].(string)
			names = append(names, name)
		}
		assert.Len(t, names, 3+extraRoutes(rt), "%s: %v", rt, names)
	}

	require.NoError(t, r.Release(ctx, cn))
	assertRestored(t, original, getVS(t, ns, "storefront"))
}

// extraRoutes is how many routes TestUserVirtualServiceRollout's strategies add before the apex
// route: two cohort routes and two sticky routes.
func extraRoutes(rt rollout.Routing) int {
	n := 0
	if rt.Cohort {
		n += 2
	}
	if rt.Sticky != "" {
		n += 2
	}
	return n
}

// TestUserVirtualServiceSeveralApexRoutes covers a VirtualService with two apex routes: each gets
// its own strategy routes, named apart, and its own mirror.
func TestUserVirtualServiceSeveralApexRoutes(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserVS(t, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
spec:
  hosts: [podinfo]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: podinfo.NAMESPACE}}]
  - route: [{destination: {host: podinfo}}]
`)
	cn := newCanary(t, ns, withUserRoute("storefront"), withSessionAffinity("canary", "", 60), withMirror(30))
	r := istio.New(env.Client, fieldManager)
	rt := rollout.Routing{Weights: rollout.ForCanary(20), Sticky: "s", Mirror: 30}

	require.NoError(t, r.Apply(ctx, cn, rt))
	assert.Equal(t, jsonValue(t, ns, `
- name: trafficctl-sticky-canary
  match: [{uri: {prefix: /a}, headers: {cookie: {regex: '(.*;\s*)?canary=s(;.*)?'}}}]
  route: [{destination: {host: podinfo-canary.NAMESPACE, port: {number: 9898}}}]
- match: [{uri: {prefix: /a}}]
  route:
  - destination: {host: podinfo-primary.NAMESPACE, port: {number: 9898}}
    weight: 80
  - destination: {host: podinfo-canary.NAMESPACE, port: {number: 9898}}
    weight: 20
    headers: {response: {add: {Set-Cookie: canary=s; Max-Age=60; Path=/}}}
  mirror: {host: podinfo-canary.NAMESPACE, port: {number: 9898}}
  mirrorPercentage: {value: 30}
- name: trafficctl-apex1-sticky-canary
  match: [{headers: {cookie: {regex: '(.*;\s*)?canary=s(;.*)?'}}}]
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]
- route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 80
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 20
    headers: {response: {add: {Set-Cookie: canary=s; Max-Age=60; Path=/}}}
  mirror: {host: podinfo-canary, port: {number: 9898}}
  mirrorPercentage: {value: 30}
`), spec(t, getVS(t, ns, "storefront"), "http"))
	assertObserved(t, r, cn, rt)

	require.NoError(t, r.Release(ctx, cn))
	assertRestored(t, original, getVS(t, ns, "storefront"))
}

// TestUserVirtualServiceMirrors covers a user's apex route that mirrors with the newer mirrors
// list, which Istio refuses beside mirror: trafficctl's mirror takes its place while in force, and
// it comes back afterwards.
func TestUserVirtualServiceMirrors(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserVS(t, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
spec:
  hosts: [podinfo]
  http:
  - name: all
    route: [{destination: {host: podinfo}}]
    mirrors:
    - destination: {host: shadow}
      percentage: {value: 2.5}
`)
	cn := newCanary(t, ns, withUserRoute("storefront"), withMirror(40))
	r := istio.New(env.Client, fieldManager)

	rt := rollout.Routing{Weights: rollout.ForCanary(0), Mirror: 40}
	require.NoError(t, r.Apply(ctx, cn, rt))
	assert.Equal(t, jsonValue(t, ns, `
- name: all
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 100
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 0
  mirror: {host: podinfo-canary, port: {number: 9898}}
  mirrorPercentage: {value: 40}
`), spec(t, getVS(t, ns, "storefront"), "http"))
	assertObserved(t, r, cn, rt)

	require.NoError(t, r.Apply(ctx, cn, rollout.Primary()))
	assert.Equal(t, jsonValue(t, ns, `
- name: all
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 100
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 0
  mirrors:
  - destination: {host: shadow}
    percentage: {value: 2.5}
`), spec(t, getVS(t, ns, "storefront"), "http"))
	assertObserved(t, r, cn, rollout.Primary())

	require.NoError(t, r.Apply(ctx, cn, rt))
	require.NoError(t, r.Release(ctx, cn))
	assertRestored(t, original, getVS(t, ns, "storefront"))
}

// TestUserVirtualServiceLegacyRecord covers a VirtualService taken over by an earlier trafficctl,
// whose annotation records only the destinations: a rollout with a mirror and sticky sessions
// still ends with the VirtualService exactly as the user wrote it, the user's mirror included.
func TestUserVirtualServiceLegacyRecord(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserVS(t, ns, strategyVS)

	// What the earlier trafficctl wrote: the apex route split, and its destinations recorded.
	legacy := &unstructured.Unstructured{}
	legacy.SetGroupVersionKind(original.GroupVersionKind())
	legacy.SetNamespace(ns)
	legacy.SetName("storefront")
	legacy.SetAnnotations(map[string]string{istio.OriginalDestinationsAnnotation: `[[{"destination":{"host":"podinfo.` + ns + `.svc.cluster.local","port":{"number":8080}}}]]`})
	require.NoError(t, unstructured.SetNestedSlice(legacy.Object, jsonValue(t, ns, userPrimary).([]any), "spec", "http"))
	require.NoError(t, env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(legacy), client.ForceOwnership, client.FieldOwner(fieldManager)))

	cn := newCanary(t, ns, withUserRoute("storefront"), withSessionAffinity("canary", "", 600), withMirror(20))
	r := istio.New(env.Client, fieldManager)
	assertObserved(t, r, cn, rollout.Primary())

	rt := rollout.Routing{Weights: rollout.ForCanary(10), Sticky: "r1", Mirror: 20}
	require.NoError(t, r.Apply(ctx, cn, rt))
	assertObserved(t, r, cn, rt)
	apex := httpRoutes(t, getVS(t, ns, "storefront"))[2].(map[string]any)
	assert.Equal(t, map[string]any{"value": int64(20)}, apex["mirrorPercentage"])

	require.NoError(t, r.Release(ctx, cn))
	assertRestored(t, original, getVS(t, ns, "storefront"))
}

// TestOwnedVirtualServiceServiceFields covers service.match, headers and corsPolicy: every route
// carries them, with timeout and retries, and the strategy's routes match the cross product of
// service.match with their own conditions.
func TestOwnedVirtualServiceServiceFields(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns, func(cn *v1alpha1.Canary) {
		cn.Spec.Service.Match = []runtime.RawExtension{
			{Raw: []byte(`{"uri":{"prefix":"/api"}}`)},
			{Raw: []byte(`{"uri":{"prefix":"/v2"},"headers":{"x-env":{"exact":"prod"}},"ignoreUriCase":true}`)},
		}
		cn.Spec.Service.Headers = &runtime.RawExtension{Raw: []byte(`{"request":{"set":{"x-version":"canary-test"}},"response":{"remove":["x-internal"]}}`)}
		cn.Spec.Service.CorsPolicy = &runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"exact":"https://example.com"}],"allowMethods":["GET","POST"],"maxAge":"24h"}`)}
		cn.Spec.Service.Timeout = "5s"
		cn.Spec.Service.Retries = &v1alpha1.HTTPRetry{Attempts: 3}
	}, withCohort(v1alpha1.HTTPMatch{
		Headers:     map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}},
		QueryParams: map[string]v1alpha1.StringMatch{"beta": {Exact: "1"}},
	}))
	r := istio.New(env.Client, fieldManager)
	const settings = `
  timeout: 5s
  retries: {attempts: 3}
  headers:
    request: {set: {x-version: canary-test}}
    response: {remove: [x-internal]}
  corsPolicy:
    allowOrigins: [{exact: https://example.com}]
    allowMethods: [GET, POST]
    maxAge: 24h
`
	const serviceMatch = `
  match:
  - uri: {prefix: /api}
  - uri: {prefix: /v2}
    headers: {x-env: {exact: prod}}
    ignoreUriCase: true
`

	rt := rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true}
	require.NoError(t, r.Apply(ctx, cn, rt))
	assert.Equal(t, jsonValue(t, ns, `
- name: trafficctl-cohort-0
  match:
  - uri: {prefix: /api}
    headers: {x-canary: {exact: insider}}
    queryParams: {beta: {exact: "1"}}
  - uri: {prefix: /v2}
    headers: {x-env: {exact: prod}, x-canary: {exact: insider}}
    queryParams: {beta: {exact: "1"}}
    ignoreUriCase: true
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]`+settings+`
- name: podinfo`+serviceMatch+`
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 100
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 0`+settings), spec(t, getVS(t, ns, "podinfo"), "http"))
	assertObserved(t, r, cn, rt)

	// Sticky sessions and a mirror (a Canary edited between rollouts): the Set-Cookie is on the
	// destinations, apart from the route's own header operations.
	cn.Spec.Analysis.Match = nil
	cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary", MaxAge: 60}
	rt = rollout.Routing{Weights: rollout.ForCanary(30), Sticky: "z", Mirror: 5}
	require.NoError(t, r.Apply(ctx, cn, rt))
	assert.Equal(t, jsonValue(t, ns, `
- name: trafficctl-sticky-canary
  match:
  - uri: {prefix: /api}
    headers: {cookie: {regex: '(.*;\s*)?canary=z(;.*)?'}}
  - uri: {prefix: /v2}
    headers: {x-env: {exact: prod}, cookie: {regex: '(.*;\s*)?canary=z(;.*)?'}}
    ignoreUriCase: true
  route: [{destination: {host: podinfo-canary, port: {number: 9898}}}]`+settings+`
- name: podinfo`+serviceMatch+`
  route:
  - destination: {host: podinfo-primary, port: {number: 9898}}
    weight: 70
  - destination: {host: podinfo-canary, port: {number: 9898}}
    weight: 30
    headers: {response: {add: {Set-Cookie: canary=z; Max-Age=60; Path=/}}}
  mirror: {host: podinfo-canary, port: {number: 9898}}
  mirrorPercentage: {value: 5}`+settings), spec(t, getVS(t, ns, "podinfo"), "http"))
	assertObserved(t, r, cn, rt)
}

// TestOwnedVirtualServiceRejectsInvalidRouteFields covers raw route fields the Istio schema
// refuses: only the user can correct them.
func TestOwnedVirtualServiceRejectsInvalidRouteFields(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	cn := newCanary(t, ns, func(cn *v1alpha1.Canary) {
		cn.Spec.Service.Headers = &runtime.RawExtension{Raw: []byte(`{"request":{"set":"x-version"}}`)}
	})
	r := istio.New(env.Client, fieldManager)

	err := r.Apply(ctx, cn, weights(100, 0))
	require.Error(t, err)
	assert.True(t, router.IsInvalidRoute(err), "%v", err)
	assert.Contains(t, err.Error(), "Istio's VirtualService schema does not accept service.match, service.headers or service.corsPolicy of Canary "+ns+"/podinfo")
	assertNotFound(t, "VirtualService", ns, "podinfo")
}

// TestStrategyConflicts covers strategy conditions that cannot be added to a route's match: the
// route tests the same header another way. It is the user's to fix, and nothing is written; the
// same condition written the same way is no conflict.
func TestStrategyConflicts(t *testing.T) {
	ctx := testContext(t)
	r := istio.New(env.Client, fieldManager)
	cohort := rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true}

	t.Run("owned", func(t *testing.T) {
		ns := newNamespace(t)
		cn := newCanary(t, ns, func(cn *v1alpha1.Canary) {
			cn.Spec.Service.Match = []runtime.RawExtension{{Raw: []byte(`{"headers":{"x-env":{"exact":"prod"}}}`)}}
		}, withCohort(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"X-Env": {Prefix: "pr"}}}))

		err := r.Apply(ctx, cn, cohort)
		require.Error(t, err)
		assert.True(t, router.IsInvalidRoute(err), "%v", err)
		assert.Equal(t, "service.match of Canary "+ns+"/podinfo already matches header x-env, on which analysis.match[0] also sets a condition; "+
			"the two cannot be combined in one Istio match, so remove one of them", err.Error())
		assertNotFound(t, "VirtualService", ns, "podinfo")
		assertNotFound(t, "DestinationRule", ns, "podinfo-primary")

		cn.Spec.Analysis.Match[0].Headers["X-Env"] = v1alpha1.StringMatch{Exact: "prod"}
		require.NoError(t, r.Apply(ctx, cn, cohort))
		assert.Equal(t, []any{map[string]any{"headers": map[string]any{"x-env": map[string]any{"exact": "prod"}}}},
			httpRoutes(t, getVS(t, ns, "podinfo"))[0].(map[string]any)["match"])
	})

	t.Run("user-owned", func(t *testing.T) {
		ns := newNamespace(t)
		original := createUserVS(t, ns, strategyVS)
		cn := newCanary(t, ns, withUserRoute("storefront"), withCohort(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-env": {Regex: "p.*"}}}))

		err := r.Apply(ctx, cn, cohort)
		require.Error(t, err)
		assert.True(t, router.IsInvalidRoute(err), "%v", err)
		assert.Equal(t, `HTTP route "api" of VirtualService `+ns+`/storefront already matches header x-env, on which analysis.match[0] also sets a condition; `+
			"the two cannot be combined in one Istio match, so remove one of them", err.Error())
		assert.Equal(t, original.GetResourceVersion(), getVS(t, ns, "storefront").GetResourceVersion(), "nothing was written")
		assertNotFound(t, "DestinationRule", ns, "podinfo-primary")
	})

	t.Run("user-owned with a route named like trafficctl's", func(t *testing.T) {
		ns := newNamespace(t)
		original := createUserVS(t, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
spec:
  hosts: [shop.example.com]
  http:
  - name: trafficctl-cohort-0
    route: [{destination: {host: static}}]
  - route: [{destination: {host: podinfo}}]
`)
		cn := newCanary(t, ns, withUserRoute("storefront"), withCohort(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "1"}}}))

		err := r.Apply(ctx, cn, cohort)
		require.Error(t, err)
		assert.True(t, router.IsInvalidRoute(err), "%v", err)
		assert.Equal(t, `HTTP route "trafficctl-cohort-0" of VirtualService `+ns+`/storefront carries a name trafficctl gives the routes it adds; rename it`, err.Error())
		assert.Equal(t, original.GetResourceVersion(), getVS(t, ns, "storefront").GetResourceVersion(), "nothing was written")
	})

	t.Run("user-owned without an apex route", func(t *testing.T) {
		ns := newNamespace(t)
		original := createUserVS(t, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
spec:
  hosts: [shop.example.com]
  http:
  - route: [{destination: {host: static}}]
`)
		cn := newCanary(t, ns, withUserRoute("storefront"), withCohort(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "1"}}}))

		err := r.Apply(ctx, cn, cohort)
		require.Error(t, err)
		assert.True(t, router.IsInvalidRoute(err), "%v", err)
		assert.Contains(t, err.Error(), "VirtualService "+ns+"/storefront has no HTTP route to Service podinfo")
		assert.Equal(t, original.GetResourceVersion(), getVS(t, ns, "storefront").GetResourceVersion(), "nothing was written")
	})
}

// withCohort makes the Canary an A/B experiment on matches.
func withCohort(matches ...v1alpha1.HTTPMatch) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.StepWeights = nil
		cn.Spec.Analysis.Iterations = ptr.To[int32](5)
		cn.Spec.Analysis.Match = matches
	}
}

// withMirror mirrors percent of the requests to the canary before the first step.
func withMirror(percent int32) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Mirror = true
		cn.Spec.Analysis.MirrorWeight = ptr.To(percent)
	}
}

// withSessionAffinity pins users with cookie (and the primary's, unless ""); maxAge 0 leaves the
// default.
func withSessionAffinity(cookie, primaryCookie string, maxAge int32) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: cookie, PrimaryCookieName: primaryCookie, MaxAge: maxAge}
	}
}

// assertObserved checks that Observe reads back exactly rt, accepted.
func assertObserved(t *testing.T, r *istio.Router, cn *v1alpha1.Canary, rt rollout.Routing) {
	t.Helper()
	state, err := r.Observe(testContext(t), cn)
	require.NoError(t, err)
	assert.Equal(t, rollout.State{Found: true, Routing: rt, Accepted: true}, state)
}

// assertRestored checks that vs is original again: its whole spec, labels and annotations.
func assertRestored(t *testing.T, original, vs *unstructured.Unstructured) {
	t.Helper()
	assert.Equal(t, spec(t, original), spec(t, vs), "the user's spec is back exactly")
	assert.Equal(t, original.GetLabels(), vs.GetLabels())
	assert.Equal(t, original.GetAnnotations(), vs.GetAnnotations(), "the record is gone")
}

// jsonValue is the YAML manifest, with NAMESPACE standing for ns, in the form the apiserver's
// objects are read in: whole numbers as int64.
func jsonValue(t *testing.T, ns, manifest string) any {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(replaceNS(manifest, ns)))
	require.NoError(t, err)
	var v any
	require.NoError(t, k8sjson.Unmarshal(data, &v))
	return v
}
