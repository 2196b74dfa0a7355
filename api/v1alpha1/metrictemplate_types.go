package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricProviderType names the system a MetricTemplate's query is sent to.
// +kubebuilder:validation:Enum=prometheus
type MetricProviderType string

const (
	// MetricProviderPrometheus sends the query to the Prometheus HTTP API.
	MetricProviderPrometheus MetricProviderType = "prometheus"
)

// MetricTemplate is a named query that Canaries reference from analysis.metrics[].templateRef,
// so one team writes the PromQL and many Canaries use it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=mt,categories=trafficctl
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MetricTemplateSpec `json:"spec"`
}

// MetricTemplateSpec is the provider and the query.
type MetricTemplateSpec struct {
	// Provider the query is sent to.
	Provider MetricProvider `json:"provider"`

	// Query is a Go template rendered before every check. It may use {{ .Name }} (the
	// Canary's), {{ .Namespace }}, {{ .Target }} (the target Deployment), {{ .Service }},
	// {{ .Primary }}, {{ .Canary }} and {{ .Interval }} (the window, such as 30s).
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
}

// MetricProvider says where a query goes.
type MetricProvider struct {
	// Type of the provider.
	// +kubebuilder:default=prometheus
	// +optional
	Type MetricProviderType `json:"type,omitempty"`

	// Address of the provider's API, such as http://prometheus.monitoring:9090; defaults to
	// the controller's --prometheus-address.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Address string `json:"address,omitempty"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}
