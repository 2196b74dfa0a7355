package hooks_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/trafficctl/trafficctl/providers/hooks"
)

// The vector was computed outside Go, as a receiver in another language would:
//
//	printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
const (
	vectorKey       = "s3cret"
	vectorTimestamp = "1700000000"
	vectorBody      = `{"a":1}`
	vectorSignature = "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
)

func TestSignMatchesDocumentedScheme(t *testing.T) {
	assert.Equal(t, vectorSignature, hooks.Sign([]byte(vectorKey), vectorTimestamp, []byte(vectorBody)))
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		timestamp string
		signature string
		body      string
		want      bool
	}{
		{name: "the documented vector", key: vectorKey, timestamp: vectorTimestamp, signature: vectorSignature, body: vectorBody, want: true},
		{name: "wrong key", key: "other", timestamp: vectorTimestamp, signature: vectorSignature, body: vectorBody},
		{name: "empty key", key: "", timestamp: vectorTimestamp, signature: hooks.Sign(nil, vectorTimestamp, []byte(vectorBody)), body: vectorBody},
		{name: "body changed", key: vectorKey, timestamp: vectorTimestamp, signature: vectorSignature, body: `{"a":2}`},
		{name: "timestamp changed", key: vectorKey, timestamp: "1700000001", signature: vectorSignature, body: vectorBody},
		{name: "no sha256= prefix", key: vectorKey, timestamp: vectorTimestamp, signature: vectorSignature[len("sha256="):], body: vectorBody},
		{name: "not hex", key: vectorKey, timestamp: vectorTimestamp, signature: "sha256=zz", body: vectorBody},
		{name: "truncated", key: vectorKey, timestamp: vectorTimestamp, signature: vectorSignature[:len(vectorSignature)-2], body: vectorBody},
		{name: "empty", key: vectorKey, timestamp: vectorTimestamp, signature: "", body: vectorBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, hooks.Verify([]byte(tt.key), tt.timestamp, tt.signature, []byte(tt.body)))
		})
	}
}
