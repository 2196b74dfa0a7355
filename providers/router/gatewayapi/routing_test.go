package gatewayapi_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/rollout"
)

// strategyCase is a Routing, the Canary settings it needs, and what it must put in a route: the
// rules before the split rule and what the split rule carries. The expected values are written out
// by hand, as the apiserver returns them, not computed with the router package's helpers.
type strategyCase struct {
	name    string
	canary  func(*v1alpha1.Canary)
	routing rollout.Routing
	extra   []extraRule
	// canaryCookie and primaryCookie are the Set-Cookie headers added to the split's backends.
	canaryCookie, primaryCookie string
	mirror                      int32
}

// extraRule is a rule expected before the split rule: requests meeting headers and query go to
// Service to alone.
type extraRule struct {
	name    string
	headers []gatewayv1.HTTPHeaderMatch
	query   []gatewayv1.HTTPQueryParamMatch
	to      string
}

func strategyCases() []strategyCase {
	abTest := func(matches ...v1alpha1.HTTPMatch) func(*v1alpha1.Canary) {
		return func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.StepWeights = nil
			cn.Spec.Analysis.Iterations = ptr.To[int32](5)
			cn.Spec.Analysis.Match = matches
		}
	}
	sticky := func(primaryCookie string) func(*v1alpha1.Canary) {
		return func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary-session", PrimaryCookieName: primaryCookie, MaxAge: 3600}
		}
	}
	cohort := rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true}
	return []strategyCase{
		{
			name:    "weights",
			routing: rollout.Routing{Weights: rollout.ForCanary(10)},
		},
		{
			name:    "cohort by exact header",
			canary:  abTest(v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "always"}}}),
			routing: cohort,
			extra: []extraRule{{
				name:    "trafficctl-cohort-0",
				headers: []gatewayv1.HTTPHeaderMatch{exactHeader("x-canary", "always")},
				to:      "podinfo-canary",
			}},
		},
		{
			name: "cohort by header regex and prefix, two entries",
			canary: abTest(
				v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-user": {Regex: "(alice|bob)@example\\.com"}, "x-app": {Prefix: "v2."}}},
				v1alpha1.HTTPMatch{Headers: map[string]v1alpha1.StringMatch{"x-beta": {Exact: "1"}}},
			),
			routing: cohort,
			extra: []extraRule{
				{
					name:    "trafficctl-cohort-0",
					headers: []gatewayv1.HTTPHeaderMatch{regexHeader("x-app", `v2\..*`), regexHeader("x-user", `(alice|bob)@example\.com`)},
					to:      "podinfo-canary",
				},
				{
					name:    "trafficctl-cohort-1",
					headers: []gatewayv1.HTTPHeaderMatch{exactHeader("x-beta", "1")},
					to:      "podinfo-canary",
				},
			},
		},
		{
			name:    "cohort by cookie",
			canary:  abTest(v1alpha1.HTTPMatch{Cookies: map[string]v1alpha1.StringMatch{"beta": {Exact: "yes"}}}),
			routing: cohort,
			extra: []extraRule{{
				name:    "trafficctl-cohort-0",
				headers: []gatewayv1.HTTPHeaderMatch{regexHeader("Cookie", `(.*;\s*)?beta=yes(;.*)?`)},
				to:      "podinfo-canary",
			}},
		},
		{
			name:    "cohort by query parameters",
			canary:  abTest(v1alpha1.HTTPMatch{QueryParams: map[string]v1alpha1.StringMatch{"variant": {Prefix: "b"}, "beta": {Exact: "1"}}}),
			routing: cohort,
			extra: []extraRule{{
				name: "trafficctl-cohort-0",
				query: []gatewayv1.HTTPQueryParamMatch{
					{Type: ptr.To(gatewayv1.QueryParamMatchExact), Name: "beta", Value: "1"},
					{Type: ptr.To(gatewayv1.QueryParamMatchRegularExpression), Name: "variant", Value: "b.*"},
				},
				to: "podinfo-canary",
			}},
		},
		{
			name: "mirror",
			canary: func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.Mirror = true
				cn.Spec.Analysis.MirrorWeight = ptr.To[int32](30)
			},
			routing: rollout.Routing{Weights: rollout.ForCanary(0), Mirror: 30},
			mirror:  30,
		},
		{
			name:    "sticky",
			canary:  sticky(""),
			routing: rollout.Routing{Weights: rollout.ForCanary(20), Sticky: "rev-2"},
			extra: []extraRule{{
				name:    "trafficctl-sticky-canary",
				headers: []gatewayv1.HTTPHeaderMatch{regexHeader("Cookie", `(.*;\s*)?canary-session=rev-2(;.*)?`)},
				to:      "podinfo-canary",
			}},
			canaryCookie: "canary-session=rev-2; Max-Age=3600; Path=/",
		},
		{
			name:    "sticky with a primary cookie",
			canary:  sticky("primary-session"),
			routing: rollout.Routing{Weights: rollout.ForCanary(20), Sticky: "rev-2"},
			extra: []extraRule{
				{
					name:    "trafficctl-sticky-canary",
					headers: []gatewayv1.HTTPHeaderMatch{regexHeader("Cookie", `(.*;\s*)?canary-session=rev-2(;.*)?`)},
					to:      "podinfo-canary",
				},
				{
					name:    "trafficctl-sticky-primary",
					headers: []gatewayv1.HTTPHeaderMatch{regexHeader("Cookie", `(.*;\s*)?primary-session=rev-2(;.*)?`)},
					to:      "podinfo-primary",
				},
			},
			canaryCookie:  "canary-session=rev-2; Max-Age=3600; Path=/",
			primaryCookie: "primary-session=rev-2; Max-Age=3600; Path=/",
		},
	}
}

