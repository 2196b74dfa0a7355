package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"
)

// Defaults for DispatcherOptions, chosen so a slow or broken receiver costs a few goroutines and
// a bounded amount of memory, and a flapping Canary does not page anyone twice in ten minutes.
const (
	defaultDispatchWorkers      = 4
	defaultDispatchQueueSize    = 1000
	defaultDispatchAttempts     = 4
	defaultDispatchTimeout      = 10 * time.Second
	defaultDispatchBackoff      = time.Second
	defaultDispatchMaxBackoff   = 30 * time.Second
	defaultDispatchDedupeWindow = 10 * time.Minute

	// dedupeMaxKeys caps the de-duplication set, so a controller with many Canaries (or a
	// caller building keys badly) cannot grow it without limit; past it the key used least
	// recently is forgotten first, which at worst lets one duplicate through.
	dedupeMaxKeys = 10000
)

// Label values of the dispatcher metrics.
const (
	outcomeDelivered = "delivered"
	outcomeFailed    = "failed"
	outcomeDropped   = "dropped"
	outcomeDuplicate = "duplicate"

	resultSuccess = "success"
	resultError   = "error"
)

// errDispatcherStopped is why a job enqueued after Start returned is dropped: nothing would
// ever deliver it.
var errDispatcherStopped = errors.New("notification dispatcher is stopped")

// Job is one delivery: Send is called with a context bounded by the attempt timeout.
type Job struct {
	// Key de-duplicates: a job whose Key was enqueued within DedupeWindow (delivered, pending or
	// being retried) is dropped as a duplicate, so a reconcile that runs again after a conflict
	// does not alert twice. A job that failed for good keeps its Key for the window too, so a
	// broken receiver gets one try per window rather than one per reconcile. An empty Key is
	// never de-duplicated.
	Key string
	// Canary is "namespace/name" of the Canary it is for, for OnFailure and logs.
	Canary string
	// Provider names the receiver without its address, e.g. "shop/slack-oncall" or "webhook
	// load-test"; it labels the metrics.
	Provider string
	// Kind labels the metrics: "slack", "msteams", "discord", "webhook", "event-webhook".
	Kind string
	// Send delivers the job once. It must return when ctx ends, because shutdown waits for it,
	// and its error must not contain an address or a token, because it reaches logs and
	// OnFailure.
	Send func(ctx context.Context) error
}

// DispatcherOptions tunes a Dispatcher; every zero field takes its default, so
// DispatcherOptions{} is a working configuration.
type DispatcherOptions struct {
	// Workers is how many deliveries run at once; default 4. A receiver that hangs holds one
	// worker for at most Timeout per attempt.
	Workers int
	// QueueSize is how many jobs may wait at most, ready or backing off, so a dead receiver
	// cannot grow memory without limit; beyond it Enqueue drops the job (counted, OnFailure
	// called). Default 1000.
	QueueSize int
	// Attempts is how many times a job is tried before OnFailure; default 4.
	Attempts int
	// Timeout bounds each attempt; default 10s. It is a context deadline, so it runs on the
	// real clock, not on Clock.
	Timeout time.Duration
	// Backoff is the delay before the first retry, doubling on each retry up to MaxBackoff;
	// default 1s.
	Backoff time.Duration
	// MaxBackoff caps the retry delay; default 30s.
	MaxBackoff time.Duration
	// DedupeWindow is how long a Key is remembered; default 10m.
	DedupeWindow time.Duration
	// Clock times the backoff waits, the dedupe window and the delivery latency, so tests can
	// step a fake clock instead of sleeping; default clock.RealClock{}.
	Clock clock.WithTicker
	// Registerer is where the metrics are registered; nil leaves them unregistered. Metrics
	// already registered by another Dispatcher are shared rather than rejected.
	Registerer prometheus.Registerer
	// OnFailure is called once for a job that could not be delivered (after its last attempt,
	// or dropped because the queue was full or the dispatcher stopped), so the controller can
	// tell the user on the Canary. Its error contains no address or token. It runs on a worker
	// or in Enqueue, so it must not block.
	OnFailure func(j Job, err error)
	// Logger receives retries and failures; default: discard.
	Logger logr.Logger
}

