package simulation

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// The sequential test judges an A/B experiment as it judges a weighted canary: the cohort is
// the canary's share of requests, whatever it is.
func TestSequentialChecksJudgeAnABExperiment(t *testing.T) {
	analysis := SequentialPolicy().Analysis
	analysis.StepWeights = nil
	analysis.Iterations = ptr.To[int32](5)
	analysis.Match = []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}}
	spec := v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetReference{Name: "podinfo"}, Service: v1alpha1.CanaryService{Port: 9898}, Analysis: analysis}
	cohort := Traffic{RPS: RPS, CohortShare: 0.1}
	errors := Baseline
	errors.ErrorRate = 0.02

	var promoted, rolledBack int
	var rollback []time.Duration
	for i := range 100 {
		if o := Run(spec, Baseline, Baseline, cohort, rand.New(rand.NewPCG(21, uint64(i)))); o.Promoted {
			promoted++
			assert.Equal(t, 5*time.Minute, o.Duration.Truncate(time.Minute), "five iterations of a minute")
		}
		if o := Run(spec, errors, Baseline, cohort, rand.New(rand.NewPCG(22, uint64(i)))); !o.Promoted {
			rolledBack++
			rollback = append(rollback, o.Duration)
		}
	}
	assert.Equal(t, 100, promoted, "healthy experiments are promoted")
	assert.Equal(t, 100, rolledBack, "a cohort getting 2% errors is rolled back")
	assert.Less(t, Percentile(rollback, 0.5), 45*time.Second, "at 10% of the traffic, within the first iteration")
}