// want is the rules replacing apex, a rule as the apiserver stored it: the extra rules (apex
// with the extra conditions added to its match and one backend), then apex split.
func (c strategyCase) want(t *testing.T, apex gatewayv1.HTTPRouteRule) []gatewayv1.HTTPRouteRule {
	t.Helper()
	var rules []gatewayv1.HTTPRouteRule
	for _, x := range c.extra {
		rule := *apex.DeepCopy()
		rule.Name = ptr.To(gatewayv1.SectionName(x.name))
		require.Len(t, rule.Matches, 1, "the test's apex rules have one match")
		rule.Matches[0].Headers = append(rule.Matches[0].Headers, x.headers...)
		rule.Matches[0].QueryParams = append(rule.Matches[0].QueryParams, x.query...)
		rule.BackendRefs = []gatewayv1.HTTPBackendRef{serviceBackend(x.to, 9898, 1)}
		rules = append(rules, rule)
	}
	split := *apex.DeepCopy()
	primary := serviceBackend("podinfo-primary", 9898, c.routing.Weights.Primary)
	canary := serviceBackend("podinfo-canary", 9898, c.routing.Weights.Canary)
	if c.primaryCookie != "" {
		primary.Filters = []gatewayv1.HTTPRouteFilter{setCookie(c.primaryCookie)}
	}
	if c.canaryCookie != "" {
		canary.Filters = []gatewayv1.HTTPRouteFilter{setCookie(c.canaryCookie)}
	}
	split.BackendRefs = []gatewayv1.HTTPBackendRef{primary, canary}
	if c.mirror > 0 {
		split.Filters = append(split.Filters, mirrorTo("podinfo-canary", c.mirror))
	}
	return append(rules, split)
}

// TestOwnedRouteStrategies applies each strategy to the route trafficctl owns, then goes back to
// the resting Routing.
func TestOwnedRouteStrategies(t *testing.T) {
	for _, tc := range strategyCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			var mods []func(*v1alpha1.Canary)
			if tc.canary != nil {
				mods = append(mods, tc.canary)
			}
			cn := newCanary(t, ns, mods...)
			r := gatewayapi.New(env.Client, fieldManager)
			catchAll := gatewayv1.HTTPRouteRule{
				Name:    ptr.To(gatewayv1.SectionName("split")),
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}}},
			}

			require.NoError(t, r.Apply(ctx, cn, tc.routing))
			route := getRoute(t, ns, "podinfo")
			assert.Equal(t, tc.want(t, catchAll), route.Spec.Rules)
			assertObserved(t, r, cn, tc.routing)

			require.NoError(t, r.Apply(ctx, cn, tc.routing))
			assert.Equal(t, route.ResourceVersion, getRoute(t, ns, "podinfo").ResourceVersion, "applying the same routing again writes nothing")

			require.NoError(t, r.Apply(ctx, cn, rollout.Primary()))
			assert.Equal(t, strategyCase{routing: rollout.Primary()}.want(t, catchAll), getRoute(t, ns, "podinfo").Spec.Rules,
				"the resting routing is the split rule alone, with nothing added")
			assertObserved(t, r, cn, rollout.Primary())
		})
	}
}

