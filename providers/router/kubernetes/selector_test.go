package kubernetes

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestSharedLabels(t *testing.T) {
	deployment := func(selector map[string]string, expr []metav1.LabelSelectorRequirement, labels map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector, MatchExpressions: expr},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}},
		}}
	}
	for _, tt := range []struct {
		name            string
		target, primary *appsv1.Deployment
		want            map[string]string
	}{{
		name:    "labels alike on both templates",
		target:  deployment(map[string]string{"app": "podinfo"}, nil, map[string]string{"app": "podinfo", "app.kubernetes.io/name": "podinfo", "tier": "web"}),
		primary: deployment(map[string]string{"app": "podinfo-primary"}, nil, map[string]string{"app": "podinfo-primary", "app.kubernetes.io/name": "podinfo", "tier": "web"}),
		want:    map[string]string{"app.kubernetes.io/name": "podinfo", "tier": "web"},
	}, {
		name:    "a label with different values selects one side only",
		target:  deployment(map[string]string{"app": "podinfo"}, nil, map[string]string{"app": "podinfo", "version": "v2", "tier": "web"}),
		primary: deployment(map[string]string{"app": "podinfo-primary"}, nil, map[string]string{"app": "podinfo-primary", "version": "v1", "tier": "web"}),
		want:    map[string]string{"tier": "web"},
	}, {
		name:    "a key of either selector is left out even with equal values",
		target:  deployment(map[string]string{"app": "podinfo"}, nil, map[string]string{"app": "podinfo", "team": "a", "tier": "web"}),
		primary: deployment(map[string]string{"team": "a"}, nil, map[string]string{"app": "podinfo", "team": "a", "tier": "web"}),
		want:    map[string]string{"tier": "web"},
	}, {
		name:    "a key of a matchExpression is left out",
		target:  deployment(map[string]string{"app": "podinfo"}, []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}, map[string]string{"app": "podinfo", "tier": "web"}),
		primary: deployment(map[string]string{"app": "podinfo-primary"}, nil, map[string]string{"app": "podinfo-primary", "tier": "web"}),
		want:    map[string]string{},
	}, {
		name:    "only the selector's labels",
		target:  deployment(map[string]string{"app": "podinfo"}, nil, map[string]string{"app": "podinfo"}),
		primary: deployment(map[string]string{"app": "podinfo-primary"}, nil, map[string]string{"app": "podinfo-primary"}),
		want:    map[string]string{},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sharedLabels(tt.target, tt.primary))
		})
	}
}

func TestRolloutPending(t *testing.T) {
	deployment := func(replicas *int32, generation int64, status appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "podinfo", Generation: generation},
			Spec:       appsv1.DeploymentSpec{Replicas: replicas},
			Status:     status,
		}
	}
	for _, tt := range []struct {
		name string
		dep  *appsv1.Deployment
		want string
	}{
		{"generation not observed", deployment(ptr.To[int32](3), 2, appsv1.DeploymentStatus{ObservedGeneration: 1, UpdatedReplicas: 3, AvailableReplicas: 3}),
			"Deployment ns/podinfo has not observed generation 2 yet"},
		{"replicas not updated", deployment(ptr.To[int32](3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, AvailableReplicas: 3}),
			"Deployment ns/podinfo has 1 of 3 replicas updated"},
		{"replicas not available", deployment(ptr.To[int32](3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 3, AvailableReplicas: 1}),
			"Deployment ns/podinfo has 1 of 3 replicas available"},
		{"scaling down", deployment(ptr.To[int32](1), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, AvailableReplicas: 3}),
			"Deployment ns/podinfo has 3 of 1 replicas available"},
		{"rolled out", deployment(ptr.To[int32](3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 3, AvailableReplicas: 3}), ""},
		{"replicas default to 1", deployment(nil, 1, appsv1.DeploymentStatus{ObservedGeneration: 1}),
			"Deployment ns/podinfo has 0 of 1 replicas updated"},
		{"scaled to zero", deployment(ptr.To[int32](0), 3, appsv1.DeploymentStatus{ObservedGeneration: 3}), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, rolloutPending(tt.dep))
		})
	}
}
