package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// steerRolloutTimeout bounds a rollout's move in these tests: a few reconciles and the stand-in
// controllers' answers.
const steerRolloutTimeout = 60 * time.Second

// steerSlowSteps makes steps that never end by themselves within a test: only a request moves
// the rollout on.
func steerSlowSteps(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.Interval = "1h"
	cn.Spec.Analysis.CheckInterval = "2s"
}

// steerAtStepOne starts a rollout of podinfo:2.0 that holds at step 1 (10%) until asked.
func steerAtStepOne(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.setTraffic(suiteHealthy, suiteHealthy)
	h.initialized("podinfo:1.0", steerSlowSteps)
	h.setImage("podinfo:2.0")
	h.waitFor("step 1", steerRolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1 && cn.Status.StepStartedAt != nil
	})
	return h
}

// steerAuthenticatedUser is the name the test apiserver knows the harness's admin by.
func steerAuthenticatedUser(t *testing.T) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, r.Status.UserInfo.Username)
	return r.Status.UserInfo.Username
}

// steerRequestID is the request id a verb printed.
var steerRequestID = regexp.MustCompile(`\(request (\S+)\)`)

func steerIDOf(t *testing.T, stdout string) string {
	t.Helper()
	m := steerRequestID.FindStringSubmatch(stdout)
	require.NotNil(t, m, "the verb names its request: %q", stdout)
	return m[1]
}

func TestPromoteSkipsTheRemainingStepsAndRecordsTheAuthenticatedUser(t *testing.T) {
	t.Parallel()
	h := steerAtStepOne(t)
	user := steerAuthenticatedUser(t)
	// The kubeconfig calls the credentials something else; the cluster's name for them wins.
	h.writeKubeconfig(func(cfg *clientcmdapi.Config) {
		cfg.AuthInfos["kubeconfig-alias"] = cfg.AuthInfos["admin"]
		for _, c := range cfg.Contexts {
			c.AuthInfo = "kubeconfig-alias"
		}
	})
	require.NotEqual(t, "kubeconfig-alias", user)

	stdout, stderr, err := h.run(newPromoteCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("promote:\n%s", stdout)
	id := steerIDOf(t, stdout)
	assert.Contains(t, stdout, "canary.trafficctl.io/podinfo promote requested by "+user)
	assert.Contains(t, stdout, "canary.trafficctl.io/podinfo promote applied: Promotion of revision ")
	assert.Contains(t, stdout, "requested by "+user+": the remaining steps and approvals are skipped")

	cn := h.waitFor("promotion", steerRolloutTimeout, suitePhaseIs(v1alpha1.PhaseSucceeded))
	assert.Equal(t, id, cn.Status.LastRequestID)
	rec := steerAnswer(cn, id)
	require.NotNil(t, rec)
	assert.Equal(t, v1alpha1.ActionPromote, rec.Action)
	assert.Equal(t, v1alpha1.RequestApplied, rec.Outcome)
	assert.Equal(t, user, rec.User, "the user is who the apiserver says, not who the kubeconfig names")
	require.NotNil(t, rec.RequestedAt)
	assert.WithinDuration(t, time.Now(), rec.RequestedAt.Time, time.Minute)
	assert.Equal(t, int32(10), cn.Status.History[0].WeightReached, "the 50% step was skipped")
}

func TestAbortRollsBackAndRetryRollsOutAgain(t *testing.T) {
	t.Parallel()
	h := steerAtStepOne(t)

	stdout, stderr, err := h.run(newAbortCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("abort:\n%s", stdout)
	assert.Contains(t, stdout, "canary.trafficctl.io/podinfo abort applied: Aborted by ")
	assert.Contains(t, stdout, "at step 1 (10% canary traffic).")
	cn := h.waitFor("rollback", steerRolloutTimeout, suitePhaseIs(v1alpha1.PhaseFailed))
	ready := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReady)
	require.NotNil(t, ready)
	assert.Equal(t, rollout.ReasonAborted, ready.Reason)
	assert.Equal(t, rollout.ReasonAborted, cn.Status.History[0].Reason)

	// A second abort has nothing to abort: refused before anything is written.
	before := h.canary().Annotations[v1alpha1.RequestAnnotation]
	_, _, err = h.run(newAbortCommand, "podinfo")
	require.EqualError(t, err, "cannot abort podinfo: no rollout is waiting or in progress (phase Failed)")
	assert.Equal(t, before, h.canary().Annotations[v1alpha1.RequestAnnotation])

	stdout, stderr, err = h.run(newRetryCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("retry:\n%s", stdout)
	assert.Contains(t, stdout, "canary.trafficctl.io/podinfo retry applied: Retrying revision "+cn.Status.LastAppliedSpec)
	h.waitFor("the retried rollout at step 1", steerRolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseProgressing && cn.Status.Step == 1
	})

	// Retrying a rollout in progress is what the controller refuses too.
	_, _, err = h.run(newRetryCommand, "podinfo")
	require.EqualError(t, err, "cannot retry podinfo: only a failed rollout can be retried (phase Progressing)")
}

func TestPauseHoldsTheRolloutUntilResumed(t *testing.T) {
	t.Parallel()
	h := steerAtStepOne(t)

	_, _, err := h.run(newResumeCommand, "podinfo")
	require.EqualError(t, err, "cannot resume podinfo: it is not paused (phase Progressing)")

	stdout, stderr, err := h.run(newPauseCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("pause:\n%s", stdout)
	assert.Contains(t, stdout, "canary.trafficctl.io/podinfo pause applied: Paused by ")
	cn := h.canary()
	require.NotNil(t, cn.Status.Paused, "the controller recorded the pause before the verb returned")
	assert.Equal(t, steerIDOf(t, stdout), cn.Status.Paused.ID)
	h.waitFor("the paused condition", steerRolloutTimeout, func(cn *v1alpha1.Canary) bool {
		ready := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReady)
		return ready != nil && ready.Reason == rollout.ReasonPaused
	})

	_, _, err = h.run(newPauseCommand, "podinfo")
	require.ErrorContains(t, err, "cannot pause podinfo: it is already paused, by ")

	stdout, stderr, err = h.run(newResumeCommand, "podinfo")
	require.NoError(t, err, stderr)
	t.Logf("resume:\n%s", stdout)
	assert.Contains(t, stdout, "canary.trafficctl.io/podinfo resume applied: Resumed by ")
	assert.Contains(t, stdout, "the rollout goes on from step 1.")
	cn = h.canary()
	assert.Nil(t, cn.Status.Paused)
	assert.Equal(t, v1alpha1.PhaseProgressing, cn.Status.Phase)
}

func TestPromoteRefusesAnIdleCanaryWithoutWritingARequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.initialized("podinfo:1.0")
	before := h.canary()

	stdout, _, err := h.run(newPromoteCommand, "podinfo")
	require.EqualError(t, err, "cannot promote podinfo: no rollout is waiting or in progress (phase Initialized)")
	assert.Empty(t, stdout)
	after := h.canary()
	assert.NotContains(t, after.Annotations, v1alpha1.RequestAnnotation)
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing was written")
}

