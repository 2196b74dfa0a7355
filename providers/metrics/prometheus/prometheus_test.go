package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
)

const (
	namespace    = "shop"
	canaryPod    = "podinfo-7d9c8-abcde"
	primaryPod   = "podinfo-primary-5f6b7-xyz12"
	idlePod      = "checkout-6c8d9-qwert"
	canaryRegex  = `podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`
	primaryRegex = `podinfo-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`
	idleRegex    = `checkout-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`
	absentRegex  = `cart-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)`
)

// successRate is the request-success-rate query Flagger-style analyses run, in percent.
func successRate(podRegex string) string {
	return fmt.Sprintf(`100 * (1 - sum(rate(http_requests_total{namespace=%q,pod=~%q,code=~"5.."}[10s])) / sum(rate(http_requests_total{namespace=%q,pod=~%q}[10s])))`,
		namespace, podRegex, namespace, podRegex)
}

// latencyP99 is the 99th-percentile request latency, in milliseconds.
func latencyP99(podRegex string) string {
	return fmt.Sprintf(`histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace=%q,pod=~%q}[10s])) by (le)) * 1000`,
		namespace, podRegex)
}

func TestQuery(t *testing.T) {
	exporter := testprom.StartExporter(t)
	exporter.SetTraffic(namespace, canaryPod, testprom.Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 120 * time.Millisecond})
	exporter.SetTraffic(namespace, primaryPod, testprom.Traffic{RequestsPerScrape: 100, ErrorRatio: 0, Latency: 30 * time.Millisecond})
	exporter.SetTraffic(namespace, idlePod, testprom.Traffic{RequestsPerScrape: 0})
	server := testprom.Start(t, exporter.Addr())

	provider, err := prometheus.New(prometheus.Config{Address: server.URL(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	ctx := t.Context()

	// Rates need two scrapes inside their window; until then the ratio has no data.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := provider.Query(ctx, successRate(canaryRegex), time.Now())
		assert.NoError(c, err)
	}, 20*time.Second, 100*time.Millisecond, "canary success rate never became available")

	t.Run("success rate of the canary counts its errors", func(t *testing.T) {
		v, err := provider.Query(ctx, successRate(canaryRegex), time.Now())
		require.NoError(t, err)
		assert.InDelta(t, 90, v, 0.5)
	})

	t.Run("success rate of the primary is 100", func(t *testing.T) {
		v, err := provider.Query(ctx, successRate(primaryRegex), time.Now())
		require.NoError(t, err)
		assert.InDelta(t, 100, v, 1e-9)
	})

	t.Run("p99 latency falls in the bucket of the served latency", func(t *testing.T) {
		v, err := provider.Query(ctx, latencyP99(canaryRegex), time.Now())
		require.NoError(t, err)
		assert.Greater(t, v, 100.0) // 120ms is in the (0.1s, 0.25s] bucket
		assert.LessOrEqual(t, v, 250.0)

		v, err = provider.Query(ctx, latencyP99(primaryRegex), time.Now())
		require.NoError(t, err)
		assert.Greater(t, v, 25.0) // 30ms is in the (0.025s, 0.05s] bucket
		assert.LessOrEqual(t, v, 50.0)
	})

	t.Run("a scalar result is its value", func(t *testing.T) {
		v, err := provider.Query(ctx, `1 + 1`, time.Now())
		require.NoError(t, err)
		assert.Equal(t, 2.0, v)
	})

	t.Run("pods without series have no data", func(t *testing.T) {
		_, err := provider.Query(ctx, successRate(absentRegex), time.Now())
		require.ErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "empty")
	})

	t.Run("the query is evaluated at the given time", func(t *testing.T) {
		_, err := provider.Query(ctx, successRate(canaryRegex), time.Now().Add(-time.Hour))
		require.ErrorIs(t, err, analysis.ErrNoData)
	})

	t.Run("a ratio over zero requests has no data", func(t *testing.T) {
		// The idle pod's series exist but stay at zero, so the ratio is 0/0 once its rate can
		// be computed; before that the result is empty.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := provider.Query(ctx, successRate(idleRegex), time.Now())
			assert.ErrorContains(c, err, "value is NaN")
		}, 10*time.Second, 100*time.Millisecond)
		_, err := provider.Query(ctx, successRate(idleRegex), time.Now())
		assert.ErrorIs(t, err, analysis.ErrNoData)
	})

	t.Run("an infinite value has no data", func(t *testing.T) {
		_, err := provider.Query(ctx, `1 / 0`, time.Now())
		require.ErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "Inf")
	})

	t.Run("more than one series must be aggregated", func(t *testing.T) {
		query := fmt.Sprintf(`rate(http_requests_total{namespace=%q,pod=%q}[10s])`, namespace, canaryPod) // codes 200 and 500
		_, err := provider.Query(ctx, query, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "2 series")
		assert.ErrorContains(t, err, "aggregate to one")
	})

	t.Run("a range vector is not a value", func(t *testing.T) {
		query := fmt.Sprintf(`http_requests_total{namespace=%q,pod=%q,code="200"}[10s]`, namespace, canaryPod)
		_, err := provider.Query(ctx, query, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "matrix")
	})

	t.Run("a malformed query carries the parse error", func(t *testing.T) {
		_, err := provider.Query(ctx, `sum(rate(http_requests_total[10s])`, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "parse error")
		t.Logf("error: %v", err)
	})
}

func TestQueryUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	address := "http://" + l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens on the port any more

	provider, err := prometheus.New(prometheus.Config{Address: address, Timeout: 5 * time.Second})
	require.NoError(t, err)
	_, err = provider.Query(t.Context(), `1`, time.Now())
	require.Error(t, err)
	assert.NotErrorIs(t, err, analysis.ErrNoData)
	assert.ErrorContains(t, err, "connection refused")
	t.Logf("error: %v", err)
}

func TestQueryTimeout(t *testing.T) {
	// A listener that never accepts: the kernel completes the handshake, nothing ever answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })

	provider, err := prometheus.New(prometheus.Config{Address: "http://" + l.Addr().String(), Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	_, err = provider.Query(context.Background(), `1`, time.Now())
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "want a deadline error, got %v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestNew(t *testing.T) {
	tests := []struct {
		address string
		timeout time.Duration
		wantErr string
	}{
		{address: "http://127.0.0.1:9090", timeout: time.Second},
		{address: "https://prometheus.monitoring:9090/prefix", timeout: time.Second},
		{address: "", timeout: time.Second, wantErr: "scheme"},
		{address: "127.0.0.1:9090", timeout: time.Second, wantErr: "invalid prometheus address"},
		{address: "ftp://127.0.0.1:9090", timeout: time.Second, wantErr: "scheme"},
		{address: "http://", timeout: time.Second, wantErr: "no host"},
		{address: "http://127.0.0.1:9090", timeout: 0, wantErr: "timeout"},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i)+" "+tt.address, func(t *testing.T) {
			_, err := prometheus.New(prometheus.Config{Address: tt.address, Timeout: tt.timeout})
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// assertNoSecret fails if err, printed any way, shows one of the secrets.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, printed := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			assert.NotContains(t, printed, s, "the error shows a secret")
		}
	}
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) {
		for _, s := range secrets {
			assert.NotContains(t, apiErr.Detail, s, "the wrapped API error keeps a secret in its detail")
		}
	}
}

func TestBasicAuth(t *testing.T) {
	const user, password, wrongPassword = "trafficctl", "right-horse-battery", "wrong-staple-7f3a"
	server := testprom.StartOptions(t, testprom.Options{BasicAuth: map[string]string{user: password}})
	ctx := t.Context()

	t.Run("the right password is accepted", func(t *testing.T) {
		provider, err := prometheus.New(prometheus.Config{Address: server.URL(), Timeout: 5 * time.Second, Username: user, Password: password})
		require.NoError(t, err)
		v, err := provider.Query(ctx, `1 + 1`, time.Now())
		require.NoError(t, err)
		assert.Equal(t, 2.0, v)
	})

	t.Run("a wrong password is refused without showing it", func(t *testing.T) {
		provider, err := prometheus.New(prometheus.Config{Address: server.URL(), Timeout: 5 * time.Second, Username: user, Password: wrongPassword})
		require.NoError(t, err)
		_, err = provider.Query(ctx, `1 + 1`, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "prometheus at "+server.URL()+" refused the credentials (401 Unauthorized)")
		assertNoSecret(t, err, wrongPassword, password)
		t.Logf("error: %v", err)

		_, err = provider.QueryRange(ctx, `1 + 1`, time.Now().Add(-time.Minute), time.Now(), 10*time.Second)
		require.Error(t, err)
		assert.ErrorContains(t, err, "refused the credentials (401 Unauthorized)")
		assertNoSecret(t, err, wrongPassword, password)
	})

	t.Run("no credentials says none are configured", func(t *testing.T) {
		provider, err := prometheus.New(prometheus.Config{Address: server.URL(), Timeout: 5 * time.Second})
		require.NoError(t, err)
		_, err = provider.Query(ctx, `1 + 1`, time.Now())
		assert.ErrorContains(t, err, "requires credentials (401 Unauthorized), but none are configured")
	})
}

