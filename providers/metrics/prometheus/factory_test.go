package prometheus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFactorySharesTransportsWithABound: Providers with the same TLS settings share a transport,
// and rotating CAs never grows the cache past its bound.
func TestFactorySharesTransportsWithABound(t *testing.T) {
	f := NewFactory(nil)
	ca := func() []byte { return selfSignedCA(t) }
	first := ca()
	cfg := Config{Address: "https://127.0.0.1:1", Timeout: time.Second, CA: first}
	a, err := f.New(cfg)
	require.NoError(t, err)
	b, err := f.New(cfg)
	require.NoError(t, err)
	assert.Same(t, a.transport, b.transport, "the same CA shares a transport")
	other, err := f.New(Config{Address: "https://127.0.0.1:1", Timeout: time.Second, InsecureSkipVerify: true})
	require.NoError(t, err)
	assert.NotSame(t, a.transport, other.transport)

	for i := 1; i <= 3*maxTransports; i++ {
		_, err := f.New(Config{Address: "https://127.0.0.1:1", Timeout: time.Second, CA: ca()})
		require.NoError(t, err)
	}
	assert.Equal(t, maxTransports, f.transports.Len(), "rotated CAs are dropped, oldest first")

	plain, err := New(cfg)
	require.NoError(t, err)
	assert.NotSame(t, a.transport, plain.transport, "New makes a transport of its own")
}

// selfSignedCA is the PEM of a new certificate authority, as a rotated ca.crt would be.
func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "rotated ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
