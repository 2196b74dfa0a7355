package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/test/e2e/framework"
	"github.com/trafficctl/trafficctl/test/e2e/load"
)

// The strategies beyond the weighted canary, each asserted on the traffic users saw: A/B by
// header, blue/green (mirrored, and as a Service switch without a mesh), a mirrored step, sticky
// sessions, a replica ratio without a mesh, and routes the user owns.

// busyRate is the load of the scenarios that count requests per group, so that every group
// gets over a thousand of them within the two analysis intervals of an experiment.
const busyRate = 100

// meshRouter is a provider whose route trafficctl writes, and what it changes in the default
// Canary (provider gatewayapi on the harness Gateway).
type meshRouter struct {
	name string
	use  func(*v1alpha1.Canary)
}

// meshRouters run every scenario that needs a route: the Gateway API and Istio.
var meshRouters = []meshRouter{
	{"gatewayapi", func(*v1alpha1.Canary) {}},
	{"istio", useIstio},
}

// useIstio moves the default Canary onto an Istio VirtualService bound to the harness Gateway.
func useIstio(cn *v1alpha1.Canary) {
	host := cn.Spec.Service.Hostnames[0]
	cn.Spec.Provider = v1alpha1.ProviderIstio
	cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
	cn.Spec.Service.Hosts = []string{host}
	cn.Spec.Service.Gateways = []string{framework.GatewayNamespace + "/" + framework.GatewayName}
	// The strategies are about routing; their latency check reads the app's own histogram as on
	// Gateway API. The data plane's Istio-style latency is the proxy's view, which on a loaded
	// 2-core machine running every scenario at once has p99s of several hundred ms.
	// TestIstioVirtualServiceRollout runs on the istio metric set.
	cn.Spec.Analysis.MetricSet = v1alpha1.MetricSetApp
}

// useKubernetes moves the default Canary onto provider kubernetes: no route of trafficctl's;
// users reach the apex Service through a route of their own (see kubernetesApp).
func useKubernetes(cn *v1alpha1.Canary) {
	cn.Spec.Provider = v1alpha1.ProviderKubernetes
	cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
}

// abTesting makes the Canary an A/B experiment over two intervals: requests with the header
// x-canary: insider go to the canary, every other request stays on the primary.
func abTesting(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.StepWeights = nil
	cn.Spec.Analysis.Iterations = ptr.To[int32](2)
	cn.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}}
}

// insiders is the A/B cohort's header.
var insiders = http.Header{"X-Canary": {"insider"}}

// blueGreen makes the Canary a blue/green rollout over two intervals.
func blueGreen(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.StepWeights = nil
	cn.Spec.Analysis.Iterations = ptr.To[int32](2)
}

// sticky keeps users on the version they first met, on either side.
func sticky(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "podinfo-canary", PrimaryCookieName: "podinfo-primary"}
}

// waitStepStarted waits until the route accepted step n's routing and its analysis runs.
func waitStepStarted(t *testing.T, ctx context.Context, app *framework.App, n int32) *v1alpha1.Canary {
	t.Helper()
	cn, err := app.Wait(ctx, rolloutTimeout, fmt.Sprintf("step %d to be analysed", n), func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == n && cn.Status.StepStartedAt != nil
	})
	require.NoError(t, err)
	return cn
}

// requireStillAt requires the rollout to be at step n still, so that a measurement just taken
// lies within the step: the controller records the next step before it changes the route.
func requireStillAt(t *testing.T, ctx context.Context, app *framework.App, n int32) {
	t.Helper()
	cn, err := app.Canary(ctx)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseProgressing, cn.Status.Phase, "the measurement ended within step %d", n)
	require.Equal(t, n, cn.Status.Step, "the measurement ended within step %d", n)
}

// waitBeforeLastCheck waits for the last step, then until three seconds before its final check.
// The rollout cannot have left its steps then, since the controller promotes only after that
// check, so what users saw up to now was seen during the steps, however late the test looks.
// requireStillAt confirms it once the counts are read.
func waitBeforeLastCheck(t *testing.T, ctx context.Context, app *framework.App, last int32) {
	t.Helper()
	cn := waitStepStarted(t, ctx, app, last)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	// Three seconds leave room for the scrapes a test makes before it checks the step again.
	case <-time.After(time.Until(cn.Status.StepStartedAt.Add(cn.AnalysisInterval() - 3*time.Second))):
	}
}

