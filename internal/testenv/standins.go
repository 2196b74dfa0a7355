package testenv

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayController is how the stand-in Gateway controller signs the route status it writes.
const GatewayController = "example.com/test-gateway"

// StandIns plays, for one namespace, the parts envtest lacks: the Deployment controller and
// kubelet (every Deployment's replicas become available, unless Broken says otherwise) and a
// Gateway controller (every HTTPRoute is accepted, unless HoldRoutes says to wait).
type StandIns struct {
	Client    client.Client
	Namespace string
	// Broken reports a Deployment whose pods never become available, like crashing ones.
	Broken func(deployment string) bool
	// HoldRoutes keeps route changes from being accepted while it returns true.
	HoldRoutes func() bool
}

// Run plays the stand-ins every 100ms until ctx ends.
func (s StandIns) Run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.SettleDeployments(ctx)
			s.AcceptRoutes(ctx)
		}
	}
}

// SettleDeployments gives every Deployment of the namespace the status a rolled-out one has.
func (s StandIns) SettleDeployments(ctx context.Context) {
	var list appsv1.DeploymentList
	if err := s.Client.List(ctx, &list, client.InNamespace(s.Namespace)); err != nil {
		return
	}
	for i := range list.Items {
		d := &list.Items[i]
		replicas := ptr.Deref(d.Spec.Replicas, 1)
		available := replicas
		if s.Broken != nil && s.Broken(d.Name) {
			available = 0
		}
		want := appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: replicas, UpdatedReplicas: replicas,
			ReadyReplicas: available, AvailableReplicas: available, UnavailableReplicas: replicas - available,
		}
		if equality.Semantic.DeepEqual(d.Status, want) {
			continue
		}
		d.Status = want
		_ = s.Client.Status().Update(ctx, d)
	}
}

// AcceptRoutes marks every HTTPRoute of the namespace accepted by each of its parents.
func (s StandIns) AcceptRoutes(ctx context.Context) {
	if s.HoldRoutes != nil && s.HoldRoutes() {
		return
	}
	var list gatewayv1.HTTPRouteList
	if err := s.Client.List(ctx, &list, client.InNamespace(s.Namespace)); err != nil {
		return
	}
	for i := range list.Items {
		r := &list.Items[i]
		parents := make([]gatewayv1.RouteParentStatus, 0, len(r.Spec.ParentRefs))
		for _, ref := range r.Spec.ParentRefs {
			parents = append(parents, gatewayv1.RouteParentStatus{
				ParentRef: ref, ControllerName: GatewayController,
				Conditions: []metav1.Condition{{
					Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: "Accepted",
					ObservedGeneration: r.Generation, LastTransitionTime: metav1.Now(),
				}},
			})
		}
		if len(r.Status.Parents) == len(parents) && len(parents) > 0 && r.Status.Parents[0].Conditions[0].ObservedGeneration == r.Generation {
			continue
		}
		r.Status.Parents = parents
		_ = s.Client.Status().Update(ctx, r)
	}
}
