package kubernetes

import (
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Build is the apex Service that carries routing for cn, as Apply writes it and `trafficctl plan`
// prints it: its selector picks the primary's pods or the target's (blue/green), or both (a
// replica-ratio canary, whose weights the replica counts make). target and primary are the two
// Deployments as they stand; live is the apex Service as it stands, nil when it does not exist yet.
// Build reads and writes nothing: a routing no selector can carry is an error, and one the
// Deployments' labels cannot carry a router.InvalidRouteError.
func Build(cn *v1alpha1.Canary, routing rollout.Routing, target, primary *appsv1.Deployment, live *corev1.Service) (*corev1ac.ServiceApplyConfiguration, error) {
	if routing.Cohort || routing.Mirror != 0 || routing.Sticky != "" {
		return nil, fmt.Errorf("provider kubernetes only chooses the pods Service %s/%s selects and cannot route %s", cn.Namespace, cn.ApexServiceName(), routing)
	}
	d := pair{target: target, primary: primary}
	var selector map[string]string
	var err error
	if blueGreen(cn) {
		selector, err = d.blueGreenSelector(cn, routing.Weights)
	} else {
		selector, err = d.ratioSelector(cn)
	}
	if err != nil {
		return nil, err
	}
	return Service(cn, cn.ApexServiceName(), selector, Adopted(cn, live)), nil
}

// Service is a Service of cn's as trafficctl applies it: labelled as trafficctl's, serving the
// Canary's port, selecting selector, and, unless it is adopted (it existed before the Canary),
// controlled by the Canary so that it goes with it. The apex Service of provider kubernetes and
// the primary and canary Services of every provider take this form.
func Service(cn *v1alpha1.Canary, name string, selector map[string]string, adopted bool) *corev1ac.ServiceApplyConfiguration {
	svc := corev1ac.Service(name, cn.Namespace).
		WithLabels(map[string]string{managedByLabel: managedByValue}).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(selector).
			WithPorts(corev1ac.ServicePort().
				WithName(cn.ServicePortName()).
				WithProtocol(corev1.ProtocolTCP).
				WithPort(cn.Spec.Service.Port).
				WithTargetPort(cn.ServiceTargetPort())))
	if !adopted {
		svc.WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(v1alpha1.GroupVersion.String()).
			WithKind("Canary").
			WithName(cn.Name).
			WithUID(cn.UID).
			WithController(true).
			WithBlockOwnerDeletion(true))
	}
	return svc
}

// Adopted reports whether live, a Service of one of cn's names, existed before the Canary: it is
// then adopted but never owned, so deleting the Canary never deletes it.
func Adopted(cn *v1alpha1.Canary, live *corev1.Service) bool {
	return live != nil && !metav1.IsControlledBy(live, cn)
}

// UpToDate reports whether live already carries everything Service would apply with selector, so
// an unchanged Service is not written again.
func UpToDate(live *corev1.Service, cn *v1alpha1.Canary, selector map[string]string) bool {
	if live == nil || !maps.Equal(live.Spec.Selector, selector) || live.Labels[managedByLabel] != managedByValue {
		return false
	}
	for _, p := range live.Spec.Ports {
		if p.Name == cn.ServicePortName() && p.Port == cn.Spec.Service.Port &&
			p.TargetPort == cn.ServiceTargetPort() && p.Protocol == corev1.ProtocolTCP {
			return true
		}
	}
	return false
}

// HandedBackService is the apex Service as a Canary's deletion leaves it: selecting the target's
// own pods (selector, its spec.selector.matchLabels), neither owned by the Canary nor labelled as
// trafficctl's, so it outlives the Canary as the user's.
func HandedBackService(cn *v1alpha1.Canary, selector map[string]string) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(cn.ApexServiceName(), cn.Namespace).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(selector).
			WithPorts(corev1ac.ServicePort().
				WithName(cn.ServicePortName()).
				WithProtocol(corev1.ProtocolTCP).
				WithPort(cn.Spec.Service.Port).
				WithTargetPort(cn.ServiceTargetPort())))
}

// HandedBack reports whether live, the apex Service, is as HandedBackService leaves it.
func HandedBack(live *corev1.Service, cn *v1alpha1.Canary, selector map[string]string) bool {
	return live != nil && maps.Equal(live.Spec.Selector, selector) && !metav1.IsControlledBy(live, cn) &&
		live.Labels[managedByLabel] != managedByValue
}