// waitSucceeded waits for the end of the rollout and requires its success.
func waitSucceeded(t *testing.T, ctx context.Context, app *framework.App) *v1alpha1.Canary {
	t.Helper()
	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase, framework.Describe(cn))
	return cn
}

// settle starts a measured period after a change the test just saw: it waits until the data
// plane reports every route of the app loaded at its current generation (the status it writes
// once it serves it), gives a second to what has no route status (a Service's selector, Ready
// pods), then waits for every request the groups sent before to be answered. A period read from
// now on holds only requests sent once the data plane served the change: a loaded machine slowing
// any of these down makes the test wait, never count the wrong requests.
func settle(t *testing.T, ctx context.Context, app *framework.App, groups ...users) {
	t.Helper()
	require.NoError(t, app.Settle(ctx))
	for _, g := range groups {
		require.NoError(t, g.g.Barrier(ctx), "the requests %s sent before the change are answered", g.name)
	}
}

// users is one group of users and its name in messages.
type users struct {
	name string
	g    *load.Generator
}

// readAll reads every group's counts at once.
func readAll(groups []users) []load.Counts {
	out := make([]load.Counts, len(groups))
	for i, u := range groups {
		out[i] = u.g.Counts()
	}
	return out
}

// assertOnly asserts that a group's answers in a period all came from version, that none
// failed, and that at least min requests were counted.
func assertOnly(t *testing.T, c load.Counts, version string, minRequests int, who string) {
	t.Helper()
	assert.GreaterOrEqual(t, c.Total, minRequests, "%s: requests counted", who)
	assert.Equal(t, 1.0, c.Share(version), "%s: every answer from %s: %v", who, version, c.ByVersion)
	assert.Zero(t, c.Errors, "%s: every request answered", who)
	assert.Zero(t, c.ErrorRate(), "%s: no failed requests: %v", who, c.ByCode)
}

// assertEveryoneOn measures a few seconds of every group's traffic, once the rollout is over,
// and asserts all of it came from version.
func assertEveryoneOn(t *testing.T, ctx context.Context, app *framework.App, version string, groups ...users) {
	t.Helper()
	settle(t, ctx, app, groups...)
	before := readAll(groups)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(3 * time.Second):
	}
	for i, c := range readAll(groups) {
		assertOnly(t, c.Sub(before[i]), version, rate, groups[i].name+" after the rollout")
	}
}

// logSwitched shows what the users who saw more than one version saw, in order.
func logSwitched(t *testing.T, c load.Counts) {
	t.Helper()
	for _, i := range c.Switched() {
		t.Logf("user %d saw %v", i, c.Users[i].Versions)
	}
}

// logFailures shows the requests of a load that got no answer.
func logFailures(t *testing.T, g *load.Generator) {
	t.Helper()
	for _, f := range g.Failures() {
		t.Logf("request without an answer: %s", f)
	}
}

func TestABTestingByHeader(t *testing.T) {
	t.Parallel()
	for _, r := range meshRouters {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			app := newApp(t, ctx, framework.AppOptions{Namespace: "ab-" + r.name, Rate: busyRate, Canary: func(cn *v1alpha1.Canary) {
				r.use(cn)
				abTesting(cn)
			}})
			cohort, err := app.StartLoad(ctx, load.Options{Rate: busyRate, Header: insiders})
			require.NoError(t, err)
			groups := []users{{"ordinary users", app.Load}, {"the x-canary: insider cohort", cohort}}

			require.NoError(t, app.Release(ctx, v2))
			waitStepStarted(t, ctx, app, 1)
			settle(t, ctx, app, groups...)
			before := readAll(groups)
			waitBeforeLastCheck(t, ctx, app, 2)
			after := readAll(groups)
			requireStillAt(t, ctx, app, 2)
			ordinary, insider := after[0].Sub(before[0]), after[1].Sub(before[1])
			t.Logf("during the experiment: ordinary users %v, insiders %v", ordinary.ByVersion, insider.ByVersion)
			assertOnly(t, ordinary, "1.0.0", 1000, "ordinary users during the experiment")
			assertOnly(t, insider, "2.0.0", 1000, "the cohort during the experiment")

			waitSucceeded(t, ctx, app)
			assertRouteWeights(t, ctx, app, []int32{0}, "the split never moved: only the cohort reached the canary")
			assertEveryoneOn(t, ctx, app, "2.0.0", groups...)
		})
	}
}

