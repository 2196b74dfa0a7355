package router

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Applied remembers what a router last wrote to each object it applies whole, so that a
// reconcile that would apply the same object again writes nothing. An object counts as carrying
// what was applied while nobody changed its spec since (its generation is not past the one the
// apply left), it is the same object (uid), and it still has the labels and owners applied.
// After a restart nothing is remembered, and each object is applied once more.
//
// The zero Applied is ready to use, and safe for concurrent use.
type Applied struct {
	mu   sync.Mutex
	last map[appliedKey]appliedAs
}

type appliedKey struct {
	kind, namespace, name string
}

type appliedAs struct {
	uid        types.UID
	generation int64
	hash       [sha256.Size]byte
}

// Apply writes want with server-side apply under fieldManager, taking over any field another
// manager holds, unless live (the object as cached, nil when there is none) already carries it.
// It returns the object as the apiserver stored it, or nil when it wrote nothing.
func (a *Applied) Apply(ctx context.Context, c client.Client, fieldManager string, want *unstructured.Unstructured, live client.Object) (*unstructured.Unstructured, error) {
	sum, err := hashOf(want)
	if err != nil {
		return nil, err
	}
	key := appliedKey{want.GetKind(), want.GetNamespace(), want.GetName()}
	if a.carries(key, sum, want, live) {
		return nil, nil
	}
	// The apiserver's answer replaces the object sent: keep want as it was asked for.
	sent := want.DeepCopy()
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(sent), client.ForceOwnership, client.FieldOwner(fieldManager)); err != nil {
		return nil, fmt.Errorf("apply %s %s/%s: %w", want.GetKind(), want.GetNamespace(), want.GetName(), err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last = map[appliedKey]appliedAs{}
	}
	a.last[key] = appliedAs{uid: sent.GetUID(), generation: sent.GetGeneration(), hash: sum}
	return sent, nil
}

// carries reports whether live is the object last applied as want, unchanged since. A cache
// that has not yet caught up with the apply shows an older generation, which counts as carrying
// it: the write it has not seen yet is want.
func (a *Applied) carries(key appliedKey, sum [sha256.Size]byte, want *unstructured.Unstructured, live client.Object) bool {
	if live == nil || live.GetUID() == "" {
		return false
	}
	a.mu.Lock()
	got, ok := a.last[key]
	a.mu.Unlock()
	if !ok || got.uid != live.GetUID() || got.hash != sum || live.GetGeneration() > got.generation {
		return false
	}
	// Labels and owners change without a new generation.
	have := live.GetLabels()
	for k, v := range want.GetLabels() {
		if have[k] != v {
			return false
		}
	}
	for _, o := range want.GetOwnerReferences() {
		found := false
		for _, h := range live.GetOwnerReferences() {
			if h.UID == o.UID && h.Kind == o.Kind && h.Name == o.Name {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// hashOf is the hash of an object as it would be sent; encoding/json writes map keys in order,
// so equal objects hash alike.
func hashOf(obj *unstructured.Unstructured) ([sha256.Size]byte, error) {
	b, err := json.Marshal(obj.Object)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("hash %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return sha256.Sum256(b), nil
}