func TestTLS(t *testing.T) {
	cert := testprom.GenerateServerCert(t)
	server := testprom.StartOptions(t, testprom.Options{TLS: cert})
	require.True(t, strings.HasPrefix(server.URL(), "https://"), server.URL())
	ctx := t.Context()
	query := func(t *testing.T, cfg prometheus.Config) (float64, error) {
		t.Helper()
		cfg.Address, cfg.Timeout = server.URL(), 5*time.Second
		provider, err := prometheus.New(cfg)
		require.NoError(t, err)
		return provider.Query(ctx, `1 + 1`, time.Now())
	}

	t.Run("the right CA verifies the server", func(t *testing.T) {
		v, err := query(t, prometheus.Config{CA: cert.CA})
		require.NoError(t, err)
		assert.Equal(t, 2.0, v)
	})

	t.Run("without the CA the certificate is not trusted", func(t *testing.T) {
		_, err := query(t, prometheus.Config{})
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "certificate")
		assert.ErrorContains(t, err, "configure the CA")
		t.Logf("error: %v", err)
	})

	t.Run("another CA does not verify the server", func(t *testing.T) {
		_, err := query(t, prometheus.Config{CA: testprom.GenerateServerCert(t).CA})
		assert.ErrorContains(t, err, "certificate signed by unknown authority")
	})

	t.Run("InsecureSkipVerify accepts the certificate", func(t *testing.T) {
		v, err := query(t, prometheus.Config{InsecureSkipVerify: true})
		require.NoError(t, err)
		assert.Equal(t, 2.0, v)
	})

	t.Run("TLS and basic auth together", func(t *testing.T) {
		secured := testprom.StartOptions(t, testprom.Options{TLS: cert, BasicAuth: map[string]string{"u": "p-4411"}})
		provider, err := prometheus.New(prometheus.Config{Address: secured.URL(), Timeout: 5 * time.Second, CA: cert.CA, Username: "u", Password: "p-4411"})
		require.NoError(t, err)
		v, err := provider.Query(ctx, `3`, time.Now())
		require.NoError(t, err)
		assert.Equal(t, 3.0, v)
	})
}

func TestBearerTokenThroughProxy(t *testing.T) {
	const token, wrongToken, tenant = "tok-right-0b9d", "tok-wrong-51ce", "tenant-secret-a"
	server := testprom.Start(t)
	proxy := testprom.StartAuthProxy(t, server.URL(), token)
	ctx := t.Context()
	headers := map[string]string{"X-Scope-OrgID": tenant}

	t.Run("the right token is accepted and the headers arrive", func(t *testing.T) {
		provider, err := prometheus.New(prometheus.Config{Address: proxy.URL(), Timeout: 5 * time.Second, BearerToken: token, Headers: headers})
		require.NoError(t, err)
		v, err := provider.Query(ctx, `1 + 1`, time.Now())
		require.NoError(t, err)
		assert.Equal(t, 2.0, v)
		values, err := provider.QueryRange(ctx, `1 + 1`, time.Now().Add(-time.Minute), time.Now(), 15*time.Second)
		require.NoError(t, err)
		assert.Equal(t, []float64{2, 2, 2, 2, 2}, values)

		seen := proxy.Headers()
		require.Len(t, seen, 2)
		for _, h := range seen {
			assert.Equal(t, tenant, h.Get("X-Scope-OrgID"))
			assert.Equal(t, "Bearer "+token, h.Get("Authorization"))
		}
	})

	t.Run("a wrong token is refused without showing it", func(t *testing.T) {
		provider, err := prometheus.New(prometheus.Config{Address: proxy.URL(), Timeout: 5 * time.Second, BearerToken: wrongToken, Headers: headers})
		require.NoError(t, err)
		_, err = provider.Query(ctx, `1 + 1`, time.Now())
		require.Error(t, err)
		assert.ErrorContains(t, err, "prometheus at "+proxy.URL()+" refused the credentials (401 Unauthorized)")
		assertNoSecret(t, err, wrongToken, token, tenant)
		t.Logf("error: %v", err)
	})
}

