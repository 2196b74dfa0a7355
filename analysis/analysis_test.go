package analysis

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

func TestJudge(t *testing.T) {
	tests := []struct {
		name    string
		value   float64
		r       v1alpha1.ThresholdRange
		verdict v1alpha1.Verdict
		bound   string
	}{
		{"above min", 99.5, v1alpha1.ThresholdRange{Min: ptr.To(99.0)}, v1alpha1.VerdictPass, ">= 99"},
		{"at min", 99, v1alpha1.ThresholdRange{Min: ptr.To(99.0)}, v1alpha1.VerdictPass, ">= 99"},
		{"below min", 98.999, v1alpha1.ThresholdRange{Min: ptr.To(99.0)}, v1alpha1.VerdictFail, ">= 99"},
		{"above max", 501, v1alpha1.ThresholdRange{Max: ptr.To(500.0)}, v1alpha1.VerdictFail, "<= 500"},
		{"within both", 5, v1alpha1.ThresholdRange{Min: ptr.To(1.0), Max: ptr.To(10.0)}, v1alpha1.VerdictPass, ">= 1 and <= 10"},
		{"fractions keep three digits", 0.25, v1alpha1.ThresholdRange{Max: ptr.To(0.1234)}, v1alpha1.VerdictFail, "<= 0.123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verdict, bound := Judge(tt.value, tt.r)
			assert.Equal(t, tt.verdict, verdict)
			assert.Equal(t, tt.bound, bound)
		})
	}
}

func TestWindow(t *testing.T) {
	assert.Equal(t, "1s", Window(200*time.Millisecond))
	assert.Equal(t, "25s", Window(25*time.Second+900*time.Millisecond))
	assert.Equal(t, "1m", Window(time.Minute))
	assert.Equal(t, "1m30s", Window(90*time.Second))
}
