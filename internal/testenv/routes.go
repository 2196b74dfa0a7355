package testenv

import (
	"context"
	"slices"
	"strings"
	"sync"

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
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &WeightLog{cancel: cancel, done: make(chan struct{})}
	var watches []watch.Interface
	for _, list := range []client.ObjectList{&gatewayv1.HTTPRouteList{}, &istionetv1.VirtualServiceList{}} {
		w, err := wc.Watch(ctx, list, client.InNamespace(namespace))
		if err != nil {
			cancel()
			for _, w := range watches {
				w.Stop()
			}
			return nil, err
		}
		watches = append(watches, w)
	}
	var wg sync.WaitGroup
	for _, w := range watches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					switch o := ev.Object.(type) {
					case *gatewayv1.HTTPRoute:
						l.recordRoute(o, canaryService)
					case *istionetv1.VirtualService:
						l.recordVirtualService(o, canaryService)
					}
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(l.done)
	}()
	return l, nil
}

// recordVirtualService reads the canary's weight from the destinations of a VirtualService's
// HTTP routes; a destination host may be the short name or a longer form of it.
func (l *WeightLog) recordVirtualService(vs *istionetv1.VirtualService, canaryService string) {
	for _, route := range vs.Spec.GetHttp() {
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

func (l *WeightLog) recordRoute(r *gatewayv1.HTTPRoute, canaryService string) {
	for _, rule := range r.Spec.Rules {
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
