package testenv

import (
	"context"
	"slices"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// WeightLog records, from a watch, every weight a canary backend had in the HTTPRoutes of a
// namespace, in order and without repeats: no change is missed however briefly it lasts, so a
// test can assert the exact sequence of steps a rollout wrote.
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
	w, err := wc.Watch(ctx, &gatewayv1.HTTPRouteList{}, client.InNamespace(namespace))
	if err != nil {
		cancel()
		return nil, err
	}
	l := &WeightLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				if r, isRoute := ev.Object.(*gatewayv1.HTTPRoute); isRoute {
					l.record(r, canaryService)
				}
			}
		}
	}()
	return l, nil
}

func (l *WeightLog) record(r *gatewayv1.HTTPRoute, canaryService string) {
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if string(b.Name) != canaryService {
				continue
			}
			w := ptr.Deref(b.Weight, 1)
			l.mu.Lock()
			if n := len(l.weights); n == 0 || l.weights[n-1] != w {
				l.weights = append(l.weights, w)
			}
			l.mu.Unlock()
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
