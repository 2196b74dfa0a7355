package notify

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

var (
	_ manager.Runnable               = (*Dispatcher)(nil)
	_ manager.LeaderElectionRunnable = (*Dispatcher)(nil)
)

// dispWait bounds every wait on the dispatcher's goroutines; it is generous because a slow CI
// machine must not fail a correct test, and the assertions do not depend on it being short.
const (
	dispWait = 2 * time.Second
	dispTick = 5 * time.Millisecond
)

var errDispReceiver = errors.New("receiver answered 500")

type dispFailure struct {
	job Job
	err error
}

// dispHarness is a Dispatcher on a fake clock and its own registry, with OnFailure calls
// collected.
type dispHarness struct {
	d        *Dispatcher
	clock    *testingclock.FakeClock
	reg      *prometheus.Registry
	failures chan dispFailure
}

func newDispHarness(t *testing.T, o DispatcherOptions) *dispHarness {
	t.Helper()
	h := &dispHarness{
		clock:    testingclock.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		reg:      prometheus.NewRegistry(),
		failures: make(chan dispFailure, 100),
	}
	o.Clock = h.clock
	o.Registerer = h.reg
	o.OnFailure = func(j Job, err error) { h.failures <- dispFailure{job: j, err: err} }
	o.Logger = testr.New(t)
	h.d = NewDispatcher(o)
	return h
}

// start runs the dispatcher until the test ends, and fails the test if Start does not return
// once its context is cancelled.
func (h *dispHarness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(dispWait):
			t.Error("Start did not return after its context was cancelled")
		}
	})
}

func (h *dispHarness) outcome(o string) float64 {
	return testutil.ToFloat64(h.d.metrics.notifications.WithLabelValues("slack", "shop/slack-oncall", o))
}

func (h *dispHarness) attempts(result string) float64 {
	return testutil.ToFloat64(h.d.metrics.attempts.WithLabelValues("slack", "shop/slack-oncall", result))
}

// failure waits for the next OnFailure call.
func (h *dispHarness) failure(t *testing.T) dispFailure {
	t.Helper()
	select {
	case f := <-h.failures:
		return f
	case <-time.After(dispWait):
		t.Fatal("OnFailure was not called")
		return dispFailure{}
	}
}

func dispJob(key string, send func(ctx context.Context) error) Job {
	return Job{Key: key, Canary: "shop/podinfo", Provider: "shop/slack-oncall", Kind: "slack", Send: send}
}

// dispCounting returns a Send that counts its calls and answers with err.
func dispCounting(calls *atomic.Int32, err error) func(context.Context) error {
	return func(context.Context) error {
		calls.Add(1)
		return err
	}
}

func TestDispatcherDeliversOnceAndDropsDuplicatesWithinWindow(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, DedupeWindow: 10 * time.Minute})
	h.start(t)
	var calls, other atomic.Int32

	require.True(t, h.d.Enqueue(dispJob("shop/podinfo/rolled-back/3", dispCounting(&calls, nil))))
	require.Eventually(t, func() bool { return h.outcome(outcomeDelivered) == 1 }, dispWait, dispTick)

	// Rejected synchronously, so nothing of it can reach a worker later.
	assert.False(t, h.d.Enqueue(dispJob("shop/podinfo/rolled-back/3", dispCounting(&calls, nil))))
	assert.Equal(t, 1.0, h.outcome(outcomeDuplicate))
	// The window is per Key: another Key goes through meanwhile.
	require.True(t, h.d.Enqueue(dispJob("shop/podinfo/succeeded/3", dispCounting(&other, nil))))
	require.Eventually(t, func() bool { return other.Load() == 1 }, dispWait, dispTick)

	h.clock.Step(10*time.Minute - time.Second)
	assert.False(t, h.d.Enqueue(dispJob("shop/podinfo/rolled-back/3", dispCounting(&calls, nil))), "still within the window")

	h.clock.Step(2 * time.Second)
	require.True(t, h.d.Enqueue(dispJob("shop/podinfo/rolled-back/3", dispCounting(&calls, nil))), "the window has passed")
	require.Eventually(t, func() bool { return calls.Load() == 2 }, dispWait, dispTick)
	require.Eventually(t, func() bool { return h.outcome(outcomeDelivered) == 3 }, dispWait, dispTick)

	require.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP trafficctl_notifications_total Notifications by outcome: delivered, failed (after the last attempt), dropped (queue full) or duplicate.
