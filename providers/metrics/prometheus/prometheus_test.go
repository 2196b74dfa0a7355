package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/providers/metrics"
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
		require.ErrorIs(t, err, metrics.ErrNoData)
		assert.ErrorContains(t, err, "empty")
	})

	t.Run("the query is evaluated at the given time", func(t *testing.T) {
		_, err := provider.Query(ctx, successRate(canaryRegex), time.Now().Add(-time.Hour))
		require.ErrorIs(t, err, metrics.ErrNoData)
	})

	t.Run("a ratio over zero requests has no data", func(t *testing.T) {
		// The idle pod's series exist but stay at zero, so the ratio is 0/0 once its rate can
		// be computed; before that the result is empty.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, err := provider.Query(ctx, successRate(idleRegex), time.Now())
			assert.ErrorContains(c, err, "value is NaN")
		}, 10*time.Second, 100*time.Millisecond)
		_, err := provider.Query(ctx, successRate(idleRegex), time.Now())
		assert.ErrorIs(t, err, metrics.ErrNoData)
	})

	t.Run("an infinite value has no data", func(t *testing.T) {
		_, err := provider.Query(ctx, `1 / 0`, time.Now())
		require.ErrorIs(t, err, metrics.ErrNoData)
		assert.ErrorContains(t, err, "Inf")
	})

	t.Run("more than one series must be aggregated", func(t *testing.T) {
		query := fmt.Sprintf(`rate(http_requests_total{namespace=%q,pod=%q}[10s])`, namespace, canaryPod) // codes 200 and 500
		_, err := provider.Query(ctx, query, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, metrics.ErrNoData)
		assert.ErrorContains(t, err, "2 series")
		assert.ErrorContains(t, err, "aggregate to one")
	})

	t.Run("a range vector is not a value", func(t *testing.T) {
		query := fmt.Sprintf(`http_requests_total{namespace=%q,pod=%q,code="200"}[10s]`, namespace, canaryPod)
		_, err := provider.Query(ctx, query, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, metrics.ErrNoData)
		assert.ErrorContains(t, err, "matrix")
	})

	t.Run("a malformed query carries the parse error", func(t *testing.T) {
		_, err := provider.Query(ctx, `sum(rate(http_requests_total[10s])`, time.Now())
		require.Error(t, err)
		assert.NotErrorIs(t, err, metrics.ErrNoData)
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
	assert.NotErrorIs(t, err, metrics.ErrNoData)
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
