package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	istiometa "istio.io/api/meta/v1alpha1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Istio's condition for configuration its proxies have loaded, and the values the data plane
// gives it.
const (
	conditionReconciled = "Reconciled"
	// reasonUnsupportedValue says why the data plane cannot serve a VirtualService; Istio's
	// webhook would have rejected it.
	reasonUnsupportedValue = "UnsupportedValue"
	// messageReconciled is what Istio writes once its only proxy is up to date.
	messageReconciled = "1/1 proxies up to date."
)

// desiredIstioStatus is current with what the data plane reports about the generation of a
// VirtualService that the routing table loaded, v: status.observedGeneration and a Reconciled
// condition, True unless v cannot be served. changed is false when current says so already.
// Other conditions and the validation messages stay; the condition keeps its
// lastTransitionTime while its status stays the same.
func desiredIstioStatus(current *istiometa.IstioStatus, v *virtualService, gw gatewayRef, now time.Time) (_ *istiometa.IstioStatus, changed bool) {
	want := &istiometa.IstioCondition{
		Type: conditionReconciled, Status: "True", Message: messageReconciled, ObservedGeneration: v.generation,
	}
	if v.err != nil {
		want.Status, want.Reason = "False", reasonUnsupportedValue
		want.Message = fmt.Sprintf("Gateway %s cannot serve the VirtualService: %v.", gw, v.err)
	}
	i := slices.IndexFunc(current.Conditions, func(c *istiometa.IstioCondition) bool {
		return c != nil && c.Type == conditionReconciled
	})
	var have *istiometa.IstioCondition
	if i >= 0 {
		have = current.Conditions[i]
	}
	if current.ObservedGeneration == v.generation && have != nil && have.Status == want.Status &&
		have.Reason == want.Reason && have.Message == want.Message && have.ObservedGeneration == want.ObservedGeneration {
		return current, false
	}
	want.LastProbeTime, want.LastTransitionTime = timestamppb.New(now), timestamppb.New(now)
	if have != nil && have.Status == want.Status && have.LastTransitionTime != nil {
		want.LastTransitionTime = have.LastTransitionTime
	}
	next := current.DeepCopy()
	next.ObservedGeneration = v.generation
	if i >= 0 {
		next.Conditions[i] = want
	} else {
		next.Conditions = append(next.Conditions, want)
	}
	return next, true
}

// reportIstioStatus brings the status of a served VirtualService up to date with the routing
// table's v, which was built from cached. As for HTTPRoutes, only the generation the table
// loaded is reported. The write is a merge patch of the status subresource, read fresh, with
// the resourceVersion as a precondition, retried on conflicts; the status is encoded as Istio
// encodes it, observedGeneration a string.
func (d *DataPlane) reportIstioStatus(ctx context.Context, cached *istionetv1.VirtualService, v *virtualService) error {
	if _, changed := desiredIstioStatus(&cached.Status, v, d.istioGateway, time.Now()); !changed {
		return nil
	}
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		live := &istionetv1.VirtualService{}
		if err := d.apiReader.Get(ctx, key, live); err != nil {
			return client.IgnoreNotFound(err)
		}
		if live.Generation != v.generation || live.UID != cached.UID {
			return nil
		}
		next, changed := desiredIstioStatus(&live.Status, v, d.istioGateway, time.Now())
		if !changed {
			return nil
		}
		status, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encoding the status: %w", err)
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": live.ResourceVersion},
			"status":   json.RawMessage(status),
		})
		if err != nil {
			return fmt.Errorf("encoding the status patch: %w", err)
		}
		if err := d.client.Status().Patch(ctx, live, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return err
		}
		d.log.V(1).Info("reported VirtualService status", "virtualService", key, "generation", v.generation)
		return nil
	})
}