// TestUserRouteStrategies applies each strategy to a user's route, goes back to the resting
// Routing, and releases the route: the user gets back exactly what they wrote.
func TestUserRouteStrategies(t *testing.T) {
	for _, tc := range strategyCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			original := createUserRoute(t, ns, userRoute(ns))
			mods := []func(*v1alpha1.Canary){withUserRoute("storefront")}
			if tc.canary != nil {
				mods = append(mods, tc.canary)
			}
			cn := newCanary(t, ns, mods...)
			r := gatewayapi.New(env.Client, fieldManager)

			require.NoError(t, r.Apply(ctx, cn, tc.routing))
			route := getRoute(t, ns, "storefront")
			want := append(tc.want(t, original.Spec.Rules[0]), original.Spec.Rules[1:]...)
			assert.Equal(t, want, route.Spec.Rules, "the extra rules come before the apex rule, copies of it with the strategy's conditions")
			assert.Equal(t, original.Spec.ParentRefs, route.Spec.ParentRefs)
			assert.Equal(t, original.Spec.Hostnames, route.Spec.Hostnames)
			assert.JSONEq(t, `[[{"group":"","kind":"Service","name":"podinfo","port":9898,"weight":1}]]`,
				route.Annotations[gatewayapi.OriginalBackendsAnnotation], "only the original backends are recorded")
			assertObserved(t, r, cn, tc.routing)

			require.NoError(t, r.Apply(ctx, cn, tc.routing))
			assert.Equal(t, route.ResourceVersion, getRoute(t, ns, "storefront").ResourceVersion, "applying the same routing again writes nothing")

			require.NoError(t, r.Apply(ctx, cn, rollout.Primary()))
			assert.Equal(t, withApexBackends(original.Spec, 100, 0), getRoute(t, ns, "storefront").Spec,
				"the resting routing leaves only the apex rule's backends changed")
			assertObserved(t, r, cn, rollout.Primary())

			require.NoError(t, r.Apply(ctx, cn, tc.routing))
			require.NoError(t, r.Release(ctx, cn))
			route = getRoute(t, ns, "storefront")
			assert.Equal(t, original.Spec, route.Spec, "the user's spec is back exactly")
			assert.Equal(t, original.Annotations, route.Annotations)
			assert.Equal(t, original.Labels, route.Labels)
		})
	}
}

