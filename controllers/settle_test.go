package controllers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestApexSettling(t *testing.T) {
	now := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	apex := func(annotations map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}}
	}
	at := func(d time.Duration) map[string]string {
		return map[string]string{AnnotationApexHandedBackAt: now.Add(-d).Format(time.RFC3339Nano)}
	}
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want time.Duration
	}{
		{"just handed back", apex(at(0)), apexSettle},
		{"a second ago", apex(at(time.Second)), apexSettle - time.Second},
		{"settled", apex(at(apexSettle)), 0},
		{"long ago", apex(at(time.Hour)), 0},
		{"handed back by an earlier version", apex(nil), 0},
		{"unreadable", apex(map[string]string{AnnotationApexHandedBackAt: "soon"}), 0},
		{"no apex Service", nil, 0},
	} {
		if got := apexSettling(tc.svc, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