func TestSteerUnknownCanary(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, _, err := h.run(newAbortCommand, "nope")
	require.EqualError(t, err, "canary "+h.ns+"/nope not found")
}

func TestSteerNoWaitWritesOnlyTheAnnotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTarget("podinfo:1.0")
	h.createCanary(func(cn *v1alpha1.Canary) { cn.Annotations = map[string]string{"team": "shop"} })
	// No controller runs: mimic a rollout in progress, which is all the verb looks at.
	cn := h.canary()
	cn.Status.Phase = v1alpha1.PhaseProgressing
	require.NoError(t, k8s.Status().Update(context.Background(), cn))
	before := h.canary()

	stdout, stderr, err := h.run(newPauseCommand, "podinfo", "--no-wait")
	require.NoError(t, err, stderr)
	id := steerIDOf(t, stdout)
	assert.NotContains(t, stdout, "applied")

	after := h.canary()
	assert.Equal(t, "shop", after.Annotations["team"], "other annotations are left alone")
	assert.Equal(t, before.Generation, after.Generation, "the spec is left alone")
	assert.Equal(t, before.Spec, after.Spec)
	req := v1alpha1.ManualRequest{}
	require.NoError(t, json.Unmarshal([]byte(after.Annotations[v1alpha1.RequestAnnotation]), &req))
	assert.Equal(t, v1alpha1.ActionPause, req.Action)
	assert.Equal(t, id, req.ID)
	assert.Equal(t, steerAuthenticatedUser(t), req.User)
	require.NotNil(t, req.Time)

	// Without a controller, a wait ends at --timeout with what to look at; the request that was
	// not handled is named when the next one replaces it.
	_, stderr, err = h.run(newPauseCommand, "podinfo", "--timeout", "1s")
	require.ErrorContains(t, err, "the controller did not handle request ")
	require.ErrorContains(t, err, "within 1s")
	assert.Contains(t, stderr, "warning: request "+id+" (pause by ")
}