// TestUserRouteRolloutRestored runs a rollout through cohort, mirror and sticky routings on a
// user's route with two apex rules, one with two matches, and releases it: the spec and
// annotations are back exactly as before the takeover. The router takes each strategy's shape
// from the Canary as given, so one in-memory Canary carries all three.
func TestUserRouteRolloutRestored(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	route := userRoute(ns)
	apex := route.Spec.Rules[0]
	apex.Matches = append(apex.Matches, gatewayv1.HTTPRouteMatch{
		Path:        &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To("/checkout")},
		Method:      ptr.To(gatewayv1.HTTPMethodPost),
		QueryParams: []gatewayv1.HTTPQueryParamMatch{{Name: "lang", Value: "en"}},
	})
	v2 := *apex.DeepCopy()
	v2.Name = ptr.To(gatewayv1.SectionName("v2"))
	v2.Matches = []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/v2")}}}
	v2.Filters = nil
	route.Spec.Rules = []gatewayv1.HTTPRouteRule{apex, route.Spec.Rules[1], v2, route.Spec.Rules[2]}
	original := createUserRoute(t, ns, route)

	cn := newCanary(t, ns, withUserRoute("storefront"))
	cn.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{
		Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "always"}},
		Cookies: map[string]v1alpha1.StringMatch{"beta": {Prefix: "y"}},
	}}
	cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary-session", PrimaryCookieName: "primary-session", MaxAge: 60}
	r := gatewayapi.New(env.Client, fieldManager)

	steps := []rollout.Routing{
		{Weights: rollout.ForCanary(0), Mirror: 50},
		{Weights: rollout.ForCanary(0), Cohort: true},
		{Weights: rollout.ForCanary(10), Sticky: "rev-2", Mirror: 20},
		{Weights: rollout.ForCanary(50), Cohort: true, Mirror: 100, Sticky: "rev-2"},
	}
	for _, step := range steps {
		require.NoError(t, r.Apply(ctx, cn, step), step.String())
		assertObserved(t, r, cn, step)
	}

	rules := getRoute(t, ns, "storefront").Spec.Rules
	var names []string
	for _, rule := range rules {
		names = append(names, string(ptr.Deref(rule.Name, "")))
	}
	assert.Equal(t, []string{
		"trafficctl-cohort-0", "trafficctl-sticky-canary", "trafficctl-sticky-primary", "",
		"",
		"trafficctl-apex1-cohort-0", "trafficctl-apex1-sticky-canary", "trafficctl-apex1-sticky-primary", "v2",
		"",
	}, names, "the extra rules stand before the apex rule they derive from")
	cookie := regexHeader("Cookie", `(.*;\s*)?beta=y[^;]*(;.*)?`)
	assert.Equal(t, []gatewayv1.HTTPRouteMatch{
		{
			Path:    apex.Matches[0].Path,
			Headers: []gatewayv1.HTTPHeaderMatch{exactHeader("x-env", "prod"), exactHeader("x-canary", "always"), cookie},
		},
		{
			Path:        apex.Matches[1].Path,
			Method:      apex.Matches[1].Method,
			Headers:     []gatewayv1.HTTPHeaderMatch{exactHeader("x-canary", "always"), cookie},
			QueryParams: []gatewayv1.HTTPQueryParamMatch{{Type: ptr.To(gatewayv1.QueryParamMatchExact), Name: "lang", Value: "en"}},
		},
	}, rules[0].Matches, "every match of the apex rule gets the cohort's conditions, keeping its own")
	assert.Equal(t, original.Spec.Rules[0].Filters, rules[0].Filters, "a derived rule keeps the apex rule's filters, without the mirror")
	assert.Equal(t, original.Spec.Rules[0].Timeouts, rules[0].Timeouts)
	assert.Equal(t, append(original.Spec.Rules[0].Filters, mirrorTo("podinfo-canary", 100)), rules[3].Filters)
	assert.Equal(t, []gatewayv1.HTTPRouteFilter{mirrorTo("podinfo-canary", 100)}, rules[8].Filters)

	require.NoError(t, r.Release(ctx, cn))
	after := getRoute(t, ns, "storefront")
	assert.Equal(t, original.Spec, after.Spec, "the user's spec is back exactly")
	assert.Equal(t, original.Annotations, after.Annotations)
}

// TestUserRouteTakenOverByEarlierVersion starts from a route as the previous trafficctl left it,
// apex rule split and its backends recorded, and rolls on with the strategies.
func TestUserRouteTakenOverByEarlierVersion(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	original := createUserRoute(t, ns, userRoute(ns))
	cn := newCanary(t, ns, withUserRoute("storefront"), func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary-session", MaxAge: 60}
	})

	// The earlier version applied the whole rules list with the apex rule's backends split, and
	// the record, under its field manager.
	rules := original.DeepCopy().Spec.Rules
	rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{
		serviceBackend("podinfo-primary", 9898, 90),
		serviceBackend("podinfo-canary", 9898, 10),
	}
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&gatewayv1.HTTPRouteSpec{Rules: rules})
	require.NoError(t, err)
	earlier := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gatewayv1.GroupVersion.String(),
		"kind":       "HTTPRoute",
		"metadata": map[string]any{
			"namespace":       ns,
			"name":            "storefront",
			"resourceVersion": original.ResourceVersion,
			"annotations": map[string]any{
				gatewayapi.OriginalBackendsAnnotation: `[[{"group":"","kind":"Service","name":"podinfo","port":9898,"weight":1}]]`,
			},
		},
		"spec": map[string]any{"rules": spec["rules"]},
	}}
	require.NoError(t, env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(earlier), client.ForceOwnership, client.FieldOwner(fieldManager)))
	r := gatewayapi.New(env.Client, fieldManager)
	assertObserved(t, r, cn, rollout.Routing{Weights: rollout.ForCanary(10)})

	sticky := rollout.Routing{Weights: rollout.ForCanary(30), Sticky: "rev-2", Mirror: 10}
	require.NoError(t, r.Apply(ctx, cn, sticky))
	assertObserved(t, r, cn, sticky)
	assert.Len(t, getRoute(t, ns, "storefront").Spec.Rules, 4)

	require.NoError(t, r.Release(ctx, cn))
	after := getRoute(t, ns, "storefront")
	assert.Equal(t, original.Spec, after.Spec)
	assert.Equal(t, original.Annotations, after.Annotations)
}

