package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
	"github.com/trafficctl/trafficctl/providers/netguard"
	"github.com/trafficctl/trafficctl/providers/router"
	"github.com/trafficctl/trafficctl/rollout"
)

// Finalizer holds a Canary until the route it patched is given back to its owner.
const Finalizer = "trafficctl.io/finalizer"

// FieldManager is the server-side apply field manager of every write trafficctl makes.
const FieldManager = "trafficctl"

// Router converges the route objects of a Canary on a traffic split.
type Router interface {
	// Apply writes the routing, creating the route objects trafficctl owns. A route that cannot
	// be used as it stands yields a router.InvalidRouteError.
	Apply(ctx context.Context, cn *v1alpha1.Canary, r rollout.Routing) error
	// Observe reads back the routing the route carries and whether its parents accepted it.
	Observe(ctx context.Context, cn *v1alpha1.Canary) (rollout.State, error)
	// Release gives a user-owned route back exactly as the user wrote it.
	Release(ctx context.Context, cn *v1alpha1.Canary) error
	// HandBack is the route's part of a deletion, once the apex Service selects the target's
	// pods: all traffic to the apex Service, the route staying as the user's (or the user's own
	// route given back).
	HandBack(ctx context.Context, cn *v1alpha1.Canary) error
	// HandedBack reports whether the route has been handed back and the data plane took it.
	HandedBack(ctx context.Context, cn *v1alpha1.Canary) (bool, string, error)
	// Objects are the route objects trafficctl owns for cn, by kind and name.
	Objects(cn *v1alpha1.Canary) []client.Object
}

// MetricQuerier answers a query with one value at an instant, or with one series over a time
// range; analysis.ErrNoData when it has none.
type MetricQuerier interface {
	Query(ctx context.Context, query string, at time.Time) (float64, error)
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]float64, error)
}

// CanaryReconciler runs rollouts: it reads a snapshot of the world, asks the planner for the
// next move, records it in status, then makes it.
type CanaryReconciler struct {
	Client client.Client
	// APIReader reads the data of a ConfigMap or Secret whose resourceVersion moved, and the
	// Secrets that hold credentials, without caching every one in the cluster.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Routers holds a Router for every provider whose route objects this cluster serves.
	Routers map[v1alpha1.Provider]Router
	// RouteTypes are the route objects (HTTPRoute, VirtualService) of those providers, watched
	// so that a route's status or a user's edit wakes its Canary.
	RouteTypes []client.Object
	// Querier returns the metric provider cfg describes; an empty Address means the controller's
	// default Prometheus, a zero Timeout its default query timeout.
	Querier func(cfg prometheus.Config) (MetricQuerier, error)
	// Hooks calls the Canaries' webhooks.
	Hooks WebhookCaller
	// Deliveries sends alerts, event webhooks and post-rollout webhooks off the reconcile path;
	// nil sends nothing.
	Deliveries Deliverer
	// MaxConcurrentReconciles is how many Canaries are reconciled at once, so that one whose
	// webhook takes its whole timeout does not hold the others; 4 when unset.
	MaxConcurrentReconciles int
	// Jitter returns a random duration in [0, n), spreading the looks of many Canaries with the
	// same interval; rand.Int64N when nil. Tests fix it.
	Jitter func(n time.Duration) time.Duration

	// URLPolicy is which addresses may be called on a Canary's behalf: its webhooks, its
	// MetricTemplates' and AlertProviders' addresses.
	URLPolicy netguard.Policy
	// AllowCrossNamespaceRefs lets a Canary name a MetricTemplate or AlertProvider of another
	// namespace.
	AllowCrossNamespaceRefs bool

	// gates makes the webhook calls off the reconcile workers.
	gates *gateCalls
	// checks runs the check rounds off the reconcile workers.
	checks *checkRounds
	// routes tells a route changed by another writer from one the cache has not caught up on.
	routes routeMemory
	// config watches the ConfigMaps and Secrets targets use; nil reads them from the apiserver
	// on every reconcile.
	config *configWatch
}