// TestAuthErrorsDropTheBody checks the refusals of a server that writes the request's
// credentials into its answer, as some gateways do in their error pages.
func TestAuthErrorsDropTheBody(t *testing.T) {
	const token, tenant = "tok-echoed-93aa", "tenant-echoed"
	var mu sync.Mutex
	var methods []string
	status := http.StatusForbidden
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		code := status
		mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "denied: Authorization="+r.Header.Get("Authorization")+" X-Scope-OrgID="+r.Header.Get("X-Scope-OrgID"))
	}))
	t.Cleanup(echo.Close)

	provider, err := prometheus.New(prometheus.Config{Address: echo.URL, Timeout: 5 * time.Second, BearerToken: token,
		Headers: map[string]string{"X-Scope-OrgID": tenant}})
	require.NoError(t, err)

	_, err = provider.Query(t.Context(), `1`, time.Now())
	require.Error(t, err)
	assert.ErrorContains(t, err, "prometheus at "+echo.URL+" refused the credentials (403 Forbidden)")
	assertNoSecret(t, err, token, tenant)
	mu.Lock()
	assert.Equal(t, []string{http.MethodPost, http.MethodGet}, methods, "a 403 to POST is retried with GET, as client_golang does")
	status = http.StatusUnauthorized
	mu.Unlock()

	_, err = provider.QueryRange(t.Context(), `1`, time.Now().Add(-time.Minute), time.Now(), time.Second)
	require.Error(t, err)
	assert.ErrorContains(t, err, "refused the credentials (401 Unauthorized)")
	assertNoSecret(t, err, token, tenant)
}