// Dispatcher delivers alerts and event webhooks off the reconcile path: a reconcile enqueues and
// returns at once, so a slow or dead receiver never holds up a rollout or another Canary.
//
// Jobs ready for an attempt wait in a buffered channel read by a fixed set of workers. A failed
// attempt is re-queued after its backoff by a goroutine waiting on a timer of the injected
// clock, so a job waiting to retry holds no worker. A plain channel was preferred to client-go's
// workqueue: the queue must be bounded (the workqueue is not), de-duplication is by Key over a
// time window rather than by identical items waiting together, and jobs still waiting at
// shutdown are abandoned rather than drained with a cancelled context.
type Dispatcher struct {
	opts    DispatcherOptions
	log     logr.Logger
	metrics dispatcherMetrics

	// ready holds jobs due for an attempt. Its capacity, QueueSize+Workers, bounds the jobs
	// waiting plus those in flight, so a send to it never blocks, in Enqueue or in a retry.
	ready chan *delivery
	// wg counts the workers and the retries waiting for their backoff, so Start returns only
	// once all of them are gone.
	wg sync.WaitGroup

	mu sync.Mutex
	// seen remembers the Keys enqueued within DedupeWindow.
	seen *cache.LRUExpireCache
	// waiting counts jobs in ready or backing off; Enqueue drops when it reaches QueueSize.
	waiting int
	stopped bool
}

// delivery is a Job on its way, with what the dispatcher needs to retry and time it.
type delivery struct {
	job      Job
	enqueued time.Time
	attempts int
}

// NewDispatcher fills in defaults and registers the metrics; the workers run once Start is
// called, and jobs enqueued before then wait for it.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	if o.Workers <= 0 {
		o.Workers = defaultDispatchWorkers
	}
	if o.QueueSize <= 0 {
		o.QueueSize = defaultDispatchQueueSize
	}
	if o.Attempts <= 0 {
		o.Attempts = defaultDispatchAttempts
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultDispatchTimeout
	}
	if o.Backoff <= 0 {
		o.Backoff = defaultDispatchBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = defaultDispatchMaxBackoff
	}
	if o.DedupeWindow <= 0 {
		o.DedupeWindow = defaultDispatchDedupeWindow
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.OnFailure == nil {
		o.OnFailure = func(Job, error) {}
	}
	log := o.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &Dispatcher{
		opts:    o,
		log:     log,
		metrics: newDispatcherMetrics(o.Registerer, log),
		ready:   make(chan *delivery, o.QueueSize+o.Workers),
		seen:    cache.NewLRUExpireCacheWithClock(dedupeMaxKeys, o.Clock),
	}
}

// Enqueue queues j and reports whether it was queued (false: duplicate or dropped). It never
// blocks, so a reconcile can call it under any deadline.
func (d *Dispatcher) Enqueue(j Job) bool {
	d.mu.Lock()
	var drop error
	switch {
	case d.stopped:
		drop = errDispatcherStopped
	case j.Send == nil:
		drop = errors.New("notification job has no send function")
	case j.Key != "" && d.isDuplicateLocked(j.Key):
		d.mu.Unlock()
		d.metrics.notifications.WithLabelValues(j.Kind, j.Provider, outcomeDuplicate).Inc()
		d.log.V(1).Info("notification dropped as a duplicate", "canary", j.Canary, "provider", j.Provider, "key", j.Key)
		return false
	case d.waiting >= d.opts.QueueSize:
		drop = fmt.Errorf("notification queue is full (%d jobs waiting)", d.opts.QueueSize)
	}
	if drop != nil {
		d.mu.Unlock()
		d.metrics.notifications.WithLabelValues(j.Kind, j.Provider, outcomeDropped).Inc()
		d.log.Error(drop, "notification dropped", "canary", j.Canary, "provider", j.Provider, "kind", j.Kind)
		d.opts.OnFailure(j, drop)
		return false
	}
	if j.Key != "" {
		d.seen.Add(j.Key, struct{}{}, d.opts.DedupeWindow)
	}
	d.waiting++
	d.mu.Unlock()

	d.ready <- &delivery{job: j, enqueued: d.opts.Clock.Now()}
	return true
}

// isDuplicateLocked reports whether key was enqueued within the window; d.mu must be held, so
// that two concurrent Enqueues of one Key cannot both pass.
func (d *Dispatcher) isDuplicateLocked(key string) bool {
	_, ok := d.seen.Get(key)
	return ok
}

// Start runs the workers until ctx ends, then waits for the attempts in flight, whose contexts
// are cancelled with ctx. Jobs still waiting are abandoned: the process is stopping, and a new
// leader re-evaluates the Canaries. It satisfies controller-runtime's manager.Runnable.
func (d *Dispatcher) Start(ctx context.Context) error {
	for range d.opts.Workers {
		d.wg.Go(func() { d.work(ctx) })
	}
	<-ctx.Done()

	d.mu.Lock()
	d.stopped = true
	abandoned := d.waiting
	d.mu.Unlock()
	d.wg.Wait()
	if abandoned > 0 {
		d.log.Info("notifications abandoned at shutdown", "count", abandoned)
	}
	return nil
}

// NeedLeaderElection returns false: alerts are enqueued only by the reconciler, which runs only
// on the leader, so the workers may start before the election is won and idle until then. It
// implements controller-runtime's manager.LeaderElectionRunnable.
func (d *Dispatcher) NeedLeaderElection() bool {
	return false
}