const (
	indexTargetName = ".spec.targetRef.name"
	indexRouteName  = ".spec.routeName"
	indexHPAName    = ".spec.autoscalerRef.name"
	// indexCopyOf indexes the primary's config copies by their Canary: a label selector on a
	// cached list scans every object of the namespace, this looks up the Canary's own.
	indexCopyOf = ".metadata.labels.canary"
)

// SetupWithManager registers the reconciler and its watches: the Canary itself, the objects
// it owns, the target Deployment and a user-owned HTTPRoute.
func (r *CanaryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &v1alpha1.Canary{}, indexTargetName, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Canary).Spec.TargetRef.Name}
	}); err != nil {
		return fmt.Errorf("indexing canaries by target: %w", err)
	}
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}} {
		if err := indexer.IndexField(ctx, obj, indexCopyOf, func(o client.Object) []string {
			if o.GetLabels()[LabelManagedBy] != ManagedByValue {
				return nil
			}
			if name := o.GetLabels()[LabelCanary]; name != "" {
				return []string{name}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("indexing config copies by canary: %w", err)
		}
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Canary{}, indexRouteName, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Canary).RouteName()}
	}); err != nil {
		return fmt.Errorf("indexing canaries by route: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.Canary{}, indexHPAName, func(o client.Object) []string {
		if ref := o.(*v1alpha1.Canary).Spec.AutoscalerRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing canaries by autoscaler: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		// A manual request is an annotation, which leaves the generation as it is.
		For(&v1alpha1.Canary{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: cmp.Or(r.MaxConcurrentReconciles, 4), NewQueue: newCanaryQueue}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.canariesBy(indexTargetName))).
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(r.canariesBy(indexHPAName)))
	for _, t := range r.RouteTypes {
		b = b.Watches(t, handler.EnqueueRequestsFromMapFunc(r.canariesBy(indexRouteName)))
	}
	if r.config != nil {
		if err := indexer.IndexField(ctx, &appsv1.Deployment{}, indexConfigRefs, configRefKeys); err != nil {
			return fmt.Errorf("indexing deployments by the config they use: %w", err)
		}
		for _, src := range r.config.sources(r) {
			b = b.WatchesRawSource(src)
		}
	}
	if r.gates == nil {
		r.gates = newGateCalls(r.Clock)
	}
	// The answers of webhooks called off the reconcile wake their Canary.
	b = b.WatchesRawSource(source.Channel(r.gates.wake, &handler.EnqueueRequestForObject{}))
	if r.checks == nil {
		r.checks = newCheckRounds(r.Clock)
	}
	// So do the check rounds that outlasted their reconcile.
	b = b.WatchesRawSource(source.Channel(r.checks.wake, &handler.EnqueueRequestForObject{}))
	return b.Complete(r)
}

// router is the Router of the Canary's provider, or an error a user can act on when this
// cluster does not serve that provider's route objects.
func (r *CanaryReconciler) router(cn *v1alpha1.Canary) (Router, error) {
	provider := cn.Spec.Provider
	if provider == "" {
		provider = v1alpha1.ProviderGatewayAPI
	}
	if rt, ok := r.Routers[provider]; ok {
		return rt, nil
	}
	return nil, fmt.Errorf("provider %s needs the %s CRD, which this cluster does not serve; install it and restart trafficctl, or choose another provider", provider, cn.RouteKind())
}

func (r *CanaryReconciler) canariesBy(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.CanaryList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing canaries for a watched object", "index", index, "object", client.ObjectKeyFromObject(o))
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, cn := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&cn)})
		}
		return reqs
	}
}

// The least the code needs: it reads through the cache what it watches (list and watch), writes
// by patch and server-side apply (create and patch), and deletes only the config copies it made.
// AlertProviders are read one at a time, uncached.
//
// +kubebuilder:rbac:groups=trafficctl.io,resources=canaries;metrictemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=trafficctl.io,resources=alertproviders,verbs=get
// +kubebuilder:rbac:groups=trafficctl.io,resources=canaries,verbs=patch
// +kubebuilder:rbac:groups=trafficctl.io,resources=canaries/status,verbs=patch
// +kubebuilder:rbac:groups=trafficctl.io,resources=canaries/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch

