package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allTypes = []string{typeSlack, typeMSTeams, typeDiscord, typeWebhook}

// received is one request a receiver got.
type received struct {
	method string
	url    string // as the server saw it: a path, or an absolute URI when it acts as a proxy
	header http.Header
	body   []byte
}

// newReceiver starts a loopback server that records each request and answers status.
func newReceiver(t *testing.T, status int) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- received{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: body}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// one returns the single request a receiver recorded; Notify has returned by the time it is
// called, so the request is there or never came.
func one(t *testing.T, got <-chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	default:
		require.FailNow(t, "the receiver got no request")
		return received{}
	}
}

// rolledBack is the message most tests send: a rollback with a failing check.
func rolledBack() Message {
	return Message{
		Canary:    "podinfo",
		Namespace: "shop",
		Severity:  SeverityError,
		Reason:    "RolledBack",
		Headline:  "shop/podinfo rolled back",
		Text:      "Check request-success-rate failed 3 times: 97.1 is below 99.",
		Fields: []Field{
			{Name: "Phase", Value: "Failed"},
			{Name: "Revision", Value: "6.5.1"},
			{Name: "Failing check", Value: "request-success-rate"},
			{Name: "Value", Value: "97.1"},
			{Name: "Bound", Value: ">= 99"},
		},
		Time: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
	}
}

func TestNewRejectsWhatAUserMustFix(t *testing.T) {
	const secret = "s3cr3t"
	good := "https://hooks.example.com/services/T/B/" + secret
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"unknown type", Target{Type: "pagerduty", Address: good},
			`alert provider type "pagerduty" is not one of slack, msteams, discord, webhook`},
		{"empty type", Target{Address: good}, `alert provider type "" is not one of`},
		{"no address", Target{Type: "slack"}, "slack alert provider has no address"},
		{"blank address", Target{Type: "slack", Address: "  "}, "slack alert provider has no address"},
		{"relative address", Target{Type: "discord", Address: "/api/webhooks/" + secret},
			"discord alert provider address is not an http or https URL"},
		{"ftp address", Target{Type: "webhook", Address: "ftp://example.com/" + secret},
			"webhook alert provider address is not an http or https URL"},
		{"unparsable address", Target{Type: "msteams", Address: "http://exa mple.com/" + secret + "%zz"},
			"msteams alert provider address is not an http or https URL"},
		{"address without a host", Target{Type: "slack", Address: "https:///" + secret},
			"slack alert provider address is not an http or https URL"},
		{"unparsable proxy", Target{Type: "slack", Address: good, Proxy: "http://user:" + secret + "@proxy:3128/%zz"},
			"slack alert provider proxy is not an http, https or socks5 URL"},
		{"proxy without scheme", Target{Type: "slack", Address: good, Proxy: "proxy.internal:3128"},
			"slack alert provider proxy is not an http, https or socks5 URL"},
		{"ftp proxy", Target{Type: "slack", Address: good, Proxy: "ftp://" + secret + "@proxy:21"},
			"slack alert provider proxy is not an http, https or socks5 URL"},
		{"headline template", Target{Type: "slack", Address: good, HeadlineTemplate: "{{ .Canary "},
			"slack alert provider: headline template does not parse: template: headline:1: unclosed action"},
		{"text template function", Target{Type: "slack", Address: good, TextTemplate: "{{ nope .Canary }}"},
			`slack alert provider: text template does not parse: template: text:1: function "nope" not defined`},
		{"misspelt field", Target{Type: "slack", Address: good, HeadlineTemplate: "{{ .Cannary }}"},
			"slack alert provider: headline template does not render"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(tt.target)
			require.Error(t, err)
			assert.Nil(t, n)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestNewAccepts(t *testing.T) {
	for _, proxy := range []string{"", "http://proxy:3128", "https://user:pw@proxy:3128", "socks5://proxy:1080", "socks5h://proxy:1080"} {
		for _, typ := range allTypes {
			n, err := New(Target{Type: typ, Address: "https://hooks.example.com/x", Proxy: proxy})
			require.NoError(t, err, "type %s proxy %q", typ, proxy)
			assert.Equal(t, defaultTimeout, n.(*notifier).timeout)
		}
	}
}

func TestNotifyPostsJSON(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typ, func(t *testing.T) {
			// 204 is what Discord answers: any 2xx is success.
			srv, got := newReceiver(t, http.StatusNoContent)
			n, err := New(Target{Type: typ, Address: srv.URL + "/hook?x=1"})
			require.NoError(t, err)
			require.NoError(t, n.Notify(t.Context(), rolledBack()))

			r := one(t, got)
			assert.Equal(t, http.MethodPost, r.method)
			assert.Equal(t, "/hook?x=1", r.url)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Equal(t, "trafficctl", r.header.Get("User-Agent"))
			assert.True(t, json.Valid(r.body), "body is not JSON: %s", r.body)

			want, err := Payload(Target{Type: typ}, rolledBack())
			require.NoError(t, err)
			assert.Equal(t, string(want), string(r.body), "Payload differs from what was sent")
		})
	}
}

