package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Why a chosen backend cannot take a request. Gateway API answers an invalid backend with 500;
// a Service without a Ready pod is unavailable, 503.
var (
	errBackendNotFound = errors.New("backend not found")
	errNoReadyPod      = errors.New("no ready pod")
)

// endpoint is the pod a request goes to.
type endpoint struct {
	addr string // ip:port
	pod  types.NamespacedName
	// workload is the pod's Deployment (or other owner), as Istio reports it.
	workload string
}

// resolver finds a Ready pod of a Service in the cache, spreading requests round-robin.
type resolver struct {
	reader client.Reader

	mu   sync.Mutex
	next map[types.NamespacedName]uint64
}

func newResolver(reader client.Reader) *resolver {
	return &resolver{reader: reader, next: map[types.NamespacedName]uint64{}}
}

// resolve finds the pod for one request to b. The error wraps errBackendNotFound or
// errNoReadyPod.
func (r *resolver) resolve(ctx context.Context, b backendRef) (endpoint, error) {
	if b.invalid {
		return endpoint{}, fmt.Errorf("%w: %s is not a Service", errBackendNotFound, b)
	}
	svc := &corev1.Service{}
	if err := r.reader.Get(ctx, b.service, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return endpoint{}, fmt.Errorf("%w: Service %s does not exist", errBackendNotFound, b)
		}
		return endpoint{}, fmt.Errorf("reading Service %s: %w", b, err)
	}
	port, ok := servicePort(svc, b.port)
	if !ok {
		return endpoint{}, fmt.Errorf("%w: Service %s has no port %d", errBackendNotFound, b, b.port)
	}
	if len(svc.Spec.Selector) == 0 {
		return endpoint{}, fmt.Errorf("%w: Service %s selects no pods", errNoReadyPod, b)
	}
	pods := &corev1.PodList{}
	if err := r.reader.List(ctx, pods, client.InNamespace(b.service.Namespace),
		client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(svc.Spec.Selector)},
		client.UnsafeDisableDeepCopy); err != nil {
		return endpoint{}, fmt.Errorf("listing the pods of Service %s: %w", b, err)
	}
	var ready []endpoint
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !podReady(pod) {
			continue
		}
		target, ok := targetPort(port, pod)
		if !ok {
			continue
		}
		ready = append(ready, endpoint{
			addr:     net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(target))),
			pod:      types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name},
			workload: workloadOf(pod),
		})
	}
	if len(ready) == 0 {
		return endpoint{}, fmt.Errorf("%w: Service %s has no Ready pod", errNoReadyPod, b)
	}
	// The cache lists in no particular order; sorting makes the rotation fair.
	slices.SortFunc(ready, func(a, b endpoint) int { return strings.Compare(a.pod.Name, b.pod.Name) })
	r.mu.Lock()
	n := r.next[b.service]
	r.next[b.service] = n + 1
	r.mu.Unlock()
	return ready[n%uint64(len(ready))], nil
}

// servicePort finds the Service port a backendRef names; a reference without a port takes the
// Service's only port.
func servicePort(svc *corev1.Service, port int32) (corev1.ServicePort, bool) {
	if port == 0 && len(svc.Spec.Ports) == 1 {
		return svc.Spec.Ports[0], true
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

// targetPort is the pod port a Service port sends to: a number, a container port's name, or
// when unset the Service port itself. ok is false when the pod has no port of that name.
func targetPort(port corev1.ServicePort, pod *corev1.Pod) (int32, bool) {
	switch {
	case port.TargetPort.Type == intstr.String && port.TargetPort.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == port.TargetPort.StrVal {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case port.TargetPort.Type == intstr.Int && port.TargetPort.IntVal != 0:
		return port.TargetPort.IntVal, true
	default:
		return port.Port, true
	}
}

// podReady is what the EndpointSlice controller would call a ready endpoint: an address, the
// Ready condition, and not on its way out.
func podReady(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// workloadOf names a pod's workload the way Istio does: the Deployment for a pod of a
// ReplicaSet (its name without the pod-template hash), another controlling owner's name, the
// app label, or the pod's own name.
func workloadOf(pod *corev1.Pod) string {
	owner := metav1.GetControllerOfNoCopy(pod)
	for i := range pod.OwnerReferences {
		if owner == nil && pod.OwnerReferences[i].Kind == "ReplicaSet" {
			owner = &pod.OwnerReferences[i]
		}
	}
	if owner != nil {
		if i := strings.LastIndexByte(owner.Name, '-'); owner.Kind == "ReplicaSet" && i > 0 {
			return owner.Name[:i]
		}
		return owner.Name
	}
	if app := pod.Labels["app"]; app != "" {
		return app
	}
	return pod.Name
}

// pick chooses one of the backends at random in proportion to their weights, calling rnd (in
// [0, 1)) only when there is a choice to make. It returns -1 when every weight is zero.
func pick(backends []backendRef, rnd func() float64) int {
	var total int64
	last, nonZero := -1, 0
	for i, b := range backends {
		if b.weight > 0 {
			total += int64(b.weight)
			last = i
			nonZero++
		}
	}
	if nonZero <= 1 {
		return last
	}
	x := rnd() * float64(total)
	var sum int64
	for i, b := range backends {
		if b.weight <= 0 {
			continue
		}
		sum += int64(b.weight)
		if x < float64(sum) {
			return i
		}
	}
	return last // only when rnd returned 1 or more
}
