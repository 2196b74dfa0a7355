package testprom

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartScrapesExporter(t *testing.T) {
	e := StartExporter(t)
	e.SetTraffic("shop", "web-1", Traffic{RequestsPerScrape: 10, ErrorRatio: 0.5})
	p := Start(t, e.Addr())
	assert.True(t, strings.HasPrefix(p.URL(), "http://127.0.0.1:"), p.URL())

	// honor_labels keeps the exporter's namespace and pod labels as they are.
	p.WaitForSeries(t, `rate(http_requests_total{job="testprom",namespace="shop",pod="web-1",code="500"}[10s]) > 0`, 20*time.Second)
	assert.GreaterOrEqual(t, e.Scrapes(), 2)
}

func TestStartProcessAndStop(t *testing.T) {
	p, err := StartProcess()
	require.NoError(t, err)
	resp, err := http.Get(p.URL() + "/-/ready")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, p.LogTail(100), "Server is ready to receive web requests.")

	p.Stop()
	p.Stop() // idempotent
	select {
	case <-p.exited:
	default:
		t.Fatal("process still running after Stop")
	}
	assert.NoDirExists(t, p.dir)
	_, err = http.Get(p.URL() + "/-/ready")
	assert.Error(t, err)
}

func TestStartProcessWithoutBinary(t *testing.T) {
	t.Setenv(BinaryEnv, filepath.Join(t.TempDir(), "prometheus"))
	_, err := StartProcess()
	require.Error(t, err)
	assert.ErrorContains(t, err, "make test")
}

func TestStartProcessBadTarget(t *testing.T) {
	_, err := StartProcess("no-port")
	assert.ErrorContains(t, err, "not host:port")
}

func TestConfig(t *testing.T) {
	want := `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: testprom
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:1234", "127.0.0.1:5678"]
`
	assert.Equal(t, want, string(config([]string{"127.0.0.1:1234", "127.0.0.1:5678"}, "")))
}
