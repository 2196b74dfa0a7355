package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// TimestampHeader carries the unix time, in seconds, at which an attempt was signed; it is
	// part of what is signed, so that a receiver can refuse old calls replayed.
	TimestampHeader = "X-Trafficctl-Timestamp"
	// SignatureHeader carries Sign's value, so that a receiver can tell our calls from forged
	// ones.
	SignatureHeader = "X-Trafficctl-Signature"

	signaturePrefix = "sha256="
)

// Sign returns the SignatureHeader value for body sent at timestamp:
// "sha256=" + hex(HMAC-SHA256(key, timestamp + "." + body)). It is exported so that tests and
// tools can produce the signature a receiver expects.
func Sign(key []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(key, timestamp, body))
}

// Verify tells whether signature is what Sign gives for key, timestamp and body, comparing in
// constant time so that the comparison leaks nothing of the expected value. It does not judge
// the timestamp's age: the receiver should also refuse timestamps far from its own clock. An
// empty key verifies nothing, since a receiver without a key has nothing to check against.
func Verify(key []byte, timestamp, signature string, body []byte) bool {
	if len(key) == 0 {
		return false
	}
	digest, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(digest)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(key, timestamp, body))
}

func mac(key []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