// TestUserRouteOverLimits shows that a rollout whose rules would take a user's route past a
// Gateway API limit is the user's to fix, reported before anything is written.
func TestUserRouteOverLimits(t *testing.T) {
	eightCohorts := func(cn *v1alpha1.Canary) {
		for i := range 8 {
			cn.Spec.Analysis.Match = append(cn.Spec.Analysis.Match, v1alpha1.HTTPMatch{
				Headers: map[string]v1alpha1.StringMatch{"x-cohort": {Exact: fmt.Sprint(i)}},
			})
		}
	}
	tests := []struct {
		name    string
		route   func(*gatewayv1.HTTPRoute)
		canary  func(*v1alpha1.Canary)
		routing rollout.Routing
		message string
	}{
		{
			name: "rules",
			route: func(route *gatewayv1.HTTPRoute) {
				for i := range 6 {
					rule := *route.Spec.Rules[1].DeepCopy()
					rule.Matches = []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(fmt.Sprintf("/static%d", i))}}}
					route.Spec.Rules = append(route.Spec.Rules, rule)
				}
			},
			canary:  eightCohorts,
			routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
			message: "would need 17 rules once this rollout's rules and filters are added, but Gateway API allows at most 16",
		},
		{
			name: "matches",
			route: func(route *gatewayv1.HTTPRoute) {
				for i := range 15 {
					route.Spec.Rules[0].Matches = append(route.Spec.Rules[0].Matches, gatewayv1.HTTPRouteMatch{
						Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(fmt.Sprintf("/api%d", i))},
					})
				}
			},
			canary:  eightCohorts,
			routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
			message: "would need 146 matches over all rules once this rollout's rules and filters are added, but Gateway API allows at most 128",
		},
		{
			name: "a header the apex rule already matches",
			canary: func(cn *v1alpha1.Canary) {
				cn.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"X-Env": {Exact: "staging"}}}}
			},
			routing: rollout.Routing{Weights: rollout.ForCanary(0), Cohort: true},
			message: "already matches header x-env, on which analysis.match[0] also sets a condition",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			ns := newNamespace(t)
			route := userRoute(ns)
			if tt.route != nil {
				tt.route(route)
			}
			original := createUserRoute(t, ns, route)
			cn := newCanary(t, ns, withUserRoute("storefront"))
			tt.canary(cn) // in memory: the router reads the strategy's shape from the Canary it is given
			r := gatewayapi.New(env.Client, fieldManager)

			err := r.Apply(ctx, cn, tt.routing)
			require.Error(t, err)
			assert.True(t, router.IsInvalidRoute(err), "%v", err)
			assert.Contains(t, err.Error(), "HTTPRoute "+ns+"/storefront")
			assert.Contains(t, err.Error(), tt.message)
			assert.Equal(t, original.ResourceVersion, getRoute(t, ns, "storefront").ResourceVersion, "nothing was written")
		})
	}
}

// assertObserved checks that Observe reads routing back from the route's rules.
func assertObserved(t *testing.T, r *gatewayapi.Router, cn *v1alpha1.Canary, routing rollout.Routing) {
	t.Helper()
	state, err := r.Observe(testContext(t), cn)
	require.NoError(t, err)
	assert.True(t, state.Found)
	assert.Equal(t, routing, state.Routing, "Observe reads back what Apply wrote")
}

