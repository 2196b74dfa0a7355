package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// statusRolloutTimeout bounds a whole rollout of the test Canary: two steps of 3s, plus the
// scrapes and the reconciles between them.
const statusRolloutTimeout = 90 * time.Second

// statusQuick is the status command polling every 100ms, so a watch notices a change at once
// without the tests waiting on a second-long tick.
func statusQuick(f *Factory) *cobra.Command {
	o := newStatusOptions(f)
	o.PollInterval = 100 * time.Millisecond
	return statusCommand(o)
}

// statusLongStep keeps a rollout at its first step for a minute, with checks every 5s (long
// enough for the scrapes a rate needs), so a test can look at it mid-step.
func statusLongStep(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.Interval = "1m"
	cn.Spec.Analysis.CheckInterval = "5s"
	cn.Spec.Analysis.Metrics = append(cn.Spec.Analysis.Metrics, v1alpha1.CanaryMetric{
		Name: "request-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(0.0)},
	})
}

func TestStatusOnceDuringARollout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setTraffic(suiteHealthy, suiteHealthy)
	h.initialized("podinfo:1.0", statusLongStep)

	out, _, err := h.run(newStatusCommand, "podinfo")
	require.NoError(t, err)
	assert.Contains(t, out, "podinfo (namespace "+h.ns+"): Initialized")
	assert.Contains(t, out, "Traffic:         primary 100% / canary 0%")
	assert.Contains(t, out, "\nNo rollout has run yet: the next change to Deployment podinfo starts one.\n")

	h.setImage("podinfo:2.0")
	h.waitFor("the checks of step 1 to pass", statusRolloutTimeout, func(cn *v1alpha1.Canary) bool {
		latest := latestPerMetric(currentDecisions(cn))
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1 && len(latest) == 2 &&
			latest[0].Verdict == v1alpha1.VerdictPass && latest[1].Verdict == v1alpha1.VerdictPass
	})
	out, _, err = h.run(newStatusCommand, "podinfo")
	require.NoError(t, err)
	t.Log("\n" + out)
	cn := h.canary()
	assert.Contains(t, out, "podinfo (namespace "+h.ns+"): Progressing, step 1 of 2")
	assert.Contains(t, out, "Traffic:         primary 90% / canary 10%")
	assert.Contains(t, out, "Revision:        "+cn.Status.LastAppliedSpec+" is being rolled out; the primary runs "+cn.Status.LastPromotedSpec)
	assert.Contains(t, out, "Failed checks:   0 of 2 (analysis.threshold)")
	assert.Contains(t, out, "Ready:           False, Analysing: Step 1 of 2: the checks pass so far")
	success := statusLine(t, out, "request-success-rate")
	assert.Equal(t, []string{"request-success-rate", "threshold", "100", ">=", "99", "-", "Pass", "over"}, success[:8])
	assert.Contains(t, strings.Join(success, " "), "canary requests step 1 (10%)")
	rate := statusLine(t, out, "request-rate")
	assert.Equal(t, "Pass", rate[6])
	assert.Regexp(t, `Measured: +request-rate [0-9.]+ requests/s on the canary; [0-9]+ canary requests in the latest check window \(request-`, out)

	out, _, err = h.run(newStatusCommand, "podinfo", "-o", "yaml")
	require.NoError(t, err)
	var back v1alpha1.Canary
	require.NoError(t, yaml.Unmarshal([]byte(out), &back))
	assert.Equal(t, int32(1), back.Status.Step)
	assert.Equal(t, int32(10), back.Status.CanaryWeight)
}

// statusLine is the line of the checks table that starts with metric, split into its cells.
func statusLine(t *testing.T, out, metric string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == metric {
			return f
		}
	}
	t.Fatalf("no line for %s in:\n%s", metric, out)
	return nil
}

func TestStatusWatchFollowsAHealthyRolloutToItsPromotion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setTraffic(suiteHealthy, suiteHealthy)
	h.initialized("podinfo:1.0")

	// As a user runs it: right after changing the Deployment, before the controller has seen
	// the new revision. Without --wait-start, the Initialized phase would end the watch at once.
	h.setImage("podinfo:2.0")
	out, _, err := h.run(statusQuick, "podinfo", "--watch", "--wait-start", "20s", "--timeout", "90s")
	require.NoError(t, err, out)
	t.Log("\n" + out)

	step1 := strings.Index(out, "Progressing, step 1 of 2")
	step2 := strings.Index(out, "Progressing, step 2 of 2")
	succeeded := strings.Index(out, "): Succeeded")
	require.Positive(t, step1, out)
	assert.Greater(t, step2, step1, "the watch printed step 2 after step 1")
	assert.Greater(t, succeeded, step2, "and the promotion last")
	assert.Contains(t, out, "primary 90% / canary 10%")
	assert.Contains(t, out, "primary 50% / canary 50%")
	assert.Contains(t, out, "Checks:          none has run in this rollout yet\nMeasured:        nothing yet: no check of this rollout has run\n",
		"before the first check of the rollout, the view says nothing is measured yet")
	cn := h.canary()
	assert.Equal(t, v1alpha1.PhaseSucceeded, cn.Status.Phase)
	assert.True(t, strings.HasSuffix(out, "\nRollout of podinfo: Revision "+cn.Status.LastPromotedSpec+" is promoted and serves all traffic.\n"), out)

	// Once the rollout has ended, a watch without --wait-start returns at once.
	out, _, err = h.run(statusQuick, "podinfo", "--watch", "--timeout", "5s")
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out, "): Succeeded"), "printed once: nothing changed")
}

func TestStatusWatchFailsWithTheFailingCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setTraffic(suiteFailing, suiteHealthy)
	h.initialized("podinfo:1.0")

	h.setImage("podinfo:2.0")
	out, _, err := h.run(statusQuick, "podinfo", "--watch", "--wait-start", "20s", "--timeout", "90s")
	require.Error(t, err)
	t.Log("\n" + out + "\nerror: " + err.Error())
	assert.True(t, strings.HasPrefix(err.Error(), "rollout of podinfo failed: Rolled back revision "), err.Error())
	assert.Contains(t, err.Error(), "request-success-rate is 90, outside >= 99")
	assert.Contains(t, out, "Failed checks:   1 of 2", "the watch showed the first failed check")
	assert.Contains(t, out, "): Failed")
}

func TestStatusWatchTimesOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setTraffic(suiteHealthy, suiteHealthy)
	h.initialized("podinfo:1.0", statusLongStep)
	h.setImage("podinfo:2.0")
	h.waitFor("step 1", statusRolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1
	})

	start := time.Now()
	out, _, err := h.run(statusQuick, "podinfo", "--watch", "--timeout", "2s")
	require.Error(t, err)
	assert.Equal(t, "timed out after 2s waiting for podinfo to finish its rollout (phase Progressing, step 1 of 2)", err.Error())
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, out, "Progressing, step 1 of 2")
}

func TestStatusBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	_, _, err := h.run(newStatusCommand)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "accepts 1 arg(s), received 0")

	_, _, err = h.run(newStatusCommand, "nope")
	require.Error(t, err)
	assert.Equal(t, "canary "+h.ns+"/nope not found", err.Error())

	_, _, err = h.run(newStatusCommand, "nope", "--wait-start", "5s")
	require.Error(t, err)
	assert.Equal(t, "--wait-start only applies with --watch", err.Error())

	_, _, err = h.run(newStatusCommand, "nope", "--context", suiteUnreachable)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "cannot reach the cluster at "+suiteUnreachableAddress+": "), err.Error())

	// A Canary the controller has not seen says so, instead of an empty view.
	h.createCanary()
	out, _, err := h.run(newStatusCommand, "podinfo")
	require.NoError(t, err)
	assert.Contains(t, out, "no status yet; the trafficctl controller has not acted on it (is it running?)")
}

// TestStatusEnded tables when a watch takes the rollout for ended: only once the controller
// has seen the latest spec, and, within --wait-start, only when the rollout moved since the
// watch began.
func TestStatusEnded(t *testing.T) {
	t.Parallel()
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	canary := func(phase v1alpha1.CanaryPhase, lt metav1.Time, observed int64) *v1alpha1.Canary {
		cn := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "shop", Generation: 2}}
		cn.Status = v1alpha1.CanaryStatus{Phase: phase, LastTransitionTime: &lt, ObservedGeneration: observed, Conditions: []metav1.Condition{
			{Type: "Ready", Status: metav1.ConditionFalse, Reason: "CheckFailed", Message: "Rolled back revision abc."},
		}}
		return cn
	}
	cases := []struct {
		name    string
		cn      *v1alpha1.Canary
		elapsed time.Duration
		done    bool
		err     string
	}{
		{name: "promoted", cn: canary(v1alpha1.PhaseSucceeded, t1, 2), done: true},
		{name: "initialized", cn: canary(v1alpha1.PhaseInitialized, t1, 2), done: true},
		{name: "rolled back", cn: canary(v1alpha1.PhaseFailed, t1, 2), done: true, err: "rollout of podinfo failed: Rolled back revision abc."},
		{name: "progressing", cn: canary(v1alpha1.PhaseProgressing, t1, 2)},
		{name: "spec not seen yet", cn: canary(v1alpha1.PhaseSucceeded, t1, 1)},
		{name: "the previous rollout, within wait-start", cn: canary(v1alpha1.PhaseSucceeded, t0, 2), elapsed: 4 * time.Second},
		{name: "the previous rollout, after wait-start", cn: canary(v1alpha1.PhaseFailed, t0, 2), elapsed: 5 * time.Second, done: true, err: "rollout of podinfo failed: Rolled back revision abc."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newStatusOptions(NewFactory(genericiooptions.NewTestIOStreamsDiscard(), "test"))
			o.Name, o.Namespace, o.WaitStart = "podinfo", "shop", 5*time.Second
			done, err := o.ended(tc.cn, &t0, tc.elapsed)
			assert.Equal(t, tc.done, done)
			if tc.err == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.err)
			}
		})
	}
}
