package kubernetes

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

const (
	// managedByLabel marks the Services trafficctl writes, so people and tools can tell them
	// apart from their own.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = "trafficctl"
)

// Router points a Canary's apex Service at the primary's pods, the canary's, or both. It holds
// no state of its own: the Service's selector is the routing.
type Router struct {
	client       client.Client
	fieldManager string
}

// New returns a Router that reads Deployments and writes Services through c under fieldManager,
// the server-side apply manager that owns trafficctl's fields (such as "trafficctl").
func New(c client.Client, fieldManager string) *Router {
	return &Router{client: c, fieldManager: fieldManager}
}

// Apply points the apex Service at the pods rt asks for. In a blue/green rollout rt's weights
// must put all traffic on one side, whose Deployment's selector the Service takes. For a weighted
// canary the Service selects the pods of both Deployments and the weights are left to the
// replica counts the controller sets, so Apply ignores them. A Service that already selects the
// right pods is not written again.
func (r *Router) Apply(ctx context.Context, cn *v1alpha1.Canary, rt rollout.Routing) error {
	d, err := r.deployments(ctx, cn)
	if err != nil {
		return err
	}
	live, err := r.getService(ctx, cn)
	if err != nil {
		return err
	}
	svc, err := Build(cn, rt, d.target, d.primary, live)
	if err != nil {
		return err
	}
	if UpToDate(live, cn, svc.Spec.Selector) {
		return nil
	}
	if err := r.client.Apply(ctx, svc, client.ForceOwnership, client.FieldOwner(r.fieldManager)); err != nil {
		return fmt.Errorf("applying service %s/%s: %w", cn.Namespace, cn.ApexServiceName(), err)
	}
	return nil
}

// Observe reads back which pods the apex Service selects and whether they are all there. In a
// blue/green rollout the weights say which Deployment the selector picks; for a weighted canary
// they are the canary's share of the available pods behind the Service. Either way the routing
// is Accepted only once the selected Deployments have rolled out, since until then the pods do
// not carry the traffic the weights claim.
func (r *Router) Observe(ctx context.Context, cn *v1alpha1.Canary) (rollout.State, error) {
	svc, err := r.getService(ctx, cn)
	if err != nil || svc == nil {
		return rollout.State{}, err
	}
	d, err := r.deployments(ctx, cn)
	if err != nil {
		return rollout.State{}, err
	}
	if blueGreen(cn) {
		return d.observeBlueGreen(svc), nil
	}
	return d.observeRatio(cn, svc)
}

// Release has nothing to undo: a Service trafficctl created goes with its Canary through the
// owner reference, and an adopted one keeps selecting the primary, which serves the promoted
// revision.
func (r *Router) Release(context.Context, *v1alpha1.Canary) error { return nil }

// blueGreen reports whether the Canary switches all traffic at once rather than running a
// weighted canary.
func blueGreen(cn *v1alpha1.Canary) bool { return cn.Spec.Analysis.Iterations != nil }

// deployments reads the target and the primary, whose selectors and pod templates decide what
// the Service selects.
func (r *Router) deployments(ctx context.Context, cn *v1alpha1.Canary) (pair, error) {
	target, err := r.getDeployment(ctx, cn.Namespace, cn.Spec.TargetRef.Name)
	if err != nil {
		return pair{}, err
	}
	primary, err := r.getDeployment(ctx, cn.Namespace, cn.PrimaryDeploymentName())
	if err != nil {
		return pair{}, err
	}
	return pair{target: target, primary: primary}, nil
}

func (r *Router) getDeployment(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
		return nil, fmt.Errorf("reading deployment %s/%s: %w", namespace, name, err)
	}
	return d, nil
}

// getService returns the apex Service, or nil when it does not exist.
func (r *Router) getService(ctx context.Context, cn *v1alpha1.Canary) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.ApexServiceName()}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading service %s/%s: %w", cn.Namespace, cn.ApexServiceName(), err)
	}
	return svc, nil
}

// HandBack has nothing to do: the apex Service, this router's route, is handed back by the
// controller like every provider's.
func (r *Router) HandBack(context.Context, *v1alpha1.Canary) error { return nil }

// HandedBack is always true: see HandBack.
func (r *Router) HandedBack(context.Context, *v1alpha1.Canary) (bool, string, error) {
	return true, "", nil
}

// Objects is empty: the apex Service is the controller's to hand back or orphan.
func (r *Router) Objects(*v1alpha1.Canary) []client.Object { return nil }
