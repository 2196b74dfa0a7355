package testprom

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func scrape(t *testing.T, e *Exporter) string {
	t.Helper()
	resp, err := http.Get(e.URL())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

func TestExporterAdvancesPerScrape(t *testing.T) {
	e := StartExporter(t)
	e.SetTraffic("shop", "web-1", Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 120 * time.Millisecond})
	e.SetTraffic("shop", "web-2", Traffic{RequestsPerScrape: 3, ErrorRatio: 0.5, Latency: 0})

	scrape(t, e)
	body := scrape(t, e)
	assert.Equal(t, 2, e.Scrapes())
	for _, line := range []string{
		`http_requests_total{code="200",namespace="shop",pod="web-1"} 180`,
		`http_requests_total{code="500",namespace="shop",pod="web-1"} 20`,
		`http_request_duration_seconds_bucket{namespace="shop",pod="web-1",le="0.1"} 0`,
		`http_request_duration_seconds_bucket{namespace="shop",pod="web-1",le="0.25"} 200`,
		`http_request_duration_seconds_bucket{namespace="shop",pod="web-1",le="+Inf"} 200`,
		`http_request_duration_seconds_sum{namespace="shop",pod="web-1"} 24`,
		`http_request_duration_seconds_count{namespace="shop",pod="web-1"} 200`,
		// round(0.5*3) = 2 errors per scrape.
		`http_requests_total{code="200",namespace="shop",pod="web-2"} 2`,
		`http_requests_total{code="500",namespace="shop",pod="web-2"} 4`,
		`http_request_duration_seconds_bucket{namespace="shop",pod="web-2",le="0.005"} 6`,
	} {
		assert.Contains(t, body, line+"\n")
	}

	// Changing the traffic keeps the counters; removing it drops the series.
	e.SetTraffic("shop", "web-1", Traffic{RequestsPerScrape: 10})
	e.RemoveTraffic("shop", "web-2")
	body = scrape(t, e)
	assert.Contains(t, body, `http_requests_total{code="200",namespace="shop",pod="web-1"} 190`+"\n")
	assert.Contains(t, body, `http_requests_total{code="500",namespace="shop",pod="web-1"} 20`+"\n")
	assert.NotContains(t, body, "web-2")
}

func TestExporterZeroTrafficKeepsSeries(t *testing.T) {
	e := StartExporter(t)
	e.SetTraffic("shop", "idle-1", Traffic{})
	body := scrape(t, e)
	assert.Contains(t, body, `http_requests_total{code="200",namespace="shop",pod="idle-1"} 0`+"\n")
	assert.Contains(t, body, `http_requests_total{code="500",namespace="shop",pod="idle-1"} 0`+"\n")
}

func TestExporterRejectsInvalidTraffic(t *testing.T) {
	e := StartExporter(t)
	for _, traffic := range []Traffic{
		{RequestsPerScrape: -1},
		{ErrorRatio: 1.5},
		{ErrorRatio: -0.1},
		{Latency: -time.Second},
		{Port: -1},
		{Port: 65536},
	} {
		assert.Panics(t, func() { e.SetTraffic("shop", "web-1", traffic) }, "%+v", traffic)
	}
}

func TestExporterIstioSeries(t *testing.T) {
	e := StartExporter(t)
	e.SetTraffic("shop", "podinfo-7d9c8-abcde", Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 120 * time.Millisecond, Service: "podinfo-canary"})
	e.SetTraffic("shop", "podinfo-primary-5f6b7-xyz12", Traffic{RequestsPerScrape: 10, Latency: 30 * time.Millisecond, Service: "podinfo-primary"})
	e.SetTraffic("shop", "web-1", Traffic{RequestsPerScrape: 1, Workload: "web"})
	e.SetTraffic("shop", "idle-6c8d9-qwert", Traffic{Service: "idle"})

	scrape(t, e)
	body := scrape(t, e)
	const (
		canary  = `destination_service_name="podinfo-canary",destination_service_namespace="shop",destination_workload="podinfo",destination_workload_namespace="shop",namespace="shop",pod="podinfo-7d9c8-abcde",reporter="destination"`
		primary = `destination_service_name="podinfo-primary",destination_service_namespace="shop",destination_workload="podinfo-primary",destination_workload_namespace="shop",namespace="shop",pod="podinfo-primary-5f6b7-xyz12",reporter="destination"`
	)
	for _, line := range []string{
		`istio_requests_total{` + canary + `,response_code="200"} 180`,
		`istio_requests_total{` + canary + `,response_code="500"} 20`,
		`istio_request_duration_milliseconds_bucket{` + canary + `,response_code="200",le="100"} 0`,
		`istio_request_duration_milliseconds_bucket{` + canary + `,response_code="200",le="250"} 180`,
		`istio_request_duration_milliseconds_bucket{` + canary + `,response_code="500",le="250"} 20`,
		`istio_request_duration_milliseconds_sum{` + canary + `,response_code="200"} 21600`,
		`istio_request_duration_milliseconds_count{` + canary + `,response_code="500"} 20`,
		`istio_requests_total{` + primary + `,response_code="200"} 20`,
		`istio_request_duration_milliseconds_bucket{` + primary + `,response_code="200",le="25"} 0`,
		`istio_request_duration_milliseconds_bucket{` + primary + `,response_code="200",le="50"} 20`,
		// An explicit workload, and no Service.
		`istio_requests_total{destination_service_name="unknown",destination_service_namespace="shop",destination_workload="web",destination_workload_namespace="shop",namespace="shop",pod="web-1",reporter="destination",response_code="200"} 2`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	// A code's series appear with its first request, as a client library creates them.
	assert.NotContains(t, body, primary+`,response_code="500"`)
	assert.NotContains(t, body, `pod="idle-6c8d9-qwert",reporter`)
}

