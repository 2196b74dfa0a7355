package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
	"github.com/trafficctl/trafficctl/test/e2e/framework"
	"github.com/trafficctl/trafficctl/test/e2e/load"
)

var env *framework.Env

func TestMain(m *testing.M) { os.Exit(run(m)) }

// parallelScenarios is how many scenarios run at once unless -test.parallel says otherwise. A
// scenario spends most of its time waiting out analysis intervals, so running them GOMAXPROCS at
// a time (go test's default) would make the suite take many times longer; but each also runs a
// controller, pods and a load of 30 to 100 requests a second, and on a 2-core machine more than
// about a dozen at once starve the load generators and the data plane, which then count fewer
// requests than the scenarios need to judge.
const parallelScenarios = 12

func run(m *testing.M) int {
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", strconv.Itoa(parallelScenarios))
	}
	dir, err := os.MkdirTemp("", "trafficctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	started := time.Now()
	env, err = framework.StartEnv(ctx, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the e2e environment: %v\nlogs: %s\n", err, dir)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e environment up in %s; logs in %s\n", time.Since(started).Round(time.Millisecond), dir)
	code := m.Run()
	env.Stop()
	if left := framework.ChildProcesses(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "processes left behind after the environment stopped: %v\n", left)
		code = 1
	}
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "logs kept in %s\n", dir)
	}
	return code
}

const (
	rolloutTimeout = 3 * time.Minute
	rate           = 30
)

var (
	v1 = framework.Version{Tag: "1.0.0"}
	v2 = framework.Version{Tag: "2.0.0"}
)

// newApp starts a scenario and stops it when the test ends, showing the controller's last log
// lines if the test failed.
func newApp(t *testing.T, ctx context.Context, o framework.AppOptions) *framework.App {
	t.Helper()
	if o.Initial.Tag == "" {
		o.Initial = v1
	}
	if o.Rate == 0 {
		o.Rate = rate
	}
	app, err := env.NewApp(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			if cn, err := app.Canary(context.Background()); err == nil {
				for _, d := range cn.Status.Decisions {
					t.Logf("decision step %d weight %d: %s %s", d.Step, d.CanaryWeight, d.Verdict, d.Message)
				}
			}
			t.Logf("controller log (%s):\n%s", app.ControllerLog(), app.Controller.Tail(30))
			t.Logf("routes now:\n%s", app.RoutesYAML(context.Background()))
		}
		app.Stop()
	})
	return app
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// assertOnlyVersion measures a few seconds of traffic and asserts every request was answered
// by the version, without errors.
func assertOnlyVersion(t *testing.T, ctx context.Context, app *framework.App, version string) load.Counts {
	t.Helper()
	// The route is written just after the status that asks for it, and requests already in
	// flight to a slow version finish after the switch: measure once the data plane serves the
	// route back on the primary, and the requests sent before have been answered.
	require.Eventually(t, func() bool {
		w := app.RouteWeights()
		return len(w) > 0 && w[len(w)-1] == 0
	}, 30*time.Second, 100*time.Millisecond, "the route sends all traffic to the primary")
	require.NoError(t, app.Settle(ctx))
	seen, err := app.Traffic(ctx, 3*time.Second)
	require.NoError(t, err)
	require.Greater(t, seen.Total, 2*rate, "the load kept running")
	assert.Equal(t, 1.0, seen.Share(version), "every request answered by %s: %v", version, seen.ByVersion)
	assert.Zero(t, seen.ErrorRate(), "no failed requests: %v", seen.ByCode)
	return seen
}

// assertRouteWeights asserts the exact sequence of canary weights the route carried, waiting a
// moment for a last write that follows the status the test saw.
func assertRouteWeights(t *testing.T, ctx context.Context, app *framework.App, want []int32, msg string) {
	t.Helper()
	assert.Equal(t, want, app.WaitRouteWeights(ctx, want, 10*time.Second), msg)
}

func failedDecision(cn *v1alpha1.Canary) *v1alpha1.Decision {
	for i := range cn.Status.Decisions {
		if cn.Status.Decisions[i].Verdict == v1alpha1.VerdictFail {
			return &cn.Status.Decisions[i]
		}
	}
	return nil
}

