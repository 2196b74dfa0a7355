package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version every trafficctl object is served under.
var GroupVersion = schema.GroupVersion{Group: "trafficctl.io", Version: "v1alpha1"}

var (
	// SchemeBuilder collects the functions that register this package's types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme registers the types so clients and the manager can encode and decode them.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Canary{}, &CanaryList{},
		&MetricTemplate{}, &MetricTemplateList{},
		&AlertProvider{}, &AlertProviderList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