# TYPE trafficctl_notifications_total counter
trafficctl_notifications_total{kind="slack",outcome="delivered",provider="shop/slack-oncall"} 3
trafficctl_notifications_total{kind="slack",outcome="duplicate",provider="shop/slack-oncall"} 2
# HELP trafficctl_notification_attempts_total Notification delivery attempts by result: success or error.
# TYPE trafficctl_notification_attempts_total counter
trafficctl_notification_attempts_total{kind="slack",provider="shop/slack-oncall",result="success"} 3
`), "trafficctl_notifications_total", "trafficctl_notification_attempts_total"))
	assert.Empty(t, h.failures, "a duplicate is not a failure")
}

func TestDispatcherRetriesWithBackoffThenReportsFailureOnce(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, Attempts: 4, Backoff: time.Second, MaxBackoff: 30 * time.Second})
	h.start(t)
	var calls atomic.Int32

	require.True(t, h.d.Enqueue(dispJob("k", dispCounting(&calls, errDispReceiver))))
	require.Eventually(t, func() bool { return h.attempts(resultError) == 1 }, dispWait, dispTick)

	for i, delay := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		done := int32(i + 1)
		// A retry timer fires inside Step, so a waiter left after the step is proof the
		// retry has not started.
		h.clock.Step(delay - time.Millisecond)
		require.True(t, h.clock.HasWaiters(), "retry %d fired before its %s backoff", done, delay)
		require.Equal(t, done, calls.Load(), "retry %d ran before its %s backoff", done, delay)

		h.clock.Step(time.Millisecond)
		require.Eventually(t, func() bool { return h.attempts(resultError) == float64(done+1) }, dispWait, dispTick)
	}

	f := h.failure(t)
	assert.Equal(t, "k", f.job.Key)
	require.ErrorIs(t, f.err, errDispReceiver)
	assert.ErrorContains(t, f.err, "after 4 attempts")
	assert.False(t, h.clock.HasWaiters(), "no retry after the last attempt")
	assert.Empty(t, h.failures, "OnFailure is called once")
	assert.Equal(t, int32(4), calls.Load())
	assert.Equal(t, 1.0, h.outcome(outcomeFailed))
	assert.Equal(t, 4.0, h.attempts(resultError))
	assert.Equal(t, 0.0, h.outcome(outcomeDelivered))
}

func TestDispatcherObservesDeliveryTimeIncludingBackoff(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, Backoff: time.Second})
	h.start(t)
	var calls atomic.Int32
	send := func(context.Context) error {
		if calls.Add(1) == 1 {
			return errDispReceiver
		}
		return nil
	}

	require.True(t, h.d.Enqueue(dispJob("k", send)))
	require.Eventually(t, func() bool { return h.attempts(resultError) == 1 }, dispWait, dispTick)
	h.clock.Step(time.Second)
	require.Eventually(t, func() bool { return h.outcome(outcomeDelivered) == 1 }, dispWait, dispTick)

	families, err := h.reg.Gather()
	require.NoError(t, err)
	var hist *struct{ count, sum float64 }
	for _, mf := range families {
		if mf.GetName() == "trafficctl_notification_delivery_seconds" {
			require.Len(t, mf.GetMetric(), 1)
			m := mf.GetMetric()[0].GetHistogram()
			hist = &struct{ count, sum float64 }{float64(m.GetSampleCount()), m.GetSampleSum()}
		}
	}
	require.NotNil(t, hist, "delivery histogram not registered")
	assert.Equal(t, 1.0, hist.count)
	assert.Equal(t, 1.0, hist.sum, "seconds from Enqueue to delivery on the injected clock")
	assert.Empty(t, h.failures)
}

func TestDispatcherCutsOffHangingAttemptAtTimeout(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, Attempts: 2, Timeout: 50 * time.Millisecond, Backoff: time.Second})
	h.start(t)
	ended := make(chan error, 2)
	hang := func(ctx context.Context) error {
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}

	require.True(t, h.d.Enqueue(dispJob("k", hang)))
	for attempt := 1; attempt <= 2; attempt++ {
		select {
		case err := <-ended:
			require.ErrorIs(t, err, context.DeadlineExceeded, "attempt %d", attempt)
		case <-time.After(dispWait):
			t.Fatalf("attempt %d was not cut off at its timeout", attempt)
		}
		if attempt == 1 {
			require.Eventually(t, func() bool { return h.attempts(resultError) == 1 }, dispWait, dispTick)
			h.clock.Step(time.Second)
		}
	}

	f := h.failure(t)
	require.ErrorIs(t, f.err, context.DeadlineExceeded)
	assert.Equal(t, 1.0, h.outcome(outcomeFailed))
}

func TestDispatcherHangingJobDoesNotDelayAnother(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 2, Timeout: 5 * time.Second})
	h.start(t)
	hanging := make(chan struct{})
	delivered := make(chan struct{})

	require.True(t, h.d.Enqueue(dispJob("hangs", func(ctx context.Context) error {
		close(hanging)
		<-ctx.Done()
		return ctx.Err()
	})))
	select {
	case <-hanging:
	case <-time.After(dispWait):
		t.Fatal("the hanging job never started")
	}

	require.True(t, h.d.Enqueue(dispJob("prompt", func(context.Context) error {
		close(delivered)
		return nil
	})))
	select {
	case <-delivered:
	case <-time.After(dispWait):
		t.Fatal("a hanging job delayed another job")
	}
}

func TestDispatcherBackoffHoldsNoWorker(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, Backoff: time.Minute})
	h.start(t)
	var failing, prompt atomic.Int32

	require.True(t, h.d.Enqueue(dispJob("failing", dispCounting(&failing, errDispReceiver))))
	require.Eventually(t, func() bool { return h.attempts(resultError) == 1 }, dispWait, dispTick)
	require.True(t, h.clock.HasWaiters(), "the retry waits on the clock")

	require.True(t, h.d.Enqueue(dispJob("prompt", dispCounting(&prompt, nil))))
	require.Eventually(t, func() bool { return prompt.Load() == 1 }, dispWait, dispTick, "a job waiting for its backoff blocked the only worker")
	assert.Equal(t, int32(1), failing.Load(), "the failing job waits for the clock")
}

func TestDispatcherDropsWhenQueueIsFull(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, QueueSize: 2})
	var calls atomic.Int32
	keys := []string{"a", "b", "c", "d", "e"}

	// Not started: nothing drains the queue, so Enqueue must refuse rather than wait.
	queued := make(chan []bool, 1)
	go func() {
		var got []bool
		for _, k := range keys {
			got = append(got, h.d.Enqueue(dispJob(k, dispCounting(&calls, nil))))
		}
		queued <- got
	}()
	select {
	case got := <-queued:
		assert.Equal(t, []bool{true, true, false, false, false}, got)
	case <-time.After(dispWait):
		t.Fatal("Enqueue blocked on a full queue")
	}

	assert.Equal(t, 3.0, h.outcome(outcomeDropped))
	for _, want := range []string{"c", "d", "e"} {
		f := h.failure(t)
		assert.Equal(t, want, f.job.Key)
		assert.ErrorContains(t, f.err, "queue is full")
	}
	assert.Empty(t, h.failures)

	// Jobs enqueued before Start wait for it; a dropped Key is not remembered as seen.
	h.start(t)
	require.Eventually(t, func() bool { return h.outcome(outcomeDelivered) == 2 }, dispWait, dispTick)
	require.True(t, h.d.Enqueue(dispJob("c", dispCounting(&calls, nil))))
	require.Eventually(t, func() bool { return calls.Load() == 3 }, dispWait, dispTick)
}

func TestDispatcherStartReturnsAfterCancelAndCancelsInFlightSends(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{Workers: 1, Timeout: time.Minute})
	started := make(chan struct{})
	ended := make(chan error, 1)
	release := make(chan struct{})
	require.True(t, h.d.Enqueue(dispJob("k", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		<-release // a Send still cleaning up after its context ended
		return ctx.Err()
	})))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.d.Start(ctx) }()
	select {
	case <-started:
	case <-time.After(dispWait):
		t.Fatal("the job was not attempted")
	}

	cancel()
	select {
	case err := <-ended:
		require.ErrorIs(t, err, context.Canceled, "the in-flight Send's context is cancelled with Start's")
	case <-time.After(dispWait):
		t.Fatal("the in-flight Send's context was not cancelled")
	}
	// Waiting a little is the only way to see that something does not happen; a Start that
	// does not wait for its Sends returns at once.
	assert.Never(t, func() bool { return len(done) > 0 }, 100*time.Millisecond, dispTick, "Start returned while a Send was in flight")

	close(release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(dispWait):
		t.Fatal("Start did not return after its context was cancelled")
	}
	assert.False(t, h.clock.HasWaiters(), "no retry is scheduled at shutdown")
	assert.Empty(t, h.failures, "a shutdown is not the receiver's failure")

	require.False(t, h.d.Enqueue(dispJob("late", dispCounting(new(atomic.Int32), nil))))
	require.ErrorIs(t, h.failure(t).err, errDispatcherStopped)
}

func TestDispatcherBackoffDoublesUpToMax(t *testing.T) {
	d := NewDispatcher(DispatcherOptions{Backoff: time.Second, MaxBackoff: 5 * time.Second})
	var got []time.Duration
	for attempt := 1; attempt <= 5; attempt++ {
		got = append(got, d.backoff(attempt))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, got)
}

func TestDispatcherDefaults(t *testing.T) {
	d := NewDispatcher(DispatcherOptions{})
	o := d.opts
	assert.Equal(t, 4, o.Workers)
	assert.Equal(t, 1000, o.QueueSize)
	assert.Equal(t, 4, o.Attempts)
	assert.Equal(t, 10*time.Second, o.Timeout)
	assert.Equal(t, time.Second, o.Backoff)
	assert.Equal(t, 30*time.Second, o.MaxBackoff)
	assert.Equal(t, 10*time.Minute, o.DedupeWindow)
	assert.NotNil(t, o.Clock)
	assert.False(t, d.NeedLeaderElection(), "workers may start before the election is won")
}

func TestDispatchersOnOneRegistryShareMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := NewDispatcher(DispatcherOptions{Registerer: reg})
	second := NewDispatcher(DispatcherOptions{Registerer: reg})
	second.metrics.notifications.WithLabelValues("slack", "shop/slack-oncall", outcomeDelivered).Inc()

	assert.Equal(t, 1.0, testutil.ToFloat64(first.metrics.notifications.WithLabelValues("slack", "shop/slack-oncall", outcomeDelivered)))
	n, err := testutil.GatherAndCount(reg, "trafficctl_notifications_total")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}
