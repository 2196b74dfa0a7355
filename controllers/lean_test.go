package controllers

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestLeanObjectDropsOnlyWhatIsNeverRead(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Annotations:   map[string]string{lastApplied: `{"kind":"Deployment"}`, AnnotationReplicas: "3"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	_, err := leanObject(d)
	require.NoError(t, err)
	assert.Empty(t, d.ManagedFields)
	assert.Equal(t, map[string]string{AnnotationReplicas: "3"}, d.Annotations, "every other annotation stays")

	route := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{lastApplied: "{}"}, "managedFields": []any{map[string]any{"manager": "kubectl"}},
	}}}
	_, err = leanObject(route)
	require.NoError(t, err)
	assert.Empty(t, route.GetManagedFields())
	assert.Empty(t, route.GetAnnotations())
}
