package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestErrorRateIsExactAndDeterministic(t *testing.T) {
	h := newHandler(config{version: "3.0.0", podName: "podinfo-abc-12345", errorRate: 0.1})
	var failed []int
	for i := range 100 {
		rec := get(t, h, "/")
		assert.Equal(t, "3.0.0", rec.Header().Get("X-Version"), "request %d", i)
		switch rec.Code {
		case http.StatusOK:
			assert.Equal(t, "version 3.0.0 pod podinfo-abc-12345\n", rec.Body.String())
		case http.StatusInternalServerError:
			assert.Equal(t, "error from version 3.0.0", rec.Body.String())
			failed = append(failed, i)
		default:
			t.Fatalf("request %d: unexpected status %d", i, rec.Code)
		}
	}
	assert.Equal(t, []int{9, 19, 29, 39, 49, 59, 69, 79, 89, 99}, failed, "exactly one request in ten fails")
}

func TestFails(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		n    int
		want int
	}{
		{0, 1000, 0}, {1, 1000, 1000}, {0.01, 1000, 10}, {0.25, 1000, 250}, {1.0 / 3, 999, 333}, {0.1, 5, 0},
	} {
		got := 0
		for i := range tc.n {
			if fails(uint64(i), tc.rate) {
				got++
			}
		}
		assert.Equal(t, tc.want, got, "rate %g over %d requests", tc.rate, tc.n)
	}
}

func TestLatencyIsAdded(t *testing.T) {
	h := newHandler(config{version: "1.0.0", latency: 30 * time.Millisecond})
	start := time.Now()
	rec := get(t, h, "/some/path")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	start = time.Now()
	assert.Equal(t, http.StatusOK, get(t, h, "/healthz").Code)
	assert.Less(t, time.Since(start), 30*time.Millisecond, "the readiness probe is not delayed")
}

func TestCancelledRequestIsNeitherAnsweredNorCounted(t *testing.T) {
	h := newHandler(config{version: "1.0.0", latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	assert.Empty(t, rec.Body.String())

	metrics := get(t, h, "/metrics").Body.String()
	assert.Contains(t, metrics, `http_requests_total{code="200",method="GET"} 0`)
}

func TestMetrics(t *testing.T) {
	h := newHandler(config{version: "2.0.0", errorRate: 0.25})

	fresh := get(t, h, "/metrics").Body.String()
	for _, line := range []string{
		`http_requests_total{code="200",method="GET"} 0`,
		`http_requests_total{code="500",method="GET"} 0`,
		`http_request_duration_seconds_count{code="200",method="GET"} 0`,
		`http_request_duration_seconds_count{code="500",method="GET"} 0`,
	} {
		assert.Contains(t, fresh, line+"\n", "series exist before the first request")
	}

	for range 20 {
		get(t, h, "/")
		get(t, h, "/healthz")
		get(t, h, "/metrics")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader("{}")))
	require.Equal(t, http.StatusOK, rec.Code, "the 21st request is not one of the errors at 25%")

	resp := get(t, h, "/metrics")
	require.Equal(t, http.StatusOK, resp.Code)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metrics := string(body)
	for _, line := range []string{
		`http_requests_total{code="200",method="GET"} 15`,
		`http_requests_total{code="500",method="GET"} 5`,
		`http_requests_total{code="200",method="POST"} 1`,
		`http_request_duration_seconds_count{code="200",method="GET"} 15`,
		`http_request_duration_seconds_count{code="500",method="GET"} 5`,
		`http_request_duration_seconds_bucket{code="200",method="GET",le="10"} 15`,
		`http_request_duration_seconds_bucket{code="500",method="GET",le="+Inf"} 5`,
	} {
		assert.Contains(t, metrics, line+"\n")
	}
	assert.Equal(t, 3, strings.Count(metrics, "http_requests_total{"), "only / requests are counted; /healthz and /metrics are not")
	assert.NotContains(t, metrics, "pod=", "Prometheus attaches the pod label itself")
	assert.NotContains(t, metrics, "namespace=")
}

func TestMethodLabelIsBounded(t *testing.T) {
	assert.Equal(t, "GET", methodLabel("GET"))
	assert.Equal(t, "DELETE", methodLabel("DELETE"))
	assert.Equal(t, "OTHER", methodLabel("get"))
	assert.Equal(t, "OTHER", methodLabel("BREW"))
}

func TestLoadConfig(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}

	c, err := loadConfig(env(map[string]string{"LISTEN_ADDR": "127.100.0.7:9898"}))
	require.NoError(t, err)
	assert.Equal(t, config{listenAddr: "127.100.0.7:9898", version: "unknown"}, c, "defaults")

	c, err = loadConfig(env(map[string]string{
		"LISTEN_ADDR": "127.100.0.7:9898", "VERSION": "2.0.0", "ERROR_RATE": "0.1", "LATENCY": "50ms",
		"CRASH": "true", "POD_NAME": "podinfo-1", "POD_NAMESPACE": "demo",
	}))
	require.NoError(t, err)
	assert.Equal(t, config{
		listenAddr: "127.100.0.7:9898", version: "2.0.0", errorRate: 0.1, latency: 50 * time.Millisecond,
		crash: true, podName: "podinfo-1", podNamespace: "demo",
	}, c)

	c, err = loadConfig(env(map[string]string{"LISTEN_ADDR": "127.0.0.1:1", "ERROR_RATE": "0", "LATENCY": "0s", "CRASH": "false"}))
	require.NoError(t, err, "the values the e2e framework writes for a healthy version")
	assert.Zero(t, c.errorRate)
	assert.False(t, c.crash)

	for _, tc := range []struct {
		name, key, value string
	}{
		{"no listen address", "LISTEN_ADDR", ""},
		{"listen address without port", "LISTEN_ADDR", "127.0.0.1"},
		{"error rate not a number", "ERROR_RATE", "ten"},
		{"error rate above 1", "ERROR_RATE", "1.5"},
		{"negative error rate", "ERROR_RATE", "-0.1"},
		{"error rate NaN", "ERROR_RATE", "NaN"},
		{"latency without unit", "LATENCY", "50"},
		{"negative latency", "LATENCY", "-1s"},
		{"crash not a boolean", "CRASH", "maybe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"LISTEN_ADDR": "127.0.0.1:9898", tc.key: tc.value}
			_, err := loadConfig(env(vars))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key, "the message names the variable")
		})
	}
}

func TestMirroredRequestsAreCountedApart(t *testing.T) {
	h := newHandler(config{version: "2.0.0"})
	assert.Contains(t, get(t, h, "/metrics").Body.String(), "http_shadow_requests_total 0\n")
	for _, host := range []string{"podinfo.example.com-shadow", "podinfo.example.com-shadow:8080", "podinfo.example.com", "shadow.example.com", "podinfo-shadow.example.com:80"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, host)
	}
	metrics := get(t, h, "/metrics").Body.String()
	assert.Contains(t, metrics, "http_shadow_requests_total 2\n", "only the Hosts a mirror marks")
	assert.Contains(t, metrics, `http_requests_total{code="200",method="GET"} 5`+"\n", "mirrored requests are requests too")
}

func TestIsShadow(t *testing.T) {
	assert.True(t, isShadow("a.example.com-shadow"))
	assert.True(t, isShadow("a.example.com-shadow:80"))
	assert.True(t, isShadow("[::1]-shadow"))
	assert.False(t, isShadow("a.example.com"))
	assert.False(t, isShadow("a-shadow.example.com:80"))
	assert.False(t, isShadow(""))
}
