package rollout

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRatioReplicas(t *testing.T) {
	for _, tt := range []struct {
		primary, weight, want int32
	}{
		{primary: 9, weight: 10, want: 1},
		{primary: 9, weight: 50, want: 9},
		{primary: 3, weight: 25, want: 1},
		{primary: 4, weight: 25, want: 1},  // 1.33
		{primary: 10, weight: 33, want: 5}, // 4.93
		{primary: 10, weight: 5, want: 1},  // 0.53
		{primary: 3, weight: 60, want: 5},  // 4.5 rounds up
		{primary: 1, weight: 5, want: 1},   // 0.05, but a canary needs a pod
		{primary: 0, weight: 10, want: 1},
		{primary: 9, weight: 0, want: 0},
		{primary: 9, weight: -5, want: 0},
		{primary: 4, weight: 99, want: 396},
		{primary: 4, weight: 100, want: 4}, // no ratio gives 100; an even split, not a runaway count
		{primary: 0, weight: 100, want: 1},
	} {
		assert.Equal(t, tt.want, RatioReplicas(tt.primary, tt.weight), "RatioReplicas(%d, %d)", tt.primary, tt.weight)
	}
}

func TestShare(t *testing.T) {
	for _, tt := range []struct {
		primary, canary, want int32
	}{
		{primary: 9, canary: 1, want: 10},
		{primary: 9, canary: 9, want: 50},
		{primary: 9, canary: 4, want: 31}, // 30.77
		{primary: 10, canary: 5, want: 33},
		{primary: 1, canary: 1, want: 50},
		{primary: 7, canary: 1, want: 13}, // 12.5 rounds up
		{primary: 0, canary: 3, want: 100},
		{primary: 3, canary: 0, want: 0},
		{primary: 0, canary: 0, want: 0},
		{primary: -1, canary: 1, want: 100},
	} {
		assert.Equal(t, tt.want, Share(tt.primary, tt.canary), "Share(%d, %d)", tt.primary, tt.canary)
	}
}

// Share of the replicas RatioReplicas asks for comes within one replica's worth of the weight.
func TestRatioReplicasGivesTheWeight(t *testing.T) {
	for primary := int32(1); primary <= 50; primary++ {
		for weight := int32(1); weight < 100; weight++ {
			canary := RatioReplicas(primary, weight)
			share := Share(primary, canary)
			tolerance := Share(primary, canary+1) - Share(primary, canary-1)
			if canary == 1 {
				tolerance = max(tolerance, share) // one pod is the least a canary gets
			}
			assert.LessOrEqual(t, abs(share-weight), tolerance, "primary %d, weight %d: %d canary replicas get %d%%", primary, weight, canary, share)
		}
	}
}

func abs(n int32) int32 { return max(n, -n) }
