package simulation

import (
	"flag"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var rollouts = flag.Int("rollouts", 300, "simulated rollouts per policy and scenario")

// TestDecisionQuality measures both policies on every scenario and holds trafficctl's to its
// targets: at most 1% false rollbacks, a bad canary rolled back in 45 s (median) having failed
// at most 6 requests, and a healthy one promoted no slower than the threshold policy. The
// traffic is seeded, so the figures are the same on every run; `make decision-quality` runs
// more rollouts and prints the table.
func TestDecisionQuality(t *testing.T) {
	policies := []Policy{ThresholdPolicy(), SequentialPolicy()}
	scenarios := Scenarios()
	results := make([][]Summary, len(scenarios)) // [scenario][policy]
	start := time.Now()
	var wg sync.WaitGroup
	for si, s := range scenarios {
		results[si] = make([]Summary, len(policies))
		for pi, p := range policies {
			wg.Go(func() { results[si][pi] = Measure(p, s, *rollouts, uint64(si+1)) })
		}
	}
	wg.Wait()
	t.Logf("%d rollouts per cell, simulated in %s", *rollouts, time.Since(start).Round(time.Millisecond))
	require.NoError(t, WriteTable(os.Stdout, results[0], results[1], results[2]))

	healthy, errors, slow := results[0], results[1], results[2]
	threshold, sequential := 0, 1
	assert.LessOrEqual(t, healthy[sequential].RollbackRate(), 0.01, "false rollbacks")
	assert.LessOrEqual(t, errors[sequential].TimeToRollback(0.5), 45*time.Second, "median time to roll back 2% errors")
	assert.NotZero(t, errors[sequential].TimeToRollback(0.95), "2% errors are rolled back in 95% of rollouts")
	assert.LessOrEqual(t, Percentile(errors[sequential].FailedRequests, 0.5), 6.0, "failed requests before rollback")
	assert.NotZero(t, slow[sequential].TimeToRollback(0.95), "+50 ms is rolled back in 95% of rollouts")
	assert.LessOrEqual(t, Percentile(healthy[sequential].Promotion, 0.5), Percentile(healthy[threshold].Promotion, 0.5), "promotion no slower than the threshold policy")
}
