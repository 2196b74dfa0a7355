package testprom

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	"golang.org/x/crypto/bcrypt"
)

// ServerCert is a throwaway certificate authority and a server certificate it signed for
// 127.0.0.1, so that a test can serve TLS and check how a client verifies the server without
// any certificate checked into the repository.
type ServerCert struct {
	// CA is the authority's certificate in PEM, what a client is given to trust the server.
	CA []byte
	// CertFile and KeyFile are the PEM files of the server's certificate and private key, the
	// form Prometheus' web configuration takes.
	CertFile, KeyFile string
}

// GenerateServerCert is NewServerCert in a directory of the test; it fails the test on error.
func GenerateServerCert(t testing.TB) *ServerCert {
	t.Helper()
	c, err := NewServerCert(t.TempDir())
	if err != nil {
		t.Fatalf("generate server certificate: %v", err)
	}
	return c
}

// NewServerCert creates a new ECDSA authority and a server certificate it signs for the IP
// address 127.0.0.1 and the name localhost, valid for a day, and writes the server's
// certificate (server.crt), key (server.key) and the authority's certificate (ca.crt) into dir.
func NewServerCert(dir string) (*ServerCert, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testprom ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}

	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("marshal server key: %w", err)
	}

	c := &ServerCert{
		CA:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertFile: filepath.Join(dir, "server.crt"),
		KeyFile:  filepath.Join(dir, "server.key"),
	}
	files := []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, "ca.crt"), c.CA},
		{c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverDER})},
		{c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return c, nil
}

// webSettings are how Prometheus serves its HTTP API and how testprom's own client reaches it.
type webSettings struct {
	configPath string // the --web.config.file; empty for plain HTTP without auth
	scheme     string
	transport  http.RoundTripper
}

// newWebSettings writes the web configuration for tlsCert and users into dir, if there is
// anything to configure, and builds the transport that trusts the certificate and logs in as
// one of the users.
func newWebSettings(dir string, tlsCert *ServerCert, users map[string]string) (*webSettings, error) {
	w := &webSettings{scheme: "http", transport: promapi.DefaultRoundTripper}
	if tlsCert == nil && len(users) == 0 {
		return w, nil
	}
	data, err := webConfig(tlsCert, users)
	if err != nil {
		return nil, err
	}
	w.configPath = filepath.Join(dir, "web.yml")
	if err := os.WriteFile(w.configPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write prometheus web config: %w", err)
	}

	transport := promapi.DefaultRoundTripper.(*http.Transport).Clone()
	if tlsCert != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(tlsCert.CA) {
			return nil, fmt.Errorf("the CA of the server certificate %s holds no PEM certificate", tlsCert.CertFile)
		}
		transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		w.scheme = "https"
	}
	w.transport = transport
	if len(users) > 0 {
		user := slices.Sorted(maps.Keys(users))[0]
		w.transport = basicAuthTransport{next: transport, user: user, password: users[user]}
	}
	return w, nil
}

// webConfig is the web.yml that makes Prometheus serve TLS with tlsCert and require basic
// auth from users, whose passwords it holds as bcrypt hashes.
func webConfig(tlsCert *ServerCert, users map[string]string) ([]byte, error) {
	var b bytes.Buffer
	if tlsCert != nil {
		fmt.Fprintf(&b, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n",
			strconv.Quote(tlsCert.CertFile), strconv.Quote(tlsCert.KeyFile))
	}
	if len(users) > 0 {
		b.WriteString("basic_auth_users:\n")
		for _, name := range slices.Sorted(maps.Keys(users)) {
			// The lowest cost keeps tests fast: Prometheus checks the hash on every request.
			hash, err := bcrypt.GenerateFromPassword([]byte(users[name]), bcrypt.MinCost)
			if err != nil {
				return nil, fmt.Errorf("hash the password of basic auth user %q: %w", name, err)
			}
			fmt.Fprintf(&b, "  %s: %s\n", strconv.Quote(name), strconv.Quote(string(hash)))
		}
	}
	return b.Bytes(), nil
}

// basicAuthTransport logs testprom's own requests (readiness, WaitForSeries) in as one user.
type basicAuthTransport struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(req)
}
