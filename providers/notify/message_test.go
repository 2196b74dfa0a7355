package notify

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestSeverityRank(t *testing.T) {
	tests := []struct {
		s    Severity
		want int
	}{
		{SeverityInfo, 0},
		{SeverityWarn, 1},
		{SeverityError, 2},
		{"", -1},
		{"Error", -1},
		{"critical", -1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.s.Rank(), "severity %q", tt.s)
	}
	assert.Less(t, SeverityInfo.Rank(), SeverityWarn.Rank())
	assert.Less(t, SeverityWarn.Rank(), SeverityError.Rank())
}

func TestHeadlineFallsBack(t *testing.T) {
	assert.Equal(t, "shop/podinfo rolled back", Message{Headline: "  shop/podinfo rolled back "}.headline())
	assert.Equal(t, "shop/podinfo RolledBack", Message{Namespace: "shop", Canary: "podinfo", Reason: "RolledBack"}.headline())
	assert.Equal(t, "podinfo", Message{Canary: "podinfo"}.headline())
	assert.Equal(t, "trafficctl", Message{}.headline())
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"fits", "abc", 3, "abc"},
		{"cut", "abcdef", 4, "abc…"},
		{"one", "abcdef", 1, "…"},
		{"zero", "abc", 0, ""},
		{"empty", "", 5, ""},
		{"multibyte runes count one", "ééééé", 5, "ééééé"},
		{"multibyte cut", "éééééé", 4, "ééé…"},
		// 😀 is two UTF-16 units: it does not fit in the one unit left before the ellipsis.
		{"astral rune is never split", "ab😀cd", 4, "ab…"},
		{"astral rune fits", "ab😀cd", 5, "ab😀…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.in, tt.limit)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
			assert.LessOrEqual(t, utf16Len(got), max(tt.limit, 0))
		})
	}
	// Each "日本😀" is four units: 63 of them and "日本" fill 254 of the 255 units before the
	// ellipsis, and the next 😀 would need two.
	got := truncate(strings.Repeat("日本😀", 1000), 256)
	assert.True(t, utf8.ValidString(got))
	assert.Equal(t, 255, utf16Len(got))
	assert.True(t, strings.HasSuffix(got, "日本…"), "got %q", got[len(got)-12:])
}