func TestHealthyRevisionIsPromoted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "healthy"})
	assertOnlyVersion(t, ctx, app, "1.0.0")

	require.NoError(t, app.Release(ctx, v2))
	// At the 50% step, users really are split about evenly.
	_, err := app.Wait(ctx, rolloutTimeout, "the 50% step to be analysed", func(cn *v1alpha1.Canary) bool {
		return cn.Status.CanaryWeight == 50 && cn.Status.StepStartedAt != nil
	})
	require.NoError(t, err)
	mid, err := app.Traffic(ctx, 2*time.Second)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, mid.Share("2.0.0"), 0.2, "about half the users on the canary at 50%%: %v", mid.ByVersion)
	assert.InDelta(t, 1.0, mid.Share("1.0.0")+mid.Share("2.0.0"), 0.001)

	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase, framework.Describe(cn))
	assertRouteWeights(t, ctx, app, []int32{0, 20, 50, 0}, "the route walked every step")
	assertOnlyVersion(t, ctx, app, "2.0.0")
	primary, err := app.Deployment(ctx, "podinfo-primary")
	require.NoError(t, err)
	assert.Equal(t, "demoapp:2.0.0", primary.Spec.Template.Spec.Containers[0].Image)
	passed := map[int32]bool{}
	for _, d := range cn.Status.Decisions {
		assert.NotEqual(t, v1alpha1.VerdictFail, d.Verdict, d.Message)
		if d.Verdict == v1alpha1.VerdictPass {
			passed[d.Step] = true
		}
	}
	assert.Equal(t, map[int32]bool{1: true, 2: true}, passed, "every step passed its checks")
}

func TestErrorsAreRolledBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "errors"})

	before := app.Load.Counts()
	require.NoError(t, app.Release(ctx, framework.Version{Tag: "2.0.0", ErrorRate: 0.1}))
	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
	require.NoError(t, err)
	attempt := app.Load.Counts().Sub(before)
	assert.Positive(t, attempt.ByVersionCode["2.0.0"][500], "users met the bad version's errors while it had traffic: %v", attempt.ByVersionCode)
	assert.Zero(t, attempt.ByVersionCode["1.0.0"][500], "the primary never failed")
	require.Equal(t, v1alpha1.PhaseFailed, cn.Status.Phase, framework.Describe(cn))
	d := failedDecision(cn)
	require.NotNil(t, d)
	assert.Equal(t, "request-success-rate", d.Metric)
	assert.Contains(t, d.Message, "outside >= 99")
	assertRouteWeights(t, ctx, app, []int32{0, 20, 0}, "rolled back from the first step")

	// Users are back on the good version, and the gateway's error rate returns to its baseline.
	assertOnlyVersion(t, ctx, app, "1.0.0")
	gatewayErrors := fmt.Sprintf(`sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"%s_.*",envoy_response_code=~"5.."}[3s])) or vector(0)`, app.Namespace)
	prom, err := prometheus.New(prometheus.Config{Address: env.Prometheus.URL(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := prom.Query(ctx, gatewayErrors, time.Now())
		return err == nil && v == 0
	}, 30*time.Second, 500*time.Millisecond, "the gateway's 5xx rate returns to zero")
}

func TestLatencyRegressionIsRolledBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "latency"})

	require.NoError(t, app.Release(ctx, framework.Version{Tag: "2.0.0", Latency: 200 * time.Millisecond}))
	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseFailed, cn.Status.Phase, framework.Describe(cn))
	d := failedDecision(cn)
	require.NotNil(t, d)
	assert.Equal(t, "request-duration", d.Metric)
	assert.Contains(t, d.Message, "outside <= 100")
	assertOnlyVersion(t, ctx, app, "1.0.0")
}

func TestControllerKilledMidRolloutResumes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "resume", Canary: func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.StepWeights = []int32{10, 20, 30, 50}
	}})

	require.NoError(t, app.Release(ctx, v2))
	_, err := app.Wait(ctx, rolloutTimeout, "step 2", func(cn *v1alpha1.Canary) bool { return cn.Status.Step == 2 })
	require.NoError(t, err)
	app.Controller.Kill()
	killed, err := app.Canary(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, killed.Status.Step, int32(2))

	require.NoError(t, app.Controller.Start(ctx))
	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase, framework.Describe(cn))
	assert.Equal(t, killed.Status.LastAppliedSpec, cn.Status.LastPromotedSpec, "the same rollout finished")
	assertRouteWeights(t, ctx, app, []int32{0, 10, 20, 30, 50, 0}, "no step repeated or skipped across the kill")
	assertOnlyVersion(t, ctx, app, "2.0.0")
}

func TestNewerRevisionSupersedesMidRollout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "supersede"})

	require.NoError(t, app.Release(ctx, v2))
	first, err := app.Wait(ctx, rolloutTimeout, "the first step", func(cn *v1alpha1.Canary) bool { return cn.Status.CanaryWeight == 20 })
	require.NoError(t, err)
	require.NoError(t, app.Release(ctx, framework.Version{Tag: "3.0.0"}))

	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase, framework.Describe(cn))
	assert.NotEqual(t, first.Status.LastAppliedSpec, cn.Status.LastPromotedSpec)
	assertRouteWeights(t, ctx, app, []int32{0, 20, 0, 20, 50, 0}, "the newer revision started from the first step")
	assertOnlyVersion(t, ctx, app, "3.0.0")
}

