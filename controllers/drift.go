package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// routeMemory remembers, per Canary, the routing its route was last seen carrying when that was
// what the plan asked. A route read from the cache lags trafficctl's own writes, so a route that
// differs from the plan is drift only once it had been seen carrying the plan: a cache cannot go
// back to an older object, so only another writer can have changed it.
type routeMemory struct {
	mu     sync.Mutex
	loaded map[types.UID]rollout.Routing
}

// drift reports the event for cn's route having drifted from want, at most once per drift, and
// remembers what the route carries. The kubernetes provider's Service is never drift: its share
// is the pods available, which lag any change.
func (m *routeMemory) drift(cn *v1alpha1.Canary, observed rollout.State, want rollout.Routing) (rollout.Event, bool) {
	if cn.Spec.Provider == v1alpha1.ProviderKubernetes {
		return rollout.Event{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded == nil {
		m.loaded = map[types.UID]rollout.Routing{}
	}
	if observed.Found && observed.Routing == want {
		m.loaded[cn.UID] = want
		return rollout.Event{}, false
	}
	last, seen := m.loaded[cn.UID]
	if !seen || last != want {
		return rollout.Event{}, false
	}
	delete(m.loaded, cn.UID)
	return rollout.Drift(cn, observed, want), true
}

// forget drops what is remembered of a Canary that is going away.
func (m *routeMemory) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.loaded, uid)
}