// work runs attempts until ctx ends.
func (d *Dispatcher) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case dl := <-d.ready:
			d.mu.Lock()
			d.waiting--
			d.mu.Unlock()
			// select picks at random when both are ready; do not start a Send that is
			// cancelled already.
			if ctx.Err() != nil {
				return
			}
			d.attempt(ctx, dl)
		}
	}
}

// attempt sends dl once, then records the success, schedules the retry or reports the failure.
func (d *Dispatcher) attempt(ctx context.Context, dl *delivery) {
	j := dl.job
	dl.attempts++
	attemptCtx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	err := j.Send(attemptCtx)
	cancel()

	switch {
	case err == nil:
		// Latency first, outcome last: whoever sees the delivery counted sees its latency.
		d.metrics.delivery.WithLabelValues(j.Kind).Observe(d.opts.Clock.Since(dl.enqueued).Seconds())
		d.countAttempt(j, resultSuccess)
		d.metrics.notifications.WithLabelValues(j.Kind, j.Provider, outcomeDelivered).Inc()

	case ctx.Err() != nil:
		// Cut short by shutdown, not by the receiver: not the receiver's failure to report.
		d.countAttempt(j, resultError)
		d.log.Info("notification abandoned at shutdown", "canary", j.Canary, "provider", j.Provider, "kind", j.Kind, "attempt", dl.attempts)

	case dl.attempts < d.opts.Attempts:
		delay := d.backoff(dl.attempts)
		d.mu.Lock()
		d.waiting++
		d.mu.Unlock()
		// The timer is created here rather than in the goroutine, so the delay runs from now.
		timer := d.opts.Clock.NewTimer(delay)
		d.wg.Go(func() {
			select {
			case <-timer.C():
				d.ready <- dl
			case <-ctx.Done():
				timer.Stop()
			}
		})
		d.log.V(1).Info("notification attempt failed, retrying", "canary", j.Canary, "provider", j.Provider, "kind", j.Kind,
			"attempt", dl.attempts, "retryIn", delay, "error", err.Error())
		// Counted once the retry's delay has started, so a reader of the counter (a test
		// stepping a fake clock) knows when the delay runs from.
		d.countAttempt(j, resultError)

	default:
		d.countAttempt(j, resultError)
		d.metrics.notifications.WithLabelValues(j.Kind, j.Provider, outcomeFailed).Inc()
		err = fmt.Errorf("notification not delivered after %d attempts: %w", dl.attempts, err)
		d.log.Error(err, "notification failed", "canary", j.Canary, "provider", j.Provider, "kind", j.Kind)
		d.opts.OnFailure(j, err)
	}
}

// countAttempt counts one attempt of j with the given result.
func (d *Dispatcher) countAttempt(j Job, result string) {
	d.metrics.attempts.WithLabelValues(j.Kind, j.Provider, result).Inc()
}

// backoff is the delay after the given failed attempt (1-based): Backoff doubled per earlier
// retry, capped at MaxBackoff.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	delay := d.opts.Backoff
	for i := 1; i < attempt && delay < d.opts.MaxBackoff; i++ {
		delay *= 2
	}
	return min(delay, d.opts.MaxBackoff)
}

// dispatcherMetrics are a Dispatcher's own collectors rather than package globals, so tests and
// a second manager each get theirs.
type dispatcherMetrics struct {
	notifications *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	delivery      *prometheus.HistogramVec
}

func newDispatcherMetrics(r prometheus.Registerer, log logr.Logger) dispatcherMetrics {
	m := dispatcherMetrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trafficctl_notifications_total",
			Help: "Notifications by outcome: delivered, failed (after the last attempt), dropped (queue full) or duplicate.",
		}, []string{"kind", "provider", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trafficctl_notification_attempts_total",
			Help: "Notification delivery attempts by result: success or error.",
		}, []string{"kind", "provider", "result"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trafficctl_notification_delivery_seconds",
			Help: "Time from enqueueing a notification to its delivery, retries included.",
			// Up to five minutes: four attempts of ten seconds and their backoff fit well inside.
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"kind"}),
	}
	if r != nil {
		m.notifications = registerDispatcherCollector(r, m.notifications, log)
		m.attempts = registerDispatcherCollector(r, m.attempts, log)
		m.delivery = registerDispatcherCollector(r, m.delivery, log)
	}
	return m
}

// registerDispatcherCollector registers c, or returns the collector registered already under its
// name, so two Dispatchers on one registry share the series instead of failing; any other
// error is logged, not fatal, because missing metrics must not stop alerts.
func registerDispatcherCollector[C prometheus.Collector](r prometheus.Registerer, c C, log logr.Logger) C {
	err := r.Register(c)
	if err == nil {
		return c
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Error(err, "cannot register notification metrics")
	return c
}