func TestCrashingCanaryFailsOnTheProgressDeadline(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "crash", Canary: func(cn *v1alpha1.Canary) {
		cn.Spec.ProgressDeadlineSeconds = ptr.To[int32](15)
	}})
	before := app.Load.Counts()

	require.NoError(t, app.Release(ctx, framework.Version{Tag: "2.0.0", Crash: true}))
	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseFailed, cn.Status.Phase, framework.Describe(cn))
	ready := meta.FindStatusCondition(cn.Status.Conditions, "Ready")
	require.NotNil(t, ready)
	assert.Equal(t, "ProgressDeadlineExceeded", ready.Reason)
	assert.Contains(t, ready.Message, "did not become ready within 15s")
	assert.True(t, strings.Contains(ready.Message, "replicas available") || strings.Contains(ready.Message, "replicas on the current template"), ready.Message)

	assertRouteWeights(t, ctx, app, []int32{0}, "traffic never left the primary")
	all := app.Load.Counts().Sub(before)
	assert.Equal(t, 1.0, all.Share("1.0.0"), "every request of the whole attempt answered by the primary: %v", all.ByVersion)
	assert.Zero(t, all.ErrorRate())
}

func TestIstioVirtualServiceRollout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "istio", Canary: func(cn *v1alpha1.Canary) {
		useIstio(cn)
		// The default metric set of provider istio: the destination's istio_requests_total, which
		// the data plane reports like a sidecar.
		cn.Spec.Analysis.MetricSet = ""
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{
			{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(99.0)}},
			{Name: "request-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(1.0)}},
		}
	}})
	assertOnlyVersion(t, ctx, app, "1.0.0")

	require.NoError(t, app.Release(ctx, v2))
	_, err := app.Wait(ctx, rolloutTimeout, "the 50% step to be analysed", func(cn *v1alpha1.Canary) bool {
		return cn.Status.CanaryWeight == 50 && cn.Status.StepStartedAt != nil
	})
	require.NoError(t, err)
	mid, err := app.Traffic(ctx, 2*time.Second)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, mid.Share("2.0.0"), 0.2, "about half the users on the canary at 50%%: %v", mid.ByVersion)

	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase, framework.Describe(cn))
	assertRouteWeights(t, ctx, app, []int32{0, 20, 50, 0}, "the VirtualService walked every step")
	assertOnlyVersion(t, ctx, app, "2.0.0")
	require.NotEmpty(t, cn.Status.Decisions)
	for _, d := range cn.Status.Decisions {
		assert.Contains(t, d.Query, `istio_requests_total{reporter="destination",destination_workload_namespace="istio",destination_workload="podinfo"`, "read from the istio metric set")
		assert.Positive(t, d.SampleSize, "over real requests: %s", d.Message)
	}
}

// useSequentialChecks replaces the threshold checks with sequential tests on errors and slow
// requests, looked at every 2 seconds within steps of 10.
func useSequentialChecks(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.CheckInterval = "2s"
	cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{
		{Name: "request-success-rate", Sequential: &v1alpha1.SequentialTest{}},
		{Name: "request-duration", Sequential: &v1alpha1.SequentialTest{SlowerThan: "100ms"}},
	}
}

func TestSequentialChecksPromoteAndRollBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app := newApp(t, ctx, framework.AppOptions{Namespace: "sequential", Canary: useSequentialChecks})

	require.NoError(t, app.Release(ctx, v2))
	cn, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase, framework.Describe(cn))
	assertRouteWeights(t, ctx, app, []int32{0, 20, 50, 0}, "each step lasted its interval, looked at every 2s")
	assertOnlyVersion(t, ctx, app, "2.0.0")

	before, promoted := app.Load.Counts(), cn.Status.LastPromotedSpec
	require.NoError(t, app.Release(ctx, framework.Version{Tag: "3.0.0", ErrorRate: 0.1}))
	_, err = app.Wait(ctx, rolloutTimeout, "the faulty release's rollout", func(cn *v1alpha1.Canary) bool { return cn.Status.LastAppliedSpec != promoted })
	require.NoError(t, err)
	cn, err = app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
	require.NoError(t, err)
	attempt := app.Load.Counts().Sub(before)
	require.Equal(t, v1alpha1.PhaseFailed, cn.Status.Phase, framework.Describe(cn))
	d := failedDecision(cn)
	require.NotNil(t, d)
	assert.Equal(t, v1alpha1.JudgeSequential, d.Judge)
	assert.True(t, d.Conclusive, d.Message)
	assert.Contains(t, d.Message, "is worse than 1.2x the primary's")
	assert.Zero(t, cn.Status.FailedChecks, "rolled back on the evidence, not on a count of failures")
	assertRouteWeights(t, ctx, app, []int32{0, 20, 50, 0, 20, 0}, "rolled back from the first step")
	rolledBackAfter := cn.Status.LastTransitionTime.Sub(d.Time.Time)
	assert.Less(t, rolledBackAfter, time.Second, "the rollback followed the conclusive check")
	t.Logf("the faulty version served %d requests (%d failed) before its rollback; decision: %s",
		attempt.ByVersion["3.0.0"], attempt.ByVersionCode["3.0.0"][500], d.Message)
	assertOnlyVersion(t, ctx, app, "2.0.0")
}
