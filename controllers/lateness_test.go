package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestLateQueueMeasuresFromWhenDue(t *testing.T) {
	now := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	var seen []float64
	q := newLateQueue(priorityqueue.New[reconcile.Request]("lateness-test"), func() time.Time { return now }, func(s float64) { seen = append(seen, s) })
	defer q.ShutDown()
	a := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}

	// a is woken twice before a worker takes it: it was due at the first wake.
	q.Add(a)
	now = now.Add(time.Second)
	q.AddWithOpts(priorityqueue.AddOpts{}, a)
	now = now.Add(2 * time.Second)
	if got, _, _ := q.GetWithPriority(); got != a {
		t.Fatalf("took %v, want %v", got, a)
	}
	q.Done(a)
	// b is a retry after an error: when it is due is the rate limiter's, not counted.
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, b)
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the limiter's first backoff, 5ms, on the real clock
	}
	if got, _ := q.Get(); got != b {
		t.Fatalf("took %v, want %v", got, b)
	}
	q.Done(b)

	if len(seen) != 1 || seen[0] != 3 {
		t.Errorf("observed %v, want [3]: a was due 3 s before it was taken, b's retry is not counted", seen)
	}
}