func TestBlueGreenWithMirroring(t *testing.T) {
	t.Parallel()
	for _, r := range meshRouters {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			app := newApp(t, ctx, framework.AppOptions{Namespace: "bluegreen-" + r.name, Canary: func(cn *v1alpha1.Canary) {
				r.use(cn)
				blueGreen(cn)
				// The built-in checks read the canary's own metrics: mirroring gives it requests
				// while no user reaches it.
				cn.Spec.Analysis.Mirror = true
			}})
			start := app.Load.Counts()

			require.NoError(t, app.Release(ctx, v2))
			waitStepStarted(t, ctx, app, 1)
			settle(t, ctx, app, users{"users", app.Load})
			before := app.Load.Counts()
			primaryBefore, canaryBefore := readSides(t, ctx, app)
			waitBeforeLastCheck(t, ctx, app, 2)
			iterations := app.Load.Counts().Sub(before)
			primaryAfter, canaryAfter := readSides(t, ctx, app)
			requireStillAt(t, ctx, app, 2)
			served := primaryAfter.Sub(primaryBefore).Sum().Total
			mirrored := canaryAfter.Sub(canaryBefore).Sum().Mirrored
			t.Logf("during the iterations: users %v (%d skipped by the generator); the primary's pods got %d requests, the canary's %d mirrored ones",
				iterations.ByVersion, iterations.Skipped, served, mirrored)
			assertOnly(t, iterations, "1.0.0", 5*rate, "users during the iterations")
			// The readings are not simultaneous; a fifth either way allows for it.
			assert.InDelta(t, served, mirrored, 0.2*float64(served), "every request the primary served was mirrored to the canary")

			// The switch: every user on the canary at once, then on the promoted primary.
			require.Eventually(t, func() bool { return slices.Contains(app.RouteWeights(), 100) }, rolloutTimeout, 50*time.Millisecond, "the route switches to the canary")
			require.NoError(t, app.WaitRoutesLoaded(ctx, 30*time.Second))
			settle(t, ctx, app, users{"users", app.Load})
			switched := app.Load.Counts()
			finalising, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFinalising, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
			require.NoError(t, err)
			onCanary := app.Load.Counts().Sub(switched)
			t.Logf("from the switch to %s: users %v", finalising.Status.Phase, onCanary.ByVersion)
			// The window lasts as long as the primary takes to roll out the new version, which on
			// an idle machine can end within the second settle waits; any request in it counts.
			if onCanary.Total > 0 {
				assertOnly(t, onCanary, "2.0.0", 1, "users from the switch on, on the canary")
			}
			back := app.Load.Counts()
			waitSucceeded(t, ctx, app)
			assertRouteWeights(t, ctx, app, []int32{0, 100, 0}, "blue/green: the primary, the canary, the promoted primary")
			assertEveryoneOn(t, ctx, app, "2.0.0", users{"users", app.Load})
			onPrimary := app.Load.Counts().Sub(back)
			t.Logf("from %s on: users %v", finalising.Status.Phase, onPrimary.ByVersion)
			assertOnly(t, onPrimary, "2.0.0", rate, "users back on the promoted primary")

			whole := app.Load.Counts().Sub(start)
			logFailures(t, app.Load)
			t.Logf("the whole rollout: %d requests, %v, %d without an answer", whole.Total, whole.ByCode, whole.Errors)
			assert.Zero(t, whole.Errors, "no request failed across the switch and back")
			assert.Zero(t, whole.ErrorRate(), "no request failed across the switch and back: %v", whole.ByCode)
		})
	}
}

// kubernetesApp starts an app on provider kubernetes, which writes no route: users reach the apex
// Service through an HTTPRoute of their own on the harness Gateway.
func kubernetesApp(t *testing.T, ctx context.Context, o framework.AppOptions) *framework.App {
	t.Helper()
	o.Objects = append(o.Objects, framework.HTTPRouteTo("podinfo-users", framework.Host(o.Namespace), framework.Name, 9898))
	canary := o.Canary
	o.Canary = func(cn *v1alpha1.Canary) {
		useKubernetes(cn)
		if canary != nil {
			canary(cn)
		}
	}
	return newApp(t, ctx, o)
}

