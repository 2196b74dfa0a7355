package controllers

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestEventNoteFitsAnEvent(t *testing.T) {
	assert.Equal(t, "short", eventNote("short"))
	long := strings.Repeat("é", 600) // 1200 bytes
	note := eventNote(long)
	assert.LessOrEqual(t, len(note), maxEventNote)
	assert.True(t, utf8.ValidString(note), "cut on a character boundary")
	assert.True(t, strings.HasSuffix(note, " [...]"))
}
