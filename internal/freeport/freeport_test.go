package freeport

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPortsAreBelowTheEphemeralRangeAndNeverRepeat(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p, err := Port()
		require.NoError(t, err)
		require.GreaterOrEqual(t, p, lowest)
		require.Less(t, p, ephemeralStart())
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
}