// apexSelector reads the apex Service's selector, which is the routing under provider kubernetes.
func apexSelector(ctx context.Context, app *framework.App) map[string]string {
	svc := &corev1.Service{}
	if err := app.Client().Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: framework.Name}, svc); err != nil {
		return nil
	}
	return svc.Spec.Selector
}

func TestBlueGreenServiceSwitchWithoutMesh(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := kubernetesApp(t, ctx, framework.AppOptions{Namespace: "bluegreen-kubernetes", Canary: func(cn *v1alpha1.Canary) {
		blueGreen(cn)
		// Without a mesh nothing can mirror requests to the canary before the switch, so the
		// built-in checks, which read the canary's own metrics, would find no data: this
		// rollout runs its iterations without checks.
		cn.Spec.Analysis.Metrics = nil
	}})
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, apexSelector(ctx, app), "the Service selects the primary's pods")
	start := app.Load.Counts()

	require.NoError(t, app.Release(ctx, v2))
	waitStepStarted(t, ctx, app, 1)
	settle(t, ctx, app, users{"users", app.Load})
	before := app.Load.Counts()
	waitBeforeLastCheck(t, ctx, app, 2)
	iterations := app.Load.Counts().Sub(before)
	requireStillAt(t, ctx, app, 2)
	t.Logf("during the iterations: users %v", iterations.ByVersion)
	assertOnly(t, iterations, "1.0.0", 10*rate, "users during the iterations")

	require.Eventually(t, func() bool { return apexSelector(ctx, app)["app"] == "podinfo" }, rolloutTimeout, 50*time.Millisecond, "the Service switches to the canary's pods")
	settle(t, ctx, app, users{"users", app.Load})
	switched := app.Load.Counts()
	waitSucceeded(t, ctx, app)
	assert.Equal(t, map[string]string{"app": "podinfo-primary"}, apexSelector(ctx, app), "the Service selects the promoted primary's pods again")
	assertEveryoneOn(t, ctx, app, "2.0.0", users{"users", app.Load})
	afterSwitch := app.Load.Counts().Sub(switched)
	t.Logf("from the switch on: users %v", afterSwitch.ByVersion)
	assertOnly(t, afterSwitch, "2.0.0", rate, "users from the switch on")

	whole := app.Load.Counts().Sub(start)
	logFailures(t, app.Load)
	t.Logf("the whole rollout: %d requests, %v, %d without an answer", whole.Total, whole.ByCode, whole.Errors)
	assert.Zero(t, whole.Errors, "no request failed across the switch and back")
	assert.Zero(t, whole.ErrorRate(), "no request failed across the switch and back: %v", whole.ByCode)
}

func TestMirroredStepBeforeTheCanary(t *testing.T) {
	t.Parallel()
	for _, r := range meshRouters {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			app := newApp(t, ctx, framework.AppOptions{Namespace: "mirror-" + r.name, Canary: func(cn *v1alpha1.Canary) {
				r.use(cn)
				cn.Spec.Analysis.Mirror = true
			}})

			require.NoError(t, app.Release(ctx, v2))
			cn := waitStepStarted(t, ctx, app, 1)
			require.Zero(t, cn.Status.CanaryWeight, "the first step only mirrors")
			settle(t, ctx, app)
			// The primary's and the canary's pods are read one after the other, in the same order
			// before and after, so both readings cover nearly the same window. Comparing what
			// the two sides' pods served, rather than what the load generator counted, keeps
			// the comparison true when a loaded machine slows the generator down.
			primaryBefore, canaryBefore := readSides(t, ctx, app)
			// The step lasts an interval (10s) from its start; measure well inside it, leaving time
			// for the scrapes on either side.
			seen, err := app.Traffic(ctx, 4*time.Second)
			require.NoError(t, err)
			primaryAfter, canaryAfter := readSides(t, ctx, app)
			requireStillAt(t, ctx, app, 1)

			primary := primaryAfter.Sub(primaryBefore).Sum()
			canary := canaryAfter.Sub(canaryBefore).Sum()
			t.Logf("mirrored step: users %v (%d skipped by the generator); the primary's pods got %d requests; the canary's %d, %d of them mirrored",
				seen.ByVersion, seen.Skipped, primary.Total, canary.Total, canary.Mirrored)
			// At 30 rps, 4 s is 120 requests; a loaded 2-core machine has delivered a third
			// fewer, so the floor only asks for a sample worth judging.
			assertOnly(t, seen, "1.0.0", 2*rate, "users during the mirrored step")
			assert.Zero(t, primary.Mirrored, "the primary's pods received no mirrored request")
			assert.Positive(t, canary.Mirrored, "the canary's pods received mirrored requests")
			assert.Equal(t, canary.Mirrored, canary.Total, "the canary's pods received no request but mirrored ones")
			// The readings are not simultaneous; a fifth either way allows for it.
			assert.InDelta(t, primary.Total, canary.Mirrored, 0.2*float64(primary.Total), "every request the primary served was mirrored (mirrorWeight unset is 100%%)")

			waitSucceeded(t, ctx, app)
			assertRouteWeights(t, ctx, app, []int32{0, 20, 50, 0}, "the mirrored step kept the split at 0, then the weighted steps")
			assertOnlyVersion(t, ctx, app, "2.0.0")
		})
	}
}