func exactHeader(name, value string) gatewayv1.HTTPHeaderMatch {
	return gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(name), Value: value}
}

func regexHeader(name, value string) gatewayv1.HTTPHeaderMatch {
	return gatewayv1.HTTPHeaderMatch{Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: gatewayv1.HTTPHeaderName(name), Value: value}
}

func setCookie(value string) gatewayv1.HTTPRouteFilter {
	return gatewayv1.HTTPRouteFilter{
		Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}}},
	}
}

func mirrorTo(service string, percent int32) gatewayv1.HTTPRouteFilter {
	return gatewayv1.HTTPRouteFilter{
		Type: gatewayv1.HTTPRouteFilterRequestMirror,
		RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
			BackendRef: gatewayv1.BackendObjectReference{
				Group: ptr.To(gatewayv1.Group("")),
				Kind:  ptr.To(gatewayv1.Kind("Service")),
				Name:  gatewayv1.ObjectName(service),
				Port:  ptr.To[gatewayv1.PortNumber](9898),
			},
			Percent: ptr.To(percent),
		},
	}
}

// TestUserRouteBackendFieldsCarryOver covers an apex backendRef with fields of its own, a
// response header filter and a weight, beside another backend of the rule: both sides of the split
// are copies of it, the header filter also carrying the sticky cookie, the apex backend's share of
// the rule is split and the other backend keeps its share; Observe reads the split back in percent,
// an unchanged routing writes nothing, and Release gives the rule back exactly.
func TestUserRouteBackendFieldsCarryOver(t *testing.T) {
	ctx := testContext(t)
	ns := newNamespace(t)
	route := userRoute(ns)
	servedBy := gatewayv1.HTTPRouteFilter{
		Type:                   gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Served-By", Value: "shop"}}},
	}
	apex := serviceBackend("podinfo", 9898, 3)
	apex.Filters = []gatewayv1.HTTPRouteFilter{servedBy}
	route.Spec.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{apex, serviceBackend("legacy", 8080, 1)}
	original := createUserRoute(t, ns, route)

	cn := newCanary(t, ns, withUserRoute("storefront"))
	cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary-session", MaxAge: 60}
	r := gatewayapi.New(env.Client, fieldManager)
	routing := rollout.Routing{Weights: rollout.ForCanary(20), Sticky: "rev-3"}
	require.NoError(t, r.Apply(ctx, cn, routing))

	rules := getRoute(t, ns, "storefront").Spec.Rules
	withCookie := func(name string, weight int32, cookie string) gatewayv1.HTTPBackendRef {
		ref := serviceBackend(name, 9898, weight)
		filter := *servedBy.DeepCopy()
		if cookie != "" {
			filter.ResponseHeaderModifier.Add = []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: cookie}}
		}
		ref.Filters = []gatewayv1.HTTPRouteFilter{filter}
		return ref
	}
	assert.Equal(t, []gatewayv1.HTTPBackendRef{withCookie("podinfo-canary", 1, "")}, rules[0].BackendRefs,
		"the sticky rule's one backend is a copy of the apex backend")
	split := rules[1].BackendRefs
	assert.Equal(t, []gatewayv1.HTTPBackendRef{
		withCookie("podinfo-primary", 240, ""),
		withCookie("podinfo-canary", 60, "canary-session=rev-3; Max-Age=60; Path=/"),
		serviceBackend("legacy", 8080, 100),
	}, split, "the apex backend's 3 of 4 parts are split 80/20, and legacy keeps its part")
	assertObserved(t, r, cn, routing)

	rv := getRoute(t, ns, "storefront").ResourceVersion
	require.NoError(t, r.Apply(ctx, cn, routing))
	assert.Equal(t, rv, getRoute(t, ns, "storefront").ResourceVersion, "applying the same routing again writes nothing")

	require.NoError(t, r.Release(ctx, cn))
	assert.Equal(t, original.Spec, getRoute(t, ns, "storefront").Spec, "the user's spec is back exactly")
}