// conflictRetry is how soon a Canary whose status patch met a conflict is looked at again: the
// cache it was read from lagged behind a write, and catches up within moments.
const conflictRetry = 250 * time.Millisecond

// Reconcile moves one Canary's rollout one step: get, handle deletion and the finalizer, then
// suspension, then snapshot -> plan -> record -> act. A conflict (a plan made on a status the
// cache had not yet updated) is retried shortly, and is not an error.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcileCanary(ctx, req)
	if apierrors.IsConflict(err) {
		ctrl.LoggerFrom(ctx).V(1).Info("read a stale Canary from the cache; looking again", "error", err.Error())
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return res, err
}

func (r *CanaryReconciler) reconcileCanary(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cn := &v1alpha1.Canary{}
	// Read from the cache. Its status may lag behind the last patch; a plan made on a stale one
	// is refused by the optimistic lock on the status patch (a conflict, retried), before anything
	// acts on it.
	if err := r.Client.Get(ctx, req.NamespacedName, cn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cn.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, cn)
	}
	if !controllerutil.ContainsFinalizer(cn, Finalizer) {
		patch := client.MergeFromWithOptions(cn.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(cn, Finalizer)
		if err := r.Client.Patch(ctx, cn, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}
	if cn.Spec.Suspend {
		return ctrl.Result{}, r.recordHalt(ctx, cn, rollout.ReasonSuspended, "The Canary is suspended; traffic stays where it is until spec.suspend is false.", false)
	}
	return r.reconcile(ctx, cn)
}

func (r *CanaryReconciler) reconcile(ctx context.Context, cn *v1alpha1.Canary) (ctrl.Result, error) {
	target, err := r.getTarget(ctx, cn)
	if apierrors.IsNotFound(err) {
		msg := fmt.Sprintf("Deployment %s/%s, the Canary's target, does not exist; nothing is created until it does.", cn.Namespace, cn.Spec.TargetRef.Name)
		if herr := r.recordHalt(ctx, cn, rollout.ReasonTargetNotFound, msg, false); herr != nil {
			return ctrl.Result{}, herr
		}
		return ctrl.Result{}, fmt.Errorf("target deployment %s/%s not found", cn.Namespace, cn.Spec.TargetRef.Name)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := validateTarget(target); err != nil {
		return ctrl.Result{}, r.stall(ctx, cn, rollout.ReasonInvalidTarget, err)
	}
	if err := rollout.ValidateMatch(cn.Spec.Analysis.Match); err != nil {
		return ctrl.Result{}, r.stall(ctx, cn, rollout.ReasonInvalidSpec, err)
	}
	rt, err := r.router(cn)
	if err != nil {
		return ctrl.Result{}, r.stall(ctx, cn, rollout.ReasonProviderUnavailable, err)
	}
	var refused refusedReference
	if err := r.checkReferences(ctx, cn); errors.As(err, &refused) {
		// Stalled, and looked at again every interval: the fix may be to a MetricTemplate, which
		// does not wake the Canary.
		changed, err := r.halt(ctx, cn, refused.reason, describeRefused(refused), true)
		if err != nil {
			return ctrl.Result{}, err
		}
		if changed {
			r.Recorder.Eventf(cn, nil, corev1.EventTypeWarning, refused.reason, "Reconcile", "%s", eventNote(describeRefused(refused)))
		}
		return ctrl.Result{RequeueAfter: cn.AnalysisInterval()}, nil
	}
	// The ConfigMaps and Secrets the target uses are part of its revision, and the primary's copies
	// are made of them.
	config, err := r.readConfig(ctx, target.Namespace, &target.Spec.Template.Spec)
	if err != nil {
		return ctrl.Result{}, err
	}
	if missing := missingOf(config); len(missing) > 0 {
		// Not watched: looked at again every interval.
		return ctrl.Result{RequeueAfter: cn.AnalysisInterval()}, r.recordHalt(ctx, cn, rollout.ReasonConfigNotFound, rollout.UpperFirst(missingConfig{missing}.Error())+".", false)
	}
	revision, err := revisionOf(target, config)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.ensurePrimary(ctx, cn, target, config, revision); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.tendConfigCopies(ctx, cn); err != nil {
		return ctrl.Result{}, err
	}
	var invalidHPA *invalidAutoscalerError
	switch err := r.ensurePrimaryAutoscaler(ctx, cn); {
	case errors.As(err, &invalidHPA):
		return ctrl.Result{}, r.stall(ctx, cn, rollout.ReasonInvalidAutoscaler, err)
	case errors.As(err, new(errAutoscalerNotFound)):
		if herr := r.recordHalt(ctx, cn, rollout.ReasonAutoscalerNotFound, rollout.UpperFirst(err.Error())+"; the primary is not autoscaled until it does.", false); herr != nil {
			return ctrl.Result{}, herr
		}
		return ctrl.Result{}, err
	case err != nil:
		return ctrl.Result{}, err
	}
	if err := r.ensureServices(ctx, cn, target); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.followTargetReplicas(ctx, cn, target); err != nil {
		return ctrl.Result{}, err
	}

	snap, err := r.snapshot(ctx, cn, target, revision, rt)
	if router.IsInvalidRoute(err) {
		return ctrl.Result{}, r.stall(ctx, cn, rollout.ReasonInvalidRoute, errors.Unwrap(err))
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if rollout.ChecksDue(snap) {
		checks, pending := r.checks.take(snap, func(ctx context.Context) []v1alpha1.Decision { return r.runChecks(ctx, snap) })
		if pending {
			// The round goes on off the worker and wakes the Canary when it ends; until then
			// nothing is recorded or changed.
			return ctrl.Result{RequeueAfter: checkRecheck}, nil
		}
		snap.Checks = checks
	}
	snap, plan := r.planWithGates(snap, target)
	if e, ok := r.routes.drift(cn, snap.Route, plan.Routing); ok {
		plan.Events = append(plan.Events, e)
	}

	before := cn.DeepCopy()
	var alerts []alertTarget
	if alertsDue(cn, plan) {
		var problems []string
		alerts, problems = r.resolveAlerts(ctx, cn)
		setAlertsCondition(&plan.Status, cn.Generation, alerts, problems)
		if msg := alertProblems(problems); msg != "" && !alertProblemKnown(&before.Status, msg) {
			plan.Events = append(plan.Events, rollout.Event{Type: corev1.EventTypeWarning, Reason: rollout.ReasonInvalidAlert, Message: msg})
		}
	} else if len(cn.Spec.Analysis.Alerts) == 0 {
		meta.RemoveStatusCondition(&plan.Status.Conditions, rollout.ConditionAlertsReady)
	}
	cn.Status = plan.Status
	rollout.SetConditions(&cn.Status, cn.Generation, plan)
	if err := r.patchStatus(ctx, cn, before); err != nil {
		return ctrl.Result{}, fmt.Errorf("recording the plan in status: %w", err)
	}
	log := ctrl.LoggerFrom(ctx)
	for _, d := range snap.Checks {
		log.Info("check", "metric", d.Metric, "verdict", d.Verdict, "value", d.Value, "bound", d.Bound, "step", plan.Status.Step, "message", d.Message)
	}
	for _, e := range plan.Events {
		r.Recorder.Eventf(cn, nil, e.Type, e.Reason, "Rollout", "%s", eventNote(e.Message))
		log.Info(e.Message, "reason", e.Reason, "phase", plan.Status.Phase, "step", plan.Status.Step, "canaryWeight", plan.Status.CanaryWeight)
	}
	r.deliver(cn, &before.Status, target, plan, alerts, snap.Target.Revision)
	recordMetrics(cn, &before.Status, &plan.Status)

	if err := r.act(ctx, cn, target, config, rt, plan); err != nil {
		if router.IsInvalidRoute(err) {
			return ctrl.Result{}, r.stall(ctx, cn, rollout.ReasonInvalidRoute, err)
		}
		r.Recorder.Eventf(cn, nil, corev1.EventTypeWarning, rollout.ReasonReconcileError, "Rollout", "Applying the plan failed and will be retried: %v", err)
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.requeueAfter(cn, plan)}, nil
}

// act converges the cluster on the plan that status now records.
func (r *CanaryReconciler) act(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment, config []configItem, rt Router, plan rollout.Plan) error {
	if err := rt.Apply(ctx, cn, plan.Routing); err != nil {
		return fmt.Errorf("writing the routing: %w", err)
	}
	if plan.PromotePrimary {
		if err := r.promotePrimary(ctx, cn, target, config, plan.Status.LastAppliedSpec); err != nil {
			return err
		}
	}
	if plan.CanaryReplicas != nil {
		if err := r.scaleTarget(ctx, target, *plan.CanaryReplicas); err != nil {
			return err
		}
	}
	return nil
}

// idleResync is how often an idle Canary is looked at without a watch event. Everything an idle
// Canary depends on is watched (its target, the config the target uses, what it owns, its route,
// its autoscaler); what is not (a MetricTemplate, an AlertProvider) matters only once a rollout
// starts, and is read then.
const idleResync = 10 * time.Minute

// requeueAfter is the plan's own wish, or, for an idle Canary, a jittered resync every
// idleResync (or interval, when longer), which reads only the cache.
func (r *CanaryReconciler) requeueAfter(cn *v1alpha1.Canary, plan rollout.Plan) time.Duration {
	if plan.RequeueAfter > 0 {
		return plan.RequeueAfter
	}
	resync := max(cn.AnalysisInterval(), idleResync)
	jitter := r.Jitter
	if jitter == nil {
		jitter = func(n time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(n))) }
	}
	return resync + jitter(resync/10+1)
}

// stall records a problem that retrying cannot fix, and stops retrying until the Canary or
// what it watches changes.
func (r *CanaryReconciler) stall(ctx context.Context, cn *v1alpha1.Canary, reason string, cause error) error {
	msg := rollout.UpperFirst(cause.Error()) + "."
	changed, err := r.halt(ctx, cn, reason, msg, true)
	if err != nil {
		return err
	}
	if changed {
		r.Recorder.Eventf(cn, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventNote(msg))
	}
	return reconcile.TerminalError(cause)
}

// recordHalt writes a Ready=False condition for a Canary that cannot go on, leaving the rollout
// state as it is.
func (r *CanaryReconciler) recordHalt(ctx context.Context, cn *v1alpha1.Canary, reason, msg string, stalled bool) error {
	_, err := r.halt(ctx, cn, reason, msg, stalled)
	return err
}

// halt is recordHalt, reporting whether the condition changed (and was written).
func (r *CanaryReconciler) halt(ctx context.Context, cn *v1alpha1.Canary, reason, msg string, stalled bool) (bool, error) {
	before := cn.DeepCopy()
	cn.Status.ObservedGeneration = cn.Generation
	rollout.SetConditions(&cn.Status, cn.Generation, rollout.Plan{Reason: reason, Message: msg, Stalled: stalled})
	if equality.Semantic.DeepEqual(before.Status, cn.Status) {
		return false, nil
	}
	if err := r.patchStatus(ctx, cn, before); err != nil {
		return false, fmt.Errorf("recording condition %s: %w", reason, err)
	}
	return true, nil
}

// patchStatus writes cn's status when it differs from before's, under the optimistic lock: a
// status read stale from the cache is refused with a conflict, and the reconcile retried. A
// status that did not change is not written.
func (r *CanaryReconciler) patchStatus(ctx context.Context, cn, before *v1alpha1.Canary) error {
	if equality.Semantic.DeepEqual(before.Status, cn.Status) {
		return nil
	}
	return r.Client.Status().Patch(ctx, cn, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// maxEventNote is the longest note events.k8s.io accepts; a longer event would be lost.
const maxEventNote = 1024

// eventNote cuts a message to what an event can hold, on a character boundary; the whole
// message stays in the Canary's status.
func eventNote(msg string) string {
	if len(msg) <= maxEventNote {
		return msg
	}
	const more = " [...]"
	cut := maxEventNote - len(more)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + more
}