// readSides reads the request counters of the primary's pods and the canary's at once, so the
// two readings are as close in time as the scrapes allow, and a loaded machine's slow scrapes
// cost the measurement the slower of them, not their sum.
func readSides(t *testing.T, ctx context.Context, app *framework.App) (primary, canary framework.PodRequests) {
	t.Helper()
	var primaryErr, canaryErr error
	var wg sync.WaitGroup
	wg.Go(func() { primary, primaryErr = app.PodRequests(ctx, framework.Name+"-primary") })
	wg.Go(func() { canary, canaryErr = app.PodRequests(ctx, framework.Name) })
	wg.Wait()
	require.NoError(t, primaryErr)
	require.NoError(t, canaryErr)
	return primary, canary
}

func TestSessionAffinityKeepsUsersOnTheirVersion(t *testing.T) {
	t.Parallel()
	for _, r := range meshRouters {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			app := newApp(t, ctx, framework.AppOptions{Namespace: "sticky-" + r.name, Canary: func(cn *v1alpha1.Canary) {
				r.use(cn)
				sticky(cn)
			}})

			require.NoError(t, app.Release(ctx, v2))
			waitStepStarted(t, ctx, app, 1)
			// Users arriving from the first weighted step on, each with a cookie jar.
			const stickyUsers = 50
			returning, err := app.StartLoad(ctx, load.Options{Rate: busyRate, Users: stickyUsers})
			require.NoError(t, err)
			// Until the steps end; the promotion is checked below.
			waitBeforeLastCheck(t, ctx, app, 2)
			during := returning.Counts()
			route := app.RoutesYAML(ctx)
			requireStillAt(t, ctx, app, 2)
			if during.Flips > 0 {
				t.Logf("the route at step 2:\n%s", route)
			}
			onCanary, onPrimary := during.UsersOn("2.0.0"), during.UsersOn("1.0.0")
			t.Logf("steps 1-2: %d requests, %v; %d users on the canary, %d on the primary, %d flips",
				during.Total, during.ByVersion, onCanary, onPrimary, during.Flips)
			assert.GreaterOrEqual(t, during.Total, 1000, "requests counted")
			assert.Zero(t, during.Errors)
			assert.Zero(t, during.Flips, "no user switched version while the steps ran; users who did: %v", during.Switched())
			assert.Empty(t, during.Switched())
			logSwitched(t, during)
			assert.Positive(t, onCanary, "some users landed on the canary")
			assert.Positive(t, onPrimary, "some users stayed on the primary")
			assert.Equal(t, stickyUsers, onCanary+onPrimary, "every user was pinned to one version")

			waitSucceeded(t, ctx, app)
			assertRouteWeights(t, ctx, app, []int32{0, 20, 50, 100, 0}, "the split walked every step, then everyone went to the canary while the primary was updated")
			assertEveryoneOn(t, ctx, app, "2.0.0", users{"returning users", returning}, users{"users without cookies", app.Load})
			// Before the primary's pods are replaced, everyone is switched to the canary: the users
			// pinned to the primary move to the new version once, and nobody ever goes back.
			end := returning.Counts()
			for i, u := range end.Users {
				seen := u.Seen()
				assert.LessOrEqual(t, u.Flips, 1, "user %d switched version at most once over the whole rollout: %v", i, seen)
				if len(seen) == 2 {
					assert.Equal(t, []string{"1.0.0", "2.0.0"}, seen, "user %d only ever moved forward", i)
				}
				if first := during.Users[i].Seen(); len(first) > 0 && first[0] == "2.0.0" {
					assert.Equal(t, []string{"2.0.0"}, seen, "user %d, on the canary, stayed on the new version", i)
				}
			}
			t.Logf("from the end of the steps through the promotion: %d flips, each a user pinned to the primary moving to the new version once", end.Sub(during).Flips)
		})
	}
}