func TestSteerRefusalFollowsTheController(t *testing.T) {
	canary := func(phase v1alpha1.CanaryPhase, mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
		cn := &v1alpha1.Canary{Status: v1alpha1.CanaryStatus{Phase: phase, LastAppliedSpec: "abc123"}}
		for _, m := range mods {
			m(cn)
		}
		return cn
	}
	paused := func(cn *v1alpha1.Canary) { cn.Status.Paused = &v1alpha1.ManualAction{User: "alice"} }
	suspended := func(cn *v1alpha1.Canary) { cn.Spec.Suspend = true }
	for _, tc := range []struct {
		action v1alpha1.RequestActionType
		cn     *v1alpha1.Canary
		want   string
	}{
		{v1alpha1.ActionPromote, canary(v1alpha1.PhaseProgressing), ""},
		{v1alpha1.ActionPromote, canary(v1alpha1.PhaseWaiting), ""},
		{v1alpha1.ActionPromote, canary(v1alpha1.PhaseWaitingPromotion), ""},
		{v1alpha1.ActionPromote, canary(v1alpha1.PhaseSucceeded), "no rollout is waiting or in progress (phase Succeeded)"},
		{v1alpha1.ActionPromote, canary(""), "no rollout is waiting or in progress (phase none)"},
		{v1alpha1.ActionAbort, canary(v1alpha1.PhasePromoting), "no rollout is waiting or in progress (phase Promoting)"},
		{v1alpha1.ActionAbort, canary(v1alpha1.PhaseProgressing, paused), ""},
		{v1alpha1.ActionRetry, canary(v1alpha1.PhaseFailed), ""},
		{v1alpha1.ActionRetry, canary(v1alpha1.PhaseProgressing), "only a failed rollout can be retried (phase Progressing)"},
		{v1alpha1.ActionResume, canary(v1alpha1.PhaseProgressing, paused), ""},
		{v1alpha1.ActionResume, canary(v1alpha1.PhaseProgressing), "it is not paused (phase Progressing)"},
		{v1alpha1.ActionPause, canary(v1alpha1.PhaseSucceeded), ""},
		{v1alpha1.ActionPause, canary(v1alpha1.PhaseProgressing, paused), "it is already paused, by alice"},
		{v1alpha1.ActionPause, canary(v1alpha1.PhasePromoting), "the promotion of revision abc123 is under way and finishes by itself (phase Promoting)"},
		{v1alpha1.ActionPause, canary(v1alpha1.PhaseFinalising), "the promotion of revision abc123 is under way and finishes by itself (phase Finalising)"},
		{v1alpha1.ActionPromote, canary(v1alpha1.PhaseProgressing, suspended), "the Canary is suspended (spec.suspend), and the controller acts on no request until it is not"},
	} {
		t.Run(string(tc.action)+"/"+string(tc.cn.Status.Phase), func(t *testing.T) {
			assert.Equal(t, tc.want, steerRefusal(tc.action, tc.cn))
		})
	}
}

func TestSteerAnswerIsFoundByIDNotByPlace(t *testing.T) {
	cn := &v1alpha1.Canary{Status: v1alpha1.CanaryStatus{ManualActions: []v1alpha1.ManualAction{
		{ID: "someone-elses", Outcome: v1alpha1.RequestRefused},
		{ID: "mine", Outcome: v1alpha1.RequestApplied, Message: "done"},
	}}}
	got := steerAnswer(cn, "mine")
	require.NotNil(t, got)
	assert.Equal(t, "done", got.Message)
	assert.Nil(t, steerAnswer(cn, "not-yet"))
}

func TestSteerIDsSortByTimeAndDoNotRepeat(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)
	seen := map[string]bool{}
	for range 100 {
		id := steerNewID(now)
		require.True(t, strings.HasPrefix(id, "20261201T100000.123Z-"), id)
		require.False(t, seen[id], "id %s repeats", id)
		seen[id] = true
	}
	assert.Less(t, steerNewID(now), steerNewID(now.Add(time.Millisecond)))
}

func TestSteerUserFallsBackToTheKubeconfigWithoutACluster(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://" + suiteUnreachableAddress, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["alice"] = &clientcmdapi.AuthInfo{Token: "a"}
	cfg.AuthInfos["bob"] = &clientcmdapi.AuthInfo{Token: "b"}
	cfg.Contexts["mine"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "alice"}
	cfg.Contexts["other"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "bob"}
	cfg.CurrentContext = "mine"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	f := NewFactory(streams, "test")
	f.Flags.KubeConfig = ptr.To(path)

	o := &SteerOptions{factory: f}
	assert.Equal(t, "alice", o.user(context.Background()), "the cluster cannot be asked: the current context's user")
	f.Flags.Context = ptr.To("other")
	assert.Equal(t, "bob", steerKubeconfigUser(f))
	f.Flags.AuthInfoName = ptr.To("carol")
	assert.Equal(t, "carol", steerKubeconfigUser(f), "--user names the user")
}
