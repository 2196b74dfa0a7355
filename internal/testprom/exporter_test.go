package testprom

import (
	"fmt"
	"io"
	"net/http"
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
	} {
		assert.Panics(t, func() { e.SetTraffic("shop", "web-1", traffic) }, "%+v", traffic)
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
