package gen

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// CanaryMod changes a Canary under construction.
type CanaryMod = func(*v1alpha1.Canary)

// Canary is Canary podinfo in namespace ns, rolling out Deployment podinfo on port 9898 through a
// Gateway API route trafficctl owns (parent infra/public-gw, host podinfo.example.com) in two
// steps, 10% and 50%, then changed by mods in order.
func Canary(ns string, mods ...CanaryMod) *v1alpha1.Canary {
	cn := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetReference{Name: "podinfo"},
			Service: v1alpha1.CanaryService{
				Port:       9898,
				ParentRefs: []v1alpha1.ParentReference{{Name: "public-gw", Namespace: ptr.To("infra")}},
				Hostnames:  []string{"podinfo.example.com"},
			},
			Analysis: v1alpha1.CanaryAnalysis{StepWeights: []int32{10, 50}},
		},
	}
	for _, m := range mods {
		m(cn)
	}
	return cn
}

// Analysed gives the Canary the analysis most tests run: every interval, a success-rate check of
// at least 99%, two failed checks rolling back, and a progress deadline of 60s.
func Analysed(interval string) CanaryMod {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.ProgressDeadlineSeconds = ptr.To[int32](60)
		cn.Spec.Analysis.Interval = interval
		cn.Spec.Analysis.Threshold = 2
		cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(99.0)}}}
	}
}

// Provider sets the provider. Istio and kubernetes have no Gateway API parents or hostnames.
func Provider(p v1alpha1.Provider) CanaryMod {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Provider = p
		if p != v1alpha1.ProviderGatewayAPI {
			cn.Spec.Service.ParentRefs, cn.Spec.Service.Hostnames = nil, nil
		}
	}
}

// BlueGreen makes the Canary switch all traffic at once after n iterations.
func BlueGreen(n int32) CanaryMod {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.StepWeights = nil
		cn.Spec.Analysis.Iterations = ptr.To(n)
	}
}

// Generation sets metadata.generation, for tables that never reach an apiserver.
func Generation(g int64) CanaryMod { return func(cn *v1alpha1.Canary) { cn.Generation = g } }

// Status sets the status, for tables that never reach an apiserver.
func Status(st v1alpha1.CanaryStatus) CanaryMod { return func(cn *v1alpha1.Canary) { cn.Status = st } }
