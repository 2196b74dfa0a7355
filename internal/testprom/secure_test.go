package testprom

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

func TestNewServerCert(t *testing.T) {
	c := GenerateServerCert(t)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(c.CA))
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)

	for _, host := range []string{"127.0.0.1", "localhost"} {
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
		assert.NoError(t, err, host)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.2"})
	assert.Error(t, err, "the certificate is for 127.0.0.1 only")
	_, err = leaf.Verify(x509.VerifyOptions{Roots: otherCAPool(t), DNSName: "127.0.0.1"})
	assert.Error(t, err, "another authority must not verify it")
}

// otherCAPool trusts a fresh authority that signed nothing the test uses.
func otherCAPool(t *testing.T) *x509.CertPool {
	t.Helper()
	block, _ := pem.Decode(GenerateServerCert(t).CA)
	require.NotNil(t, block)
	ca, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func TestWebConfig(t *testing.T) {
	c := &ServerCert{CertFile: "/tmp/x/server.crt", KeyFile: "/tmp/x/server.key"}
	data, err := webConfig(c, map[string]string{"bob": "b-secret", "alice": "a-secret"})
	require.NoError(t, err)

	m := regexp.MustCompile(`(?s)^tls_server_config:\n  cert_file: "/tmp/x/server.crt"\n  key_file: "/tmp/x/server.key"\n` +
		`basic_auth_users:\n  "alice": "([^"]+)"\n  "bob": "([^"]+)"\n$`).FindSubmatch(data)
	require.NotNil(t, m, "unexpected web config:\n%s", data)
	assert.NoError(t, bcrypt.CompareHashAndPassword(m[1], []byte("a-secret")))
	assert.NoError(t, bcrypt.CompareHashAndPassword(m[2], []byte("b-secret")))
	assert.NotContains(t, string(data), "secret", "passwords are stored as hashes only")

	data, err = webConfig(nil, map[string]string{"alice": "a-secret"})
	require.NoError(t, err)
	assert.NotContains(t, string(data), "tls_server_config")
}

func TestStartTLSAndBasicAuth(t *testing.T) {
	cert := GenerateServerCert(t)
	e := StartExporter(t)
	e.SetTraffic("shop", "web-1", Traffic{RequestsPerScrape: 10})
	// Start returns only once /-/ready answered 200 over TLS with the credentials.
	p := StartOptions(t, Options{Targets: []string{e.Addr()}, TLS: cert, BasicAuth: map[string]string{"alice": "a-secret"}})
	require.True(t, strings.HasPrefix(p.URL(), "https://127.0.0.1:"), p.URL())
	p.WaitForSeries(t, `http_requests_total{pod="web-1"}`, 20*time.Second)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cert.CA))
	trusting := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	status := func(user, password string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.URL()+"/-/ready", nil)
		require.NoError(t, err)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := trusting.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status("alice", "a-secret"))
	assert.Equal(t, http.StatusUnauthorized, status("alice", "wrong"))
	assert.Equal(t, http.StatusUnauthorized, status("", ""))

	_, err := (&http.Client{Timeout: 5 * time.Second}).Get(p.URL() + "/-/ready")
	assert.ErrorContains(t, err, "certificate", "a client without the CA must not trust the server")
}
