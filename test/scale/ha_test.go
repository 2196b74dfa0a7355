package scale

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// haCluster starts a cluster for one test, and the controller binary it runs.
func haCluster(t *testing.T) (context.Context, *cluster, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	cl, err := startCluster(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := cl.stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	bin, err := controllerBinary(os.Getenv("TRAFFICCTL_BINARY"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cl, bin
}

// statusWriters are the users that wrote each Canary's status, by Canary.
func statusWriters(t *testing.T, cl *cluster) map[string]map[string]bool {
	t.Helper()
	events, err := cl.audit.events(0, -1)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, e := range events {
		if e.resource() != "canaries/status" || e.Verb != "patch" {
			continue
		}
		if out[e.ObjectRef.Name] == nil {
			out[e.ObjectRef.Name] = map[string]bool{}
		}
		out[e.ObjectRef.Name][e.User.Username] = true
	}
	return out
}

// Two controller processes on one apiserver, shard east and the default shard: each Canary is
// initialised by exactly the shard its label names (a shard nobody serves falls to the default
// one), and no Canary's status is ever written by both.
func TestShardsActOnTheirOwnCanaries(t *testing.T) {
	ctx, cl, bin := haCluster(t)
	shards := map[string]string{appName(0): "east", appName(1): "", appName(2): "west", appName(3): "east"}
	for i := range len(shards) {
		if err := createApp(ctx, cl.client, i, 5*time.Second, func(cn *v1alpha1.Canary) {
			if s := shards[cn.Name]; s != "" {
				cn.Labels = map[string]string{v1alpha1.LabelShard: s}
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	east, err := cl.startController(ctx, bin, secondUser, "east", "--shard", "east")
	if err != nil {
		t.Fatal(err)
	}
	def, err := cl.startController(ctx, bin, controllerUser, "default", "--other-shards", "east")
	if err != nil {
		t.Fatal(err)
	}
	initialised := func(p v1alpha1.CanaryPhase) bool { return p == v1alpha1.PhaseInitialized }
	for _, p := range []*process{east, def} {
		if err := waitPhase(ctx, cl.cache, nil, 2*time.Minute, p, initialised, t.Logf); err != nil {
			t.Fatalf("%v\neast: %s\ndefault: %s", err, east.logTail(), def.logTail())
		}
	}
	writers := statusWriters(t, cl)
	for name, shard := range shards {
		want := controllerUser
		if shard == "east" {
			want = secondUser
		}
		if len(writers[name]) != 1 || !writers[name][want] {
			t.Errorf("Canary %s (shard %q) had its status written by %v, want %s alone", name, shard, writers[name], want)
		}
	}
}

// Two replicas with leader election; the leader is killed (SIGKILL, so its Lease is not given
// up) in the middle of a rollout. The other takes over within the Lease's duration plus one
// interval, and the rollout goes on from where it was: every step is advanced to exactly once.
func TestLeaderFailoverMidRollout(t *testing.T) {
	ctx, cl, bin := haCluster(t)
	const interval = 3 * time.Second
	weights := []int32{10, 20, 30, 40, 50, 60}
	if err := createApp(ctx, cl.client, 0, interval, func(cn *v1alpha1.Canary) { cn.Spec.Analysis.StepWeights = weights }); err != nil {
		t.Fatal(err)
	}
	elect := []string{"--leader-elect", "--leader-election-namespace", namespace}
	first, err := cl.startController(ctx, bin, controllerUser, "first", elect...)
	if err != nil {
		t.Fatal(err)
	}
	// The first one leads before the second starts.
	lease := &coordinationv1.Lease{}
	waitFor(t, ctx, time.Minute, "the first replica to lead", func() bool {
		return cl.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "trafficctl.io"}, lease) == nil && ptr.Deref(lease.Spec.HolderIdentity, "") != ""
	})
	leader := *lease.Spec.HolderIdentity
	leaseDuration := time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 15)) * time.Second
	second, err := cl.startController(ctx, bin, secondUser, "second", elect...)
	if err != nil {
		t.Fatal(err)
	}
	initialised := func(p v1alpha1.CanaryPhase) bool { return p == v1alpha1.PhaseInitialized }
	if err := waitPhase(ctx, cl.cache, nil, time.Minute, first, initialised, t.Logf); err != nil {
		t.Fatalf("%v\n%s", err, first.logTail())
	}
	if err := changeTemplate(ctx, cl.client, 0); err != nil {
		t.Fatal(err)
	}
	cn := &v1alpha1.Canary{}
	waitFor(t, ctx, time.Minute, "the rollout to reach step 2", func() bool {
		return cl.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: appName(0)}, cn) == nil && cn.Status.Step >= 2
	})
	if cn.Status.Step != 2 {
		t.Fatalf("the rollout went past step 2 (at %d) before the leader was killed", cn.Status.Step)
	}
	auditAtKill, err := cl.audit.size()
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := first.kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s at step %d", leader, cn.Status.Step)

	waitFor(t, ctx, 2*time.Minute, "the rollout to succeed", func() bool {
		return cl.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: appName(0)}, cn) == nil && cn.Status.Phase == v1alpha1.PhaseSucceeded
	})
	// The second replica's first write after the kill is when it took over.
	events, err := cl.audit.events(auditAtKill, -1)
	if err != nil {
		t.Fatal(err)
	}
	var tookOver time.Time
	for _, e := range events {
		if e.User.Username == secondUser && e.Verb == "patch" && e.resource() == "canaries/status" {
			tookOver = e.Received
			break
		}
	}
	if tookOver.IsZero() {
		t.Fatalf("the second replica never wrote the Canary's status after the leader was killed\n%s", second.logTail())
	}
	took := tookOver.Sub(killed)
	t.Logf("the second replica acted %s after the leader was killed (Lease %s, interval %s)", took.Round(100*time.Millisecond), leaseDuration, interval)
	// The Lease runs out at most leaseDuration after the kill, the second replica tries for it
	// every 2s, then starts its caches and looks at the Canary, whose step is due within an
	// interval; 5s more for a loaded machine.
	if bound := leaseDuration + 2*time.Second + interval + 5*time.Second; took > bound {
		t.Errorf("the second replica acted %s after the kill, more than the Lease's %s, its 2s retry, one interval (%s) and 5s to start", took, leaseDuration, interval)
	}

	// Every step was advanced to once, in order, whoever advanced it.
	var list eventsv1.EventList
	if err := cl.client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	advanced := map[int]int{}
	step := regexp.MustCompile(`Advancing to step (\d+) of (\d+)`)
	for _, e := range list.Items {
		if e.Regarding.Name != appName(0) || e.Reason != "StepAdvanced" {
			continue
		}
		m := step.FindStringSubmatch(e.Note)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		count := 1
		if e.Series != nil {
			count = int(e.Series.Count)
		}
		advanced[n] += count
	}
	for i := range weights {
		if advanced[i+1] != 1 {
			t.Errorf("step %d was advanced to %d times, want once (all: %v)", i+1, advanced[i+1], advanced)
		}
	}
	if len(advanced) != len(weights) {
		t.Errorf("steps advanced to: %v, want 1 to %d once each", advanced, len(weights))
	}
}

// waitFor polls cond every 200ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
