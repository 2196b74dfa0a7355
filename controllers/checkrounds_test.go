package controllers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

func TestCheckRoundsRunOffTheWorker(t *testing.T) {
	rounds := newCheckRounds(clocktesting.NewFakePassiveClock(time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)))
	cn := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "ns", UID: types.UID("u1")}}
	cn.Status.Phase, cn.Status.Step = v1alpha1.PhaseProgressing, 1
	snap := rollout.Snapshot{Canary: cn}
	decided := []v1alpha1.Decision{{Metric: "rps", Verdict: v1alpha1.VerdictPass}}

	// A quick round is taken within its reconcile, and wakes nobody.
	got, pending := rounds.take(snap, func(context.Context) []v1alpha1.Decision { return decided })
	if pending || len(got) != 1 {
		t.Fatalf("a quick round: pending %v, decisions %v", pending, got)
	}

	// A slow one ends the reconcile, is not started twice, and wakes the Canary when it ends.
	release := make(chan struct{})
	var runs atomic.Int32
	slow := func(context.Context) []v1alpha1.Decision { runs.Add(1); <-release; return decided }
	cn.Status.Step = 2
	start := time.Now()
	if _, pending := rounds.take(snap, slow); !pending {
		t.Fatal("a round still running is pending")
	}
	if waited := time.Since(start); waited > 10*checkInline {
		t.Errorf("the reconcile waited %s for a hanging round; at most about %s", waited, checkInline)
	}
	if _, pending := rounds.take(snap, slow); !pending {
		t.Fatal("the same round, asked again while it runs, is pending")
	}
	// The rollout moved on meanwhile: still one round at a time.
	cn.Status.Step = 3
	if _, pending := rounds.take(snap, slow); !pending {
		t.Fatal("a round of an earlier moment still running holds the next")
	}
	close(release)
	select {
	case e := <-rounds.wake:
		if e.Object.GetName() != "podinfo" {
			t.Errorf("woke %s", e.Object.GetName())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the end of a round a reconcile stopped waiting for woke nobody")
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("the slow round ran %d times, want once", n)
	}
	// Step 3's round starts now; step 2's decisions are not taken for it.
	got, pending = rounds.take(snap, func(context.Context) []v1alpha1.Decision { return nil })
	if pending || got != nil {
		t.Errorf("step 3's own round: pending %v, decisions %v; want its own (none)", pending, got)
	}
}
