package testprom

import (
	"crypto/subtle"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// AuthProxy stands in for the gateway that fronts a hosted or multi-tenant Prometheus with
// bearer-token auth, which Prometheus itself does not have. It answers 401 to a request
// without the expected token and forwards the others, and it records the headers of every
// request so that a test can check what a client sent, such as X-Scope-OrgID.
type AuthProxy struct {
	server *httptest.Server

	mu      sync.Mutex
	headers []http.Header
}

// StartAuthProxy starts an AuthProxy on a loopback port that forwards to upstreamURL (a plain
// http address, such as Prometheus.URL of a server without TLS) the requests that carry
// "Authorization: Bearer <token>", without that header; it is closed when the test ends.
func StartAuthProxy(t testing.TB, upstreamURL, token string) *AuthProxy {
	t.Helper()
	upstream, err := url.Parse(upstreamURL)
	if err != nil || upstream.Scheme != "http" || upstream.Host == "" {
		t.Fatalf("auth proxy upstream %q: want an http://host:port address (err: %v)", upstreamURL, err)
	}
	if token == "" {
		t.Fatal("auth proxy needs a token: an empty one would let every request through")
	}
	want := []byte("Bearer " + token)

	a := &AuthProxy{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Header.Del("Authorization")
		},
		ErrorLog: log.New(testLogWriter{t}, "auth proxy: ", 0),
	}
	a.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.headers = append(a.headers, r.Header.Clone())
		a.mu.Unlock()
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="testprom"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(a.server.Close)
	return a
}

// URL is the proxy's base address, what a client uses in place of the upstream's.
func (a *AuthProxy) URL() string { return a.server.URL }

// Headers returns the headers of every request the proxy received, in order, refused ones
// included, so that a test can assert what arrived.
func (a *AuthProxy) Headers() []http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]http.Header, len(a.headers))
	for i, h := range a.headers {
		out[i] = h.Clone()
	}
	return out
}

// testLogWriter sends the proxy's own errors, such as an unreachable upstream, to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