func TestNewNeverShowsCredentials(t *testing.T) {
	const secret = "hunter2-b7e1"
	tests := []struct {
		name    string
		cfg     prometheus.Config
		wantErr string
	}{
		{name: "userinfo in the address", cfg: prometheus.Config{Address: "http://admin:" + secret + "@prometheus:9090"}, wantErr: "put credentials in a Secret"},
		{name: "userinfo in an unparsable address", cfg: prometheus.Config{Address: "http://admin:" + secret + "@prometheus:90 90"}, wantErr: "invalid port"},
		{name: "userinfo without a scheme", cfg: prometheus.Config{Address: "admin:" + secret + "@prometheus:9090"}, wantErr: "invalid prometheus address"},
		{name: "userinfo with another scheme", cfg: prometheus.Config{Address: "ftp://admin:" + secret + "@prometheus:9090"}, wantErr: "put credentials in a Secret"},
		{name: "token with a trailing newline", cfg: prometheus.Config{Address: "http://prometheus:9090", BearerToken: secret + "\n"}, wantErr: "trailing newline"},
		{name: "header value with a line break", cfg: prometheus.Config{Address: "http://prometheus:9090", Headers: map[string]string{"X-Scope-OrgID": secret + "\r\nX-Other: 1"}}, wantErr: `header "X-Scope-OrgID"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Timeout = time.Second
			_, err := prometheus.New(tt.cfg)
			require.Error(t, err)
			assert.ErrorContains(t, err, tt.wantErr)
			assertNoSecret(t, err, secret)
			t.Logf("error: %v", err)
		})
	}
}

func TestQueryRange(t *testing.T) {
	exporter := testprom.StartExporter(t)
	exporter.SetTraffic(namespace, canaryPod, testprom.Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 120 * time.Millisecond})
	server := testprom.Start(t, exporter.Addr())
	provider, err := prometheus.New(prometheus.Config{Address: server.URL(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	ctx := t.Context()

	// The first instant the success rate has a value; every later one has one too.
	var start time.Time
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		now := time.Now()
		_, err := provider.Query(ctx, successRate(canaryRegex), now)
		if assert.NoError(c, err) {
			start = now
		}
	}, 20*time.Second, 100*time.Millisecond, "canary success rate never became available")

	t.Run("one point per step, each the value of its instant", func(t *testing.T) {
		var values []float64
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var err error
			values, err = provider.QueryRange(ctx, successRate(canaryRegex), start, start.Add(4*time.Second), time.Second)
			assert.NoError(c, err)
			assert.Len(c, values, 5)
		}, 10*time.Second, 100*time.Millisecond)
		for _, v := range values {
			assert.InDelta(t, 90, v, 0.5)
		}
	})

	t.Run("points come in time order", func(t *testing.T) {
		query := fmt.Sprintf(`sum(http_requests_total{namespace=%q,pod=%q})`, namespace, canaryPod)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			values, err := provider.QueryRange(ctx, query, start, start.Add(4*time.Second), time.Second)
			if !assert.NoError(c, err) || !assert.Len(c, values, 5) {
				return
			}
			for i := 1; i < len(values); i++ {
				assert.GreaterOrEqual(c, values[i], values[i-1], "a counter never falls: %v", values)
			}
			assert.Greater(c, values[4], values[0], "four seconds of traffic add requests: %v", values)
		}, 10*time.Second, 100*time.Millisecond)
	})

	// time() is the evaluation instant, so these queries have no value at every even second.
	aligned := time.Unix(time.Now().Unix()-10, 0)
	odd := 2 // of the five seconds from an even one
	if aligned.Unix()%2 == 1 {
		odd = 3
	}

	t.Run("NaN points are left out", func(t *testing.T) {
		values, err := provider.QueryRange(ctx, `(time() % 2) / (time() % 2)`, aligned, aligned.Add(4*time.Second), time.Second)
		require.NoError(t, err)
		assert.Equal(t, slices.Repeat([]float64{1}, odd), values)
	})

	t.Run("infinite points are left out", func(t *testing.T) {
		values, err := provider.QueryRange(ctx, `1 / (time() % 2)`, aligned, aligned.Add(4*time.Second), time.Second)
		require.NoError(t, err)
		assert.Equal(t, slices.Repeat([]float64{1}, odd), values)
	})

	t.Run("only NaN points is no data", func(t *testing.T) {
		_, err := provider.QueryRange(ctx, `0 / 0`, aligned, aligned.Add(4*time.Second), time.Second)
		require.ErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "all 5 values are NaN or infinite")
	})

	t.Run("more than one series must be aggregated", func(t *testing.T) {
		query := fmt.Sprintf(`rate(http_requests_total{namespace=%q,pod=%q}[10s])`, namespace, canaryPod) // codes 200 and 500
		_, err := provider.QueryRange(ctx, query, start, start.Add(4*time.Second), time.Second)
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "2 series")
		assert.ErrorContains(t, err, "aggregate to one")
	})

	t.Run("no series is no data", func(t *testing.T) {
		_, err := provider.QueryRange(ctx, successRate(absentRegex), start, start.Add(4*time.Second), time.Second)
		require.ErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "empty")
	})

	t.Run("a range vector is rejected by prometheus", func(t *testing.T) {
		query := fmt.Sprintf(`http_requests_total{namespace=%q,pod=%q,code="200"}[10s]`, namespace, canaryPod)
		_, err := provider.QueryRange(ctx, query, start, start.Add(4*time.Second), time.Second)
		require.Error(t, err)
		assert.NotErrorIs(t, err, analysis.ErrNoData)
		assert.ErrorContains(t, err, "rejected query")
		t.Logf("error: %v", err)
	})
}

func TestQueryRangeInvalid(t *testing.T) {
	// Nothing listens here: a range that reached the network would fail differently.
	provider, err := prometheus.New(prometheus.Config{Address: "http://127.0.0.1:1", Timeout: time.Second})
	require.NoError(t, err)
	now := time.Now()
	tests := []struct {
		name       string
		start, end time.Time
		step       time.Duration
		wantErr    string
	}{
		{name: "zero step", start: now.Add(-time.Minute), end: now, step: 0, wantErr: "step 0s: must be at least 1ms"},
		{name: "negative step", start: now.Add(-time.Minute), end: now, step: -time.Second, wantErr: "step -1s"},
		{name: "sub-millisecond step", start: now.Add(-time.Minute), end: now, step: time.Microsecond, wantErr: "at least 1ms"},
		{name: "no start", end: now, step: time.Second, wantErr: "start and end must both be set"},
		{name: "no end", start: now, step: time.Second, wantErr: "start and end must both be set"},
		{name: "end before start", start: now, end: now.Add(-time.Minute), step: time.Second, wantErr: "is before start"},
		{name: "too many points", start: now.Add(-24 * time.Hour), end: now, step: time.Second, wantErr: "more than the 11000 points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := provider.QueryRange(t.Context(), `1`, tt.start, tt.end, tt.step)
			require.Error(t, err)
			assert.ErrorContains(t, err, "invalid range query")
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("a single point is a valid range", func(t *testing.T) {
		_, err := provider.QueryRange(t.Context(), `1`, now, now, time.Second)
		assert.ErrorContains(t, err, "connection refused", "the query goes out")
	})
}
