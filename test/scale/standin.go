package scale

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testenv"
)

// standIn plays the Deployment controller with its kubelets (every Deployment's replicas become
// available) and a Gateway controller (every HTTPRoute is accepted), driven by watches, so that
// it lists nothing on a period and its own load stays flat however many objects there are.
type standIn struct {
	cache  cache.Cache
	client client.Client
	queue  workqueue.TypedRateLimitingInterface[item]
}

type item struct {
	kind string // "Deployment" or "HTTPRoute"
	key  client.ObjectKey
}

// startStandIn watches namespace and settles what it sees until ctx ends.
func startStandIn(ctx context.Context, cfg *rest.Config, namespace string, workers int) (*standIn, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0 // the stand-in must not be what holds the controller back
	c, err := cache.New(cfg, cache.Options{
		Scheme:            testenv.Scheme(),
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("stand-in cache: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("stand-in client: %w", err)
	}
	s := &standIn{cache: c, client: cl, queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[item]())}
	for kind, obj := range map[string]client.Object{"Deployment": &appsv1.Deployment{}, "HTTPRoute": &gatewayv1.HTTPRoute{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("stand-in informer for %s: %w", kind, err)
		}
		enqueue := func(o any) {
			if m, ok := o.(client.Object); ok {
				s.queue.Add(item{kind: kind, key: client.ObjectKeyFromObject(m)})
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, o any) { enqueue(o) },
		}); err != nil {
			return nil, err
		}
	}
	// The harness watches the Canaries through the same cache: waiting for thousands of them
	// must not list them all every second.
	if _, err := c.GetInformer(ctx, &v1alpha1.Canary{}); err != nil {
		return nil, fmt.Errorf("stand-in informer for Canaries: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("stand-in cache did not sync")
	}
	go func() { <-ctx.Done(); s.queue.ShutDown() }()
	for range workers {
		go s.work(ctx)
	}
	return s, nil
}

func (s *standIn) work(ctx context.Context) {
	for {
		it, stop := s.queue.Get()
		if stop {
			return
		}
		var err error
		switch it.kind {
		case "Deployment":
			err = s.settle(ctx, it.key)
		case "HTTPRoute":
			err = s.accept(ctx, it.key)
		}
		if err != nil && ctx.Err() == nil {
			s.queue.AddRateLimited(it)
		} else {
			s.queue.Forget(it)
		}
		s.queue.Done(it)
	}
}

// settle gives a Deployment the status of one whose every replica runs its template.
func (s *standIn) settle(ctx context.Context, key client.ObjectKey) error {
	d := &appsv1.Deployment{}
	if err := s.cache.Get(ctx, key, d); err != nil {
		return client.IgnoreNotFound(err)
	}
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	want := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: replicas,
		ReadyReplicas: replicas, AvailableReplicas: replicas,
	}
	if equality.Semantic.DeepEqual(d.Status, want) {
		return nil
	}
	d.Status = want
	return client.IgnoreNotFound(s.client.Status().Update(ctx, d))
}

// accept marks an HTTPRoute accepted by each of its parents at its current generation.
func (s *standIn) accept(ctx context.Context, key client.ObjectKey) error {
	r := &gatewayv1.HTTPRoute{}
	if err := s.cache.Get(ctx, key, r); err != nil {
		return client.IgnoreNotFound(err)
	}
	if len(r.Status.Parents) == len(r.Spec.ParentRefs) && len(r.Status.Parents) > 0 &&
		len(r.Status.Parents[0].Conditions) > 0 && r.Status.Parents[0].Conditions[0].ObservedGeneration == r.Generation {
		return nil
	}
	parents := make([]gatewayv1.RouteParentStatus, 0, len(r.Spec.ParentRefs))
	for _, ref := range r.Spec.ParentRefs {
		parents = append(parents, gatewayv1.RouteParentStatus{
			ParentRef: ref, ControllerName: testenv.GatewayController,
			Conditions: []metav1.Condition{{
				Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: "Accepted",
				ObservedGeneration: r.Generation, LastTransitionTime: metav1.Now(),
			}},
		})
	}
	r.Status.Parents = parents
	return client.IgnoreNotFound(s.client.Status().Update(ctx, r))
}