func TestReplicaRatioWithoutMesh(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := kubernetesApp(t, ctx, framework.AppOptions{
		Namespace: "ratio", Replicas: 9, Rate: busyRate,
		// The label both versions' pods share outside the selector, which the apex Service selects.
		PodLabels: map[string]string{"app.kubernetes.io/name": framework.Name},
		Canary: func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.StepWeights = []int32{10, 50}
		},
	})
	assertEveryoneOn(t, ctx, app, "1.0.0", users{"users", app.Load})

	require.NoError(t, app.Release(ctx, v2))
	cn := waitStepStarted(t, ctx, app, 1)
	assert.Equal(t, int32(10), cn.Status.CanaryWeight, "1 canary pod beside 9 primaries")
	settle(t, ctx, app)
	// Within the step's 10s interval.
	ten, err := app.Traffic(ctx, 5*time.Second)
	require.NoError(t, err)
	requireStillAt(t, ctx, app, 1)
	t.Logf("at the 10%% step: %d requests, %v", ten.Total, ten.ByVersion)
	// The data plane spreads a Service's requests round-robin over its Ready pods, so 1 pod of 10
	// takes 10% almost exactly; 3 points either way allows for a pod's readiness changing within
	// the window.
	assert.InDelta(t, 0.10, ten.Share("2.0.0"), 0.03, "the canary's share of real traffic at the 10%% step: %v", ten.ByVersion)
	assert.InDelta(t, 1.0, ten.Share("1.0.0")+ten.Share("2.0.0"), 0.001)
	assert.Zero(t, ten.ErrorRate(), "%v", ten.ByCode)

	cn = waitStepStarted(t, ctx, app, 2)
	assert.Equal(t, int32(50), cn.Status.CanaryWeight, "9 canary pods beside 9 primaries")
	settle(t, ctx, app)
	half, err := app.Traffic(ctx, 5*time.Second)
	require.NoError(t, err)
	requireStillAt(t, ctx, app, 2)
	t.Logf("at the 50%% step: %d requests, %v", half.Total, half.ByVersion)
	assert.InDelta(t, 0.50, half.Share("2.0.0"), 0.05, "the canary's share at the 50%% step: %v", half.ByVersion)

	waitSucceeded(t, ctx, app)
	assertEveryoneOn(t, ctx, app, "2.0.0", users{"users", app.Load})
	canary, err := app.Deployment(ctx, framework.Name)
	require.NoError(t, err)
	assert.Zero(t, ptr.Deref(canary.Spec.Replicas, 1), "the canary is scaled down after the promotion")
}

// userObject reads a manifest as the user wrote it; Create fills it with what the apiserver
// stored.
func userObject(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(manifest), &u.Object))
	return u
}

// userView is what a user wrote of an object, field by field as JSON: its spec, labels and
// annotations.
func userView(t *testing.T, u *unstructured.Unstructured) map[string]string {
	t.Helper()
	view := map[string]string{}
	for _, path := range [][]string{{"spec"}, {"metadata", "labels"}, {"metadata", "annotations"}} {
		v, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		require.NoError(t, err)
		b, err := json.Marshal(v)
		require.NoError(t, err)
		view[strings.Join(path, ".")] = string(b)
	}
	return view
}

// readUserObject reads the user's object as the apiserver holds it now.
func readUserObject(t *testing.T, ctx context.Context, app *framework.App, original *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(original.GroupVersionKind())
	require.NoError(t, app.Client().Get(ctx, client.ObjectKeyFromObject(original), u))
	return u
}

