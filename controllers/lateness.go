package controllers

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// lateQueue is controller-runtime's priority queue, measuring how late each Canary is reconciled:
// the time from when it was due (its RequeueAfter ran out, or a watch event woke it) until a
// worker took it. workqueue_queue_duration_seconds counts the same wait, in buckets a factor of
// ten apart; this one has buckets fine enough to tell 1 s from 5 s. A retry after an error is due
// when its backoff says, which the queue keeps to itself, so it is not counted.
type lateQueue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	now     func() time.Time
	observe func(seconds float64)

	mu  sync.Mutex
	due map[reconcile.Request]time.Time
}

func newLateQueue(q priorityqueue.PriorityQueue[reconcile.Request], now func() time.Time, observe func(float64)) *lateQueue {
	return &lateQueue{PriorityQueue: q, now: now, observe: observe, due: map[reconcile.Request]time.Time{}}
}

// newCanaryQueue is the NewQueue of the Canary controller.
func newCanaryQueue(name string, limiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	q := priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) { o.RateLimiter = limiter })
	return newLateQueue(q, time.Now, reconcileLateness.Observe)
}

// mark remembers when items are due; the queue keeps an item once, due at its earliest.
func (q *lateQueue) mark(after time.Duration, items ...reconcile.Request) {
	due := q.now().Add(after)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range items {
		if d, ok := q.due[it]; !ok || due.Before(d) {
			q.due[it] = due
		}
	}
}

// took observes how late item was, when its due time is known.
func (q *lateQueue) took(item reconcile.Request) {
	q.mu.Lock()
	due, ok := q.due[item]
	delete(q.due, item)
	q.mu.Unlock()
	if ok {
		q.observe(max(q.now().Sub(due), 0).Seconds())
	}
}

func (q *lateQueue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if !o.RateLimited {
		q.mark(o.After, items...)
	}
	q.PriorityQueue.AddWithOpts(o, items...)
}

func (q *lateQueue) Add(item reconcile.Request) {
	q.mark(0, item)
	q.PriorityQueue.Add(item)
}

func (q *lateQueue) AddAfter(item reconcile.Request, after time.Duration) {
	q.mark(after, item)
	q.PriorityQueue.AddAfter(item, after)
}

func (q *lateQueue) GetWithPriority() (reconcile.Request, int, bool) {
	item, priority, shutdown := q.PriorityQueue.GetWithPriority()
	if !shutdown {
		q.took(item)
	}
	return item, priority, shutdown
}

func (q *lateQueue) Get() (reconcile.Request, bool) {
	item, shutdown := q.PriorityQueue.Get()
	if !shutdown {
		q.took(item)
	}
	return item, shutdown
}
