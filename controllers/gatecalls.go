package controllers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// gateCalls makes the webhook calls the planner asks for off the reconcile workers, so that a
// slow or hanging webhook costs only its own Canary: a reconcile starts the calls one moment of a
// rollout needs and returns at once; when they have all answered, the Canary is woken and its next
// reconcile plans with the answers. A moment is the rollout as its status stands (phase, step,
// revisions, the last check and transition): the answers of a moment are its own, and a rollout
// that moved on asks again.
type gateCalls struct {
	offWorker
	clock clock.PassiveClock

	mu    sync.Mutex
	calls map[gateKey]*gateAnswer
}

// offWorker is what work done off the reconcile workers needs: the manager's context, which ends
// it when the manager stops; a channel that wakes the Canary whose work ended; and slots bounding
// the work in flight over all Canaries.
type offWorker struct {
	ctx   atomic.Pointer[context.Context]
	wake  chan event.GenericEvent
	slots chan struct{}
}

// init makes the channels, inFlight slots, and starts with a context that never ends.
func (w *offWorker) init(inFlight int) {
	w.wake, w.slots = make(chan event.GenericEvent, 1024), make(chan struct{}, inFlight)
	background := context.Background()
	w.ctx.Store(&background)
}

// Start keeps the manager's context, so that the work in flight ends when it stops; a
// manager.Runnable.
func (w *offWorker) Start(ctx context.Context) error {
	w.ctx.Store(&ctx)
	<-ctx.Done()
	return nil
}

// maxGateCallsInFlight bounds the webhook calls in flight at once; a call beyond waits for a slot.
const maxGateCallsInFlight = 256

// gateAnswersKept is how long the answers of a moment are kept once in, for a reconcile that has
// to plan again (a conflict on the status write, say).
const gateAnswersKept = 10 * time.Minute

type gateKey struct {
	canary types.UID
	moment string
	typ    v1alpha1.WebhookType
}

// gateAnswer is the state of one type's calls at one moment.
type gateAnswer struct {
	done     bool
	results  []v1alpha1.WebhookResult
	finished time.Time
}

// gateCall makes the calls of the webhooks of one type and returns their answers, bounded by each
// webhook's timeout and retries and by ctx.
type gateCall func(ctx context.Context, t v1alpha1.WebhookType) []v1alpha1.WebhookResult

func newGateCalls(clk clock.PassiveClock) *gateCalls {
	g := &gateCalls{clock: clk, calls: map[gateKey]*gateAnswer{}}
	g.init(maxGateCallsInFlight)
	return g
}

// moment names where the rollout of s stands, which the answers of its webhooks belong to.
func moment(s rollout.Snapshot) string {
	st := s.Canary.Status
	return fmt.Sprintf("%s|%s|%s|%d|%s|%s|%s", s.Target.Revision, st.LastAppliedSpec, st.Phase, st.Step,
		stamp(st.LastCheckedAt), stamp(st.LastTransitionTime), stamp(st.StepStartedAt))
}

func stamp(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// answers returns the answers of the webhooks of the given types for the moment s stands at,
// and pending true while some have not answered yet. Types never asked for at this moment are
// called now, each in its own goroutine through call; the Canary is woken once the last answers.
func (g *gateCalls) answers(s rollout.Snapshot, types []v1alpha1.WebhookType, call gateCall) (map[v1alpha1.WebhookType][]v1alpha1.WebhookResult, bool) {
	cn := s.Canary
	m := moment(s)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forget(cn.UID, m)
	out := map[v1alpha1.WebhookType][]v1alpha1.WebhookResult{}
	pending := false
	for _, t := range types {
		key := gateKey{canary: cn.UID, moment: m, typ: t}
		c, ok := g.calls[key]
		switch {
		case !ok:
			c = &gateAnswer{}
			g.calls[key] = c
			go g.run(key, c, cn.DeepCopy(), t, call)
			pending = true
		case !c.done:
			pending = true
		default:
			out[t] = c.results
		}
	}
	return out, pending
}

// run makes one type's calls, records the answers, and wakes the Canary once none of its calls
// of the moment is left.
func (g *gateCalls) run(key gateKey, c *gateAnswer, cn *v1alpha1.Canary, t v1alpha1.WebhookType, call gateCall) {
	ctx := *g.ctx.Load()
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	results := call(ctx, t)
	<-g.slots
	if ctx.Err() != nil {
		return // the manager stopped: nobody will read the answers
	}
	g.mu.Lock()
	c.done, c.results, c.finished = true, results, g.clock.Now()
	last := true
	for k, other := range g.calls {
		if k.canary == key.canary && k.moment == key.moment && !other.done {
			last = false
		}
	}
	g.mu.Unlock()
	if last {
		select {
		case g.wake <- event.GenericEvent{Object: cn}:
		case <-ctx.Done():
		}
	}
}

// forget drops the answers of the Canary's other moments, and anyone's kept too long. Calls still
// in flight stay until they answer, so a hanging webhook is never called twice at once.
func (g *gateCalls) forget(uid types.UID, current string) {
	now := g.clock.Now()
	for k, c := range g.calls {
		if !c.done {
			continue
		}
		if (k.canary == uid && k.moment != current) || now.Sub(c.finished) > gateAnswersKept {
			delete(g.calls, k)
		}
	}
}