func TestNotifyReportsNon2xx(t *testing.T) {
	srv, _ := newReceiver(t, http.StatusBadRequest)
	n, err := New(Target{Type: typeDiscord, Address: srv.URL})
	require.NoError(t, err)
	err = n.Notify(t.Context(), rolledBack())
	require.EqualError(t, err, "discord answered 400 Bad Request")
}

func TestNotifyDoesNotFollowRedirects(t *testing.T) {
	target, got := newReceiver(t, http.StatusOK)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirect.Close)

	n, err := New(Target{Type: typeSlack, Address: redirect.URL})
	require.NoError(t, err)
	require.EqualError(t, n.Notify(t.Context(), rolledBack()), "slack answered 302 Found")
	assert.Empty(t, got, "the redirect was followed")
}

func TestNotifyUsesTheGivenClient(t *testing.T) {
	calls := 0
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})}
	// Nothing resolves .invalid or listens on the proxy: only the given client can answer.
	n, err := New(Target{Type: typeWebhook, Address: "http://hooks.example.invalid/x", Client: client, Proxy: "http://" + closedAddr(t)})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), rolledBack()))
	assert.Equal(t, 1, calls)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closedAddr returns a loopback address nothing listens on, so a dial is refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	const (
		pathToken  = "T000/B000/s3cr3tPathToken"
		queryToken = "s3cr3tQueryToken"
		token      = "s3cr3tBearerToken"
		proxyPass  = "s3cr3tProxyPassword"
	)
	secretPath := "/services/" + pathToken + "?token=" + queryToken

	// echo answers 500 with everything a careless receiver might echo.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "bad request to %s with %s", r.URL, r.Header.Get("Authorization"))
	}))
	t.Cleanup(echo.Close)

	// stall holds every request until the client gives up (or the test ends).
	release := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(stall.Close)
	t.Cleanup(func() { close(release) })

	cases := []struct {
		name    string
		address string
		proxy   string
		timeout time.Duration
		want    string // the whole message, with %s for the type
		wantIs  error
	}{
		{name: "500 answer", address: echo.URL + secretPath, want: "%s answered 500 Internal Server Error"},
		{name: "refused", address: "http://" + closedAddr(t) + secretPath, want: "sending to %s: dial tcp "},
		{name: "timeout", address: stall.URL + secretPath, timeout: 50 * time.Millisecond,
			want: "sending to %s: context deadline exceeded", wantIs: context.DeadlineExceeded},
		{name: "refused proxy", address: "http://hooks.example.invalid" + secretPath,
			proxy: "http://user:" + proxyPass + "@" + closedAddr(t), want: "sending to %s: proxyconnect tcp: dial tcp "},
	}
	for _, tc := range cases {
		for _, typ := range allTypes {
			t.Run(tc.name+"/"+typ, func(t *testing.T) {
				target := Target{Type: typ, Address: tc.address, Token: token, Proxy: tc.proxy, Timeout: tc.timeout}
				n, err := New(target)
				require.NoError(t, err)

				err = n.Notify(t.Context(), rolledBack())
				require.Error(t, err)
				msg := err.Error()
				t.Log(msg)
				want := fmt.Sprintf(tc.want, typ)
				if strings.HasSuffix(want, " ") {
					assert.True(t, strings.HasPrefix(msg, want), "error %q does not start with %q", msg, want)
				} else {
					assert.Equal(t, want, msg)
				}
				if tc.wantIs != nil {
					assert.ErrorIs(t, err, tc.wantIs)
				}
				for _, secret := range []string{tc.address, pathToken, "s3cr3tPathToken", queryToken, token, proxyPass} {
					assert.NotContains(t, msg, secret)
				}
			})
		}
	}
}

func TestRedactRemovesWhatAnErrorQuotes(t *testing.T) {
	target := Target{
		Address: "https://hooks.example.com/services/T/B/abc?token=q",
		Token:   "tok",
		Proxy:   "http://user:pw%2Fx@proxy:3128",
	}
	in := `Post "https://hooks.example.com/services/T/B/abc?token=q": proxyconnect tcp to http://user:pw%2Fx@proxy:3128 for tok via /services/T/B/abc, user:pw%2Fx`
	got := redact(in, target)
	for _, secret := range []string{"/services/T/B/abc", "token=q", "tok", "pw%2Fx", "pw/x"} {
		assert.NotContains(t, got, secret)
	}
	assert.Contains(t, got, "proxyconnect tcp to")
}

func TestProxyCarriesTheRequest(t *testing.T) {
	// A forward proxy for plain http receives the request with an absolute URI; this one
	// records it and answers for the target.
	proxied := make(chan received, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		proxied <- received{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(proxy.Close)

	// .invalid never resolves: the request can only succeed through the proxy.
	address := "http://hooks.example.invalid/api/webhooks/1/abc"
	n, err := New(Target{Type: typeWebhook, Address: address, Token: "tok", Proxy: proxy.URL})
	require.NoError(t, err)
	require.NoError(t, n.Notify(t.Context(), rolledBack()))

	r := one(t, proxied)
	assert.Equal(t, http.MethodPost, r.method)
	assert.Equal(t, address, r.url, "the proxy did not get the absolute URI")
	assert.Equal(t, "Bearer tok", r.header.Get("Authorization"))
	assert.Contains(t, string(r.body), `"canary":"podinfo"`)
}