// assertTakenOver asserts that trafficctl really rewrote the user's route mid-rollout, so that
// getting it back untouched proves something.
func assertTakenOver(t *testing.T, ctx context.Context, app *framework.App, original *unstructured.Unstructured) {
	t.Helper()
	now := userView(t, readUserObject(t, ctx, app, original))
	assert.NotEqual(t, userView(t, original)["spec"], now["spec"], "trafficctl rewrote the route for the rollout")
	assert.Contains(t, now["spec"], `"trafficctl-`, "the strategy's rules are in the route: %s", now["spec"])
}

// assertGivenBack deletes the Canary and asserts that the user's object is exactly as it was
// created: spec, labels and annotations.
func assertGivenBack(t *testing.T, ctx context.Context, app *framework.App, original *unstructured.Unstructured) {
	t.Helper()
	cn, err := app.Canary(ctx)
	require.NoError(t, err)
	require.NoError(t, app.Client().Delete(ctx, cn))
	require.Eventually(t, func() bool {
		_, err := app.Canary(ctx)
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond, "the Canary is deleted once its finalizer gave the route back")
	got := userView(t, readUserObject(t, ctx, app, original))
	want := userView(t, original)
	for field := range want {
		assert.Equal(t, want[field], got[field], "%s of %s %s is what the user wrote", field, original.GetKind(), original.GetName())
	}
}

// answer is what one request through the data plane got.
type answer struct {
	code              int
	version, servedBy string
	location          string
}

// ask sends one request through the data plane to the app, as a user would, redirects not
// followed.
func ask(t *testing.T, ctx context.Context, app *framework.App, path string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.DataPlane.URL()+path, nil)
	require.NoError(t, err)
	req.Host = app.Host
	for k, vs := range header {
		req.Header[k] = vs
	}
	hc := &http.Client{
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return answer{code: resp.StatusCode, version: resp.Header.Get("X-Version"), servedBy: resp.Header.Get("X-Served-By"), location: resp.Header.Get("Location")}
}

// assertUserRulesHold asserts, mid-rollout, that the user's own rules still act: the redirect
// rule trafficctl must not touch, and the apex rule's response header, on the primary's answers
// and on the canary's, whose rule trafficctl derived from the user's.
func assertUserRulesHold(t *testing.T, ctx context.Context, app *framework.App, toPrimary, toCanary http.Header) {
	t.Helper()
	assert.Equal(t, answer{code: http.StatusOK, version: "1.0.0", servedBy: "storefront"}, ask(t, ctx, app, "/", toPrimary), "a request the strategy keeps on the primary")
	assert.Equal(t, answer{code: http.StatusOK, version: "2.0.0", servedBy: "storefront"}, ask(t, ctx, app, "/", toCanary), "a request the strategy sends to the canary keeps the user's response header")
}

// userHTTPRoute is a route written by hand: a redirect rule trafficctl must not touch, and a
// rule for the apex Service with a method match, a response header and a timeout.
const userHTTPRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: storefront
  labels:
    team: shop
  annotations:
    example.com/owner: shop-team
    example.com/note: written by hand
spec:
  parentRefs:
  - name: public-gw
    namespace: infra
  hostnames: [HOST]
  rules:
  - name: legacy
    matches:
    - path: {type: PathPrefix, value: /legacy}
    filters:
    - type: RequestRedirect
      requestRedirect:
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /}
        statusCode: 301
  - name: app
    matches:
    - path: {type: PathPrefix, value: /}
      method: GET
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set:
        - {name: X-Served-By, value: storefront}
    timeouts:
      request: 5s
    backendRefs:
    - name: podinfo
      port: 9898
