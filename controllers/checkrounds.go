package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// checkRounds runs the check rounds of analysing Canaries off the reconcile workers, so that a
// slow or hanging metric provider costs only its own Canary and never holds a worker past
// checkInline: a reconcile whose checks are due starts the round and waits for it up to
// checkInline (long enough for a healthy Prometheus, so most rounds finish within their
// reconcile); when it takes longer, the reconcile returns without recording or changing anything,
// and the round's end wakes the Canary, whose next reconcile plans with its decisions. A round
// belongs to the moment of the rollout it started at (see moment); one Canary has at most one
// round in flight, and its decisions are taken once.
type checkRounds struct {
	// offWorker's wake receives the Canary whose round ended after its reconcile stopped waiting.
	offWorker
	clock clock.PassiveClock

	mu     sync.Mutex
	rounds map[types.UID]*checkRound
}

// checkInline is how long a reconcile waits for the round it started.
const checkInline = 250 * time.Millisecond

// checkRecheck is how soon a Canary whose round is still running is looked at again, should the
// wake-up of its end be lost.
const checkRecheck = 30 * time.Second

// maxCheckRoundsInFlight bounds the rounds in flight at once; one beyond waits for a slot.
const maxCheckRoundsInFlight = 256

// checkRoundsKept is how long the decisions of a round nobody took are kept (its Canary moved on
// or went).
const checkRoundsKept = 10 * time.Minute

type checkRound struct {
	moment string
	done   chan struct{}
	// Under checkRounds.mu: the decisions once finished; waiting when a reconcile stopped
	// waiting for it, so that its end wakes the Canary.
	finished  bool
	decisions []v1alpha1.Decision
	endedAt   time.Time
	waiting   bool
}

// checkRun runs one round's checks, bounded by ctx and each query's timeout.
type checkRun func(ctx context.Context) []v1alpha1.Decision

func newCheckRounds(clk clock.PassiveClock) *checkRounds {
	c := &checkRounds{clock: clk, rounds: map[types.UID]*checkRound{}}
	c.init(maxCheckRoundsInFlight)
	return c
}

// take returns the decisions of the Canary's round at the moment of s, starting the round when
// there is none; pending is true while it runs past checkInline, or while a round of an earlier
// moment has not ended (never two rounds of one Canary at once).
func (c *checkRounds) take(s rollout.Snapshot, run checkRun) (decisions []v1alpha1.Decision, pending bool) {
	cn := s.Canary
	m := moment(s)
	c.mu.Lock()
	c.sweep()
	rd, ok := c.rounds[cn.UID]
	if !ok || (rd.finished && rd.moment != m) {
		rd = &checkRound{moment: m, done: make(chan struct{})}
		c.rounds[cn.UID] = rd
		go c.run(rd, cn.DeepCopy(), run)
	}
	if rd.moment != m {
		rd.waiting = true
		c.mu.Unlock()
		return nil, true
	}
	c.mu.Unlock()

	timer := time.NewTimer(checkInline)
	defer timer.Stop()
	select {
	case <-rd.done:
	case <-timer.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !rd.finished {
		rd.waiting = true
		return nil, true
	}
	if c.rounds[cn.UID] == rd {
		delete(c.rounds, cn.UID)
	}
	return rd.decisions, false
}

// run runs one round, records its decisions, and wakes the Canary when a reconcile stopped
// waiting for it.
func (c *checkRounds) run(rd *checkRound, cn *v1alpha1.Canary, run checkRun) {
	ctx := *c.ctx.Load()
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	decisions := run(ctx)
	<-c.slots
	c.mu.Lock()
	rd.finished, rd.decisions, rd.endedAt = true, decisions, c.clock.Now()
	wake := rd.waiting
	c.mu.Unlock()
	close(rd.done)
	if wake && ctx.Err() == nil {
		select {
		case c.wake <- event.GenericEvent{Object: cn}:
		case <-ctx.Done():
		}
	}
}

// sweep drops the rounds that ended long ago and were never taken.
func (c *checkRounds) sweep() {
	now := c.clock.Now()
	for uid, rd := range c.rounds {
		if rd.finished && now.Sub(rd.endedAt) > checkRoundsKept {
			delete(c.rounds, uid)
		}
	}
}
