package testenv

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/trafficctl/trafficctl/rollout"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
)

// WeightLog records, from watches, every weight a canary backend had in the HTTPRoutes and
// VirtualServices of a namespace, in order and without repeats: no change is missed however
// briefly it lasts, so a test can assert the exact sequence of steps a rollout wrote.
type WeightLog struct {
	mu      sync.Mutex
	weights []int32
	cancel  context.CancelFunc
	done    chan struct{}
}

// WatchCanaryWeights starts recording the weight of backend Service canaryService.
func WatchCanaryWeights(cfg *rest.Config, namespace, canaryService string) (*WeightLog, error) {
	l := &WeightLog{}
	var err error
	l.cancel, l.done, err = watchNamespace(cfg, namespace,
		[]client.ObjectList{&gatewayv1.HTTPRouteList{}, &istionetv1.VirtualServiceList{}},
		func(obj runtime.Object) {
			switch o := obj.(type) {
			case *gatewayv1.HTTPRoute:
				l.recordRoute(o, canaryService)
			case *istionetv1.VirtualService:
				l.recordVirtualService(o, canaryService)
			}
		})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// watchNamespace watches every kind of lists in namespace and hands each object that an event
// carries to handle, from one goroutine per kind, until cancel is called; done closes once they
// have all returned.
func watchNamespace(cfg *rest.Config, namespace string, lists []client.ObjectList, handle func(runtime.Object)) (cancel context.CancelFunc, done chan struct{}, err error) {
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var watches []watch.Interface
	for _, list := range lists {
		w, err := wc.Watch(ctx, list, client.InNamespace(namespace))
		if err != nil {
			cancel()
			for _, w := range watches {
				w.Stop()
			}
			return nil, nil, err
		}
		watches = append(watches, w)
	}
	done = make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range watches {
		wg.Go(func() {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					handle(ev.Object)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return cancel, done, nil
}

// recordVirtualService reads the canary's weight from the destinations of the HTTP routes that
// split between the primary and the canary; a destination host may be the short name or a
// longer form of it.
func (l *WeightLog) recordVirtualService(vs *istionetv1.VirtualService, canaryService string) {
	primaryService := strings.TrimSuffix(canaryService, "-canary") + "-primary"
	isService := func(host, service string) bool { return host == service || strings.HasPrefix(host, service+".") }
	for _, route := range vs.Spec.GetHttp() {
		split := false
		for _, d := range route.GetRoute() {
			split = split || isService(d.GetDestination().GetHost(), primaryService)
		}
		if !split {
			// A cohort's or a sticky user's route sends everything to one version: no split.
			continue
		}
		for _, d := range route.GetRoute() {
			host := d.GetDestination().GetHost()
			if host != canaryService && !strings.HasPrefix(host, canaryService+".") {
				continue
			}
			w := d.GetWeight()
			if len(route.GetRoute()) == 1 && w == 0 {
				w = 100
			}
			l.add(w)
		}
	}
}

func (l *WeightLog) add(w int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.weights); n == 0 || l.weights[n-1] != w {
		l.weights = append(l.weights, w)
	}
}

// recordRoute reads the canary's weight from the rules that split between the primary and the
// canary; rules that send a cohort or a sticky user to one of them alone carry no split.
func (l *WeightLog) recordRoute(r *gatewayv1.HTTPRoute, canaryService string) {
	primaryService := strings.TrimSuffix(canaryService, "-canary") + "-primary"
	for _, rule := range r.Spec.Rules {
		names := make([]string, 0, len(rule.BackendRefs))
		for _, b := range rule.BackendRefs {
			names = append(names, string(b.Name))
		}
		if !slices.Contains(names, primaryService) {
			continue
		}
		for _, b := range rule.BackendRefs {
			if string(b.Name) == canaryService {
				l.add(ptr.Deref(b.Weight, 1))
			}
		}
	}
}

// Weights is the sequence recorded so far.
func (l *WeightLog) Weights() []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.weights)
}

// Stop ends the watch.
func (l *WeightLog) Stop() {
	l.cancel()
	<-l.done
}

// RoutingLog records every distinct routing a Canary's route carried, as its router reads it
// back, so a test can assert a strategy's whole sequence on the real objects.
type RoutingLog struct {
	mu       sync.Mutex
	routings []rollout.Routing
	cancel   context.CancelFunc
	done     chan struct{}
}

// WatchRouting calls observe once at the start and after every change to the HTTPRoutes,
// VirtualServices, Services and Deployments (whose ready pods are the split without a mesh) of
// namespace, and records what it returns when the route exists
// and differs from the last.
func WatchRouting(cfg *rest.Config, namespace string, observe func(context.Context) (rollout.State, error)) (*RoutingLog, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &RoutingLog{cancel: cancel, done: make(chan struct{})}
	// Events only wake the observer up: it reads the routing as the router sees it, once per
	// burst of events, with the state before any change as the first entry.
	events := make(chan struct{}, 1)
	events <- struct{}{}
	stopWatches, watchesDone, err := watchNamespace(cfg, namespace,
		[]client.ObjectList{&gatewayv1.HTTPRouteList{}, &istionetv1.VirtualServiceList{}, &corev1.ServiceList{}, &appsv1.DeploymentList{}},
		func(runtime.Object) {
			select {
			case events <- struct{}{}:
			default:
			}
		})
	if err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(l.done)
		defer func() { stopWatches(); <-watchesDone }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-events:
				if st, err := observe(ctx); err == nil && st.Found {
					l.add(st.Routing)
				}
			}
		}
	}()
	return l, nil
}

func (l *RoutingLog) add(r rollout.Routing) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.routings); n == 0 || l.routings[n-1] != r {
		l.routings = append(l.routings, r)
	}
}

// Routings is the sequence recorded so far.
func (l *RoutingLog) Routings() []rollout.Routing {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.routings)
}

// Stop ends the watches.
func (l *RoutingLog) Stop() {
	l.cancel()
	<-l.done
}
