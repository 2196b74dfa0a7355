package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// HTTPRouteTo is the HTTPRoute a user writes on the harness Gateway to send every request for
// host to Service service. With provider kubernetes, which writes no route, it is how users
// reach the apex Service; the data plane resolves the Service to the Ready pods its selector
// picks, as kube-proxy would.
func HTTPRouteTo(name, host, service string, port int32) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Name: GatewayName, Namespace: ptr.To(gatewayv1.Namespace(GatewayNamespace)),
			}}},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules: []gatewayv1.HTTPRouteRule{{
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{
						Name: gatewayv1.ObjectName(service), Port: ptr.To(gatewayv1.PortNumber(port)),
					},
				}}},
			}},
		},
	}
}

// WaitRoutesLoaded waits until the data plane has loaded the current generation of every
// HTTPRoute and VirtualService of the app's namespace, as it reports in their status. A test
// that saw a route change then knows the requests it sends from now on take the new rules.
func (a *App) WaitRoutesLoaded(ctx context.Context, timeout time.Duration) error {
	var pending string
	err := eventually(ctx, timeout, func() (bool, error) {
		var err error
		pending, err = a.routesPending(ctx)
		return err == nil && pending == "", err
	})
	if err != nil {
		return fmt.Errorf("waiting %s for the data plane to load the routes: %w; %s", timeout, err, pending)
	}
	return nil
}

// routesPending names a route whose current generation the data plane has not reported yet, or
// returns "" when it has reported them all.
func (a *App) routesPending(ctx context.Context) (string, error) {
	routes := &gatewayv1.HTTPRouteList{}
	if err := a.c.List(ctx, routes, client.InNamespace(a.Namespace)); err != nil {
		return "", err
	}
	for _, r := range routes.Items {
		loaded := false
		for _, p := range r.Status.Parents {
			if string(p.ParentRef.Name) != GatewayName {
				continue
			}
			loaded = len(p.Conditions) > 0
			for _, c := range p.Conditions {
				loaded = loaded && c.ObservedGeneration == r.Generation
			}
		}
		if !loaded {
			return fmt.Sprintf("HTTPRoute %s generation %d is not loaded yet", r.Name, r.Generation), nil
		}
	}
	services := &istionetv1.VirtualServiceList{}
	if err := a.c.List(ctx, services, client.InNamespace(a.Namespace)); err != nil {
		return "", err
	}
	for _, vs := range services.Items {
		if vs.Status.ObservedGeneration != vs.Generation {
			return fmt.Sprintf("VirtualService %s generation %d is not loaded yet", vs.Name, vs.Generation), nil
		}
	}
	return "", nil
}

// RoutesYAML renders the app's HTTPRoutes and VirtualServices as they stand, for a failure's
// evidence.
func (a *App) RoutesYAML(ctx context.Context) string {
	var b strings.Builder
	for _, list := range []client.ObjectList{&gatewayv1.HTTPRouteList{}, &istionetv1.VirtualServiceList{}} {
		if err := a.c.List(ctx, list, client.InNamespace(a.Namespace)); err != nil {
			fmt.Fprintf(&b, "listing %T: %v\n", list, err)
			continue
		}
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			obj := o.(client.Object)
			obj.SetManagedFields(nil)
			out, err := yaml.Marshal(obj)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "---\n%s", out)
			return nil
		})
	}
	return b.String()
}
