package controllers

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/rollout"
)

// TestRouteMemoryTellsDriftFromCacheLag: a route read from a cache that has not caught up with
// trafficctl's own write is no drift; a route that had carried the plan and no longer does is,
// told once, and again after it was put back and changed again.
func TestRouteMemoryTellsDriftFromCacheLag(t *testing.T) {
	cn := gen.Canary("shop")
	cn.UID = types.UID("uid-1")
	at := func(canary int32) rollout.State {
		return rollout.State{Found: true, Accepted: true, Routing: rollout.Routing{Weights: rollout.ForCanary(canary)}}
	}
	var m routeMemory
	step1, step2 := rollout.Routing{Weights: rollout.ForCanary(10)}, rollout.Routing{Weights: rollout.ForCanary(20)}

	_, drift := m.drift(cn, at(0), step1)
	assert.False(t, drift, "the plan moved the route to 10%; the cache still shows 0%")
	_, drift = m.drift(cn, at(10), step1)
	assert.False(t, drift, "the route carries the plan")
	_, drift = m.drift(cn, at(10), step2)
	assert.False(t, drift, "the plan moved on to 20%; the cache still shows 10%")
	_, drift = m.drift(cn, at(20), step2)
	assert.False(t, drift)

	e, drift := m.drift(cn, at(50), step2)
	assert.True(t, drift, "the route carried 20% and now carries 50%")
	assert.Equal(t, rollout.ReasonRouteDrift, e.Reason)
	assert.Contains(t, e.Message, "HTTPRoute shop/podinfo was changed outside trafficctl: it carried primary 50% / canary 50% instead of primary 80% / canary 20%")
	_, drift = m.drift(cn, at(50), step2)
	assert.False(t, drift, "told once, while the write that puts it back is on its way")

	_, _ = m.drift(cn, at(20), step2)
	e, drift = m.drift(cn, rollout.State{}, step2)
	assert.True(t, drift, "a route deleted by hand")
	assert.Contains(t, e.Message, "it was deleted, and is made again carrying primary 80% / canary 20%")

	ratio := cn.DeepCopy()
	ratio.Spec.Provider = v1alpha1.ProviderKubernetes
	_, _ = m.drift(ratio, at(20), step2)
	_, drift = m.drift(ratio, at(18), step2)
	assert.False(t, drift, "a Service's share is the pods available, which lag")
}