`

func TestUserHTTPRouteThroughABTestingIsGivenBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const ns = "own-httproute"
	route := userObject(t, strings.ReplaceAll(userHTTPRoute, "HOST", framework.Host(ns)))
	app := newApp(t, ctx, framework.AppOptions{Namespace: ns, Objects: []client.Object{route}, Canary: func(cn *v1alpha1.Canary) {
		cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
		cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: route.GetName()}
		abTesting(cn)
	}})
	cohort, err := app.StartLoad(ctx, load.Options{Rate: rate, Header: insiders})
	require.NoError(t, err)
	groups := []users{{"ordinary users", app.Load}, {"the x-canary: insider cohort", cohort}}

	require.NoError(t, app.Release(ctx, v2))
	waitStepStarted(t, ctx, app, 1)
	settle(t, ctx, app, groups...)
	before := readAll(groups)
	assertTakenOver(t, ctx, app, route)
	assertUserRulesHold(t, ctx, app, nil, insiders)
	redirected := ask(t, ctx, app, "/legacy/a", insiders)
	assert.Equal(t, http.StatusMovedPermanently, redirected.code, "the user's redirect rule comes first, for the cohort too")
	assert.True(t, strings.HasSuffix(redirected.location, "/a"), redirected.location)
	waitBeforeLastCheck(t, ctx, app, 2)
	after := readAll(groups)
	requireStillAt(t, ctx, app, 2)
	assertOnly(t, after[0].Sub(before[0]), "1.0.0", 10*rate, "ordinary users through the user's route")
	assertOnly(t, after[1].Sub(before[1]), "2.0.0", 10*rate, "the cohort through the user's route")

	waitSucceeded(t, ctx, app)
	assertEveryoneOn(t, ctx, app, "2.0.0", groups...)
	assertGivenBack(t, ctx, app, route)
}

// userVirtualService is a VirtualService written by hand: a route trafficctl must not touch,
// and one for the apex Service with a method match, a response header and a timeout.
const userVirtualService = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: storefront
  labels:
    team: shop
  annotations:
    example.com/owner: shop-team
    example.com/note: written by hand
spec:
  hosts: [HOST]
  gateways: [infra/public-gw]
  http:
  - name: static
    match:
    - uri: {prefix: /static}
    route:
    - destination: {host: static-assets, port: {number: 8080}}
  - name: app
    match:
    - uri: {prefix: /}
      method: {exact: GET}
    headers:
      response:
        set: {x-served-by: storefront}
    timeout: 5s
    route:
    - destination: {host: podinfo, port: {number: 9898}}
`

func TestUserVirtualServiceThroughStickyRolloutIsGivenBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const ns = "own-virtualservice"
	vs := userObject(t, strings.ReplaceAll(userVirtualService, "HOST", framework.Host(ns)))
	app := newApp(t, ctx, framework.AppOptions{Namespace: ns, Objects: []client.Object{vs}, Canary: func(cn *v1alpha1.Canary) {
		cn.Spec.Provider = v1alpha1.ProviderIstio
		cn.Spec.Analysis.MetricSet = v1alpha1.MetricSetApp // as useIstio says
		cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
		cn.Spec.Service.VirtualServiceRef = &v1alpha1.LocalObjectReference{Name: vs.GetName()}
		sticky(cn)
		// A mirrored step first, so that the route also carries a mirror to give back.
		cn.Spec.Analysis.Mirror = true
	}})

	require.NoError(t, app.Release(ctx, v2))
	cn := waitStepStarted(t, ctx, app, 2) // the first weighted step, after the mirrored one
	settle(t, ctx, app)
	assertUserRulesHold(t, ctx, app,
		http.Header{"Cookie": {"podinfo-primary=" + cn.Status.LastAppliedSpec}},
		http.Header{"Cookie": {"podinfo-canary=" + cn.Status.LastAppliedSpec}})
	// 50 users, so that some land on the canary's 20% all but surely (0.8^50 that none does).
	returning, err := app.StartLoad(ctx, load.Options{Rate: 50, Users: 50})
	require.NoError(t, err)
	assertTakenOver(t, ctx, app, vs)
	// The user's other route names a Service that does not exist: answered 500, not by podinfo.
	assert.Equal(t, http.StatusInternalServerError, ask(t, ctx, app, "/static/logo.png", nil).code, "the user's other route still takes /static")
	waitBeforeLastCheck(t, ctx, app, 3)
	during := returning.Counts()
	requireStillAt(t, ctx, app, 3)
	t.Logf("through the user's VirtualService: %v, %d users on the canary, %d flips", during.ByVersion, during.UsersOn("2.0.0"), during.Flips)
	assert.Zero(t, during.Errors)
	assert.Zero(t, during.Flips, "no user switched version while the steps ran: %v", during.Switched())
	logSwitched(t, during)
	assert.Positive(t, during.UsersOn("2.0.0"), "some users landed on the canary")

	waitSucceeded(t, ctx, app)
	assertEveryoneOn(t, ctx, app, "2.0.0", users{"returning users", returning}, users{"users without cookies", app.Load})
	assertGivenBack(t, ctx, app, vs)
}