func TestExporterEnvoySeries(t *testing.T) {
	e := StartExporter(t)
	// Two pods behind one Service share its cluster.
	e.SetTraffic("shop", "podinfo-7d9c8-abcde", Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 120 * time.Millisecond, Service: "podinfo-canary"})
	e.SetTraffic("shop", "podinfo-7d9c8-fghij", Traffic{RequestsPerScrape: 50, Latency: 30 * time.Millisecond, Service: "podinfo-canary"})
	e.SetTraffic("shop", "podinfo-primary-5f6b7-xyz12", Traffic{RequestsPerScrape: 10, Latency: 30 * time.Millisecond, Service: "podinfo-primary", Port: 9898})
	e.SetTraffic("shop", "web-1", Traffic{RequestsPerScrape: 10})

	scrape(t, e)
	body := scrape(t, e)
	for _, line := range []string{
		`envoy_cluster_upstream_rq{envoy_cluster_name="shop_podinfo-canary_80",envoy_response_code="200"} 280`,
		`envoy_cluster_upstream_rq{envoy_cluster_name="shop_podinfo-canary_80",envoy_response_code="500"} 20`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="shop_podinfo-canary_80",le="25"} 0`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="shop_podinfo-canary_80",le="50"} 100`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="shop_podinfo-canary_80",le="250"} 300`,
		`envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="shop_podinfo-canary_80"} 27000`,
		`envoy_cluster_upstream_rq_time_count{envoy_cluster_name="shop_podinfo-canary_80"} 300`,
		`envoy_cluster_upstream_rq{envoy_cluster_name="shop_podinfo-primary_9898",envoy_response_code="200"} 20`,
		`envoy_cluster_upstream_rq_time_count{envoy_cluster_name="shop_podinfo-primary_9898"} 20`,
	} {
		assert.Contains(t, body, line+"\n")
	}
	assert.NotContains(t, body, `envoy_cluster_name="shop_podinfo-primary_9898",envoy_response_code="500"`)
	assert.Equal(t, 3, strings.Count(body, "envoy_cluster_upstream_rq{"), "one series per cluster and code seen, none for a pod without a Service")

	// The cluster belongs to the proxy: removing a pod keeps what it counted.
	e.RemoveTraffic("shop", "podinfo-7d9c8-abcde")
	body = scrape(t, e)
	assert.Contains(t, body, `envoy_cluster_upstream_rq{envoy_cluster_name="shop_podinfo-canary_80",envoy_response_code="200"} 330`+"\n")
	assert.Contains(t, body, `envoy_cluster_upstream_rq{envoy_cluster_name="shop_podinfo-canary_80",envoy_response_code="500"} 20`+"\n")
}

func TestExporterNeverServesOpenMetrics(t *testing.T) {
	e := StartExporter(t)
	e.SetTraffic("shop", "podinfo-7d9c8-abcde", Traffic{RequestsPerScrape: 1, Service: "podinfo-canary"})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.URL(), nil)
	require.NoError(t, err)
	// What Prometheus asks for first.
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	assert.Contains(t, string(body), `envoy_cluster_upstream_rq{envoy_cluster_name="shop_podinfo-canary_80",envoy_response_code="200"} 1`+"\n")
	assert.NotContains(t, string(body), "envoy_cluster_upstream_rq_total")
}

func TestTrafficWorkload(t *testing.T) {
	for _, tt := range []struct {
		pod      string
		workload string
		want     string
	}{
		{"podinfo-7d9c8b6f4-abcde", "", "podinfo"},
		{"podinfo-primary-5f6b7c8d9-xyz12", "", "podinfo-primary"},
		{"web-1", "", "web-1"},
		{"podinfo-7d9c8b6f4-abcde", "podinfo-v2", "podinfo-v2"},
	} {
		assert.Equal(t, tt.want, Traffic{Workload: tt.workload}.workload(tt.pod), tt.pod)
	}
}

func TestExporterConcurrentUse(t *testing.T) {
	e := StartExporter(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			pod := fmt.Sprintf("web-%d", i)
			for j := range 20 {
				e.SetTraffic("shop", pod, Traffic{RequestsPerScrape: j})
				resp, err := http.Get(e.URL())
				if assert.NoError(t, err) {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					assert.Equal(t, http.StatusOK, resp.StatusCode)
				}
				e.RemoveTraffic("shop", pod)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 80, e.Scrapes())
}

func TestExporterClose(t *testing.T) {
	e, err := NewExporter()
	require.NoError(t, err)
	e.Close()
	e.Close() // idempotent
	_, err = http.Get(e.URL())
	assert.Error(t, err)
}
