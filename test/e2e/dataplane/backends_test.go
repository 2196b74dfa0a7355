package dataplane

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestPick(t *testing.T) {
	weighted := func(weights ...int32) []backendRef {
		var bs []backendRef
		for _, w := range weights {
			bs = append(bs, backendRef{weight: w})
		}
		return bs
	}
	tests := []struct {
		name     string
		backends []backendRef
		rnd      float64
		want     int
		draws    int
	}{
		{name: "no backends", want: -1},
		{name: "all zero", backends: weighted(0, 0), want: -1},
		{name: "one backend, no draw", backends: weighted(1), want: 0},
		{name: "one with weight, no draw", backends: weighted(0, 100, 0), want: 1},
		{name: "90/10 low", backends: weighted(90, 10), rnd: 0, want: 0, draws: 1},
		{name: "90/10 just below the edge", backends: weighted(90, 10), rnd: 0.8999, want: 0, draws: 1},
		{name: "90/10 at the edge", backends: weighted(90, 10), rnd: 0.9, want: 1, draws: 1},
		{name: "a zero weight in the middle is skipped", backends: weighted(50, 0, 50), rnd: 0.5, want: 2, draws: 1},
		{name: "a random number of 1 still picks a weighted backend", backends: weighted(50, 50, 0), rnd: 1, want: 1, draws: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			draws := 0
			got := pick(tt.backends, func() float64 { draws++; return tt.rnd })
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.draws, draws)
		})
	}
}

func TestWorkloadOf(t *testing.T) {
	owned := func(kind, name string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{Kind: kind, Name: name, Controller: ptr.To(controller)}
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{
			name: "a ReplicaSet's pod belongs to its Deployment",
			pod:  corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-primary-5d8f7c9b4-x7k2p", OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "podinfo-primary-5d8f7c9b4", true)}}},
			want: "podinfo-primary",
		},
		{
			name: "a ReplicaSet that is not the controller still counts",
			pod:  corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", OwnerReferences: []metav1.OwnerReference{owned("ReplicaSet", "podinfo-canary-77f9", false)}}},
			want: "podinfo-canary",
		},
		{
			name: "another controller is the workload itself",
			pod:  corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", OwnerReferences: []metav1.OwnerReference{owned("StatefulSet", "db", true)}}},
			want: "db",
		},
		{
			name: "the app label without an owner",
			pod:  corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "podinfo"}}},
			want: "podinfo",
		},
		{
			name: "the pod itself, lacking both",
			pod:  corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "loner"}},
			want: "loner",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, workloadOf(&tt.pod))
		})
	}
}

func TestTargetPort(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "sidecar", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000}}},
		{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}},
	}}}
	port := func(target intstr.IntOrString) corev1.ServicePort {
		return corev1.ServicePort{Port: 80, TargetPort: target}
	}
	tests := []struct {
		name   string
		port   corev1.ServicePort
		want   int32
		wantOK bool
	}{
		{name: "a number", port: port(intstr.FromInt32(8080)), want: 8080, wantOK: true},
		{name: "a name in any container", port: port(intstr.FromString("http")), want: 9898, wantOK: true},
		{name: "a name the pod lacks", port: port(intstr.FromString("grpc")), wantOK: false},
		{name: "unset is the Service port", port: corev1.ServicePort{Port: 80}, want: 80, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := targetPort(tt.port, pod)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPodReady(t *testing.T) {
	ready := func(mods ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "127.100.0.7",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		}}
		for _, m := range mods {
			m(p)
		}
		return p
	}
	assert.True(t, podReady(ready()))
	assert.False(t, podReady(ready(func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse })), "not Ready")
	assert.False(t, podReady(ready(func(p *corev1.Pod) { p.Status.Conditions = nil })), "no Ready condition")
	assert.False(t, podReady(ready(func(p *corev1.Pod) { p.Status.PodIP = "" })), "no address")
	assert.False(t, podReady(ready(func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) })), "being deleted")
	assert.False(t, podReady(ready(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })), "finished")
}
