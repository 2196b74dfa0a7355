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

	// SecretRef names a Secret in the MetricTemplate's namespace with the provider's credentials:
	// key token (a bearer token), or keys username and password (basic auth); and optionally key
	// ca.crt, the PEM certificate authority that signed the provider's certificate. Its values
	// never appear in status, events or logs.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// InsecureSkipVerify accepts any certificate from the provider. Meant for trials only: every
	// check that uses it records a warning event.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`

	// Headers are added to every query, such as X-Scope-OrgID for a multi-tenant Mimir or
	// Cortex. Put credentials in secretRef, not here: header values are shown in the object.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Headers []HTTPHeader `json:"headers,omitempty"`

	// Timeout of each query, such as 10s; the controller's --query-timeout when unset.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="provider.timeout must be a positive duration such as 10s"
	// +optional
	Timeout string `json:"timeout,omitempty"`
}

// HTTPHeader is one request header.
type HTTPHeader struct {
	// Name of the header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`
	// Value of the header.
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}
