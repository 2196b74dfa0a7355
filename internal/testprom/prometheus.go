package testprom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/trafficctl/trafficctl/internal/freeport"
)

const (
	// ScrapeInterval is how often Prometheus scrapes its targets and evaluates rules. A rate()
	// needs two samples in its window, so the first result comes about two intervals after the
	// series appear.
	ScrapeInterval = time.Second

	// JobName is the job label of every scraped series.
	JobName = "testprom"

	readyTimeout  = 30 * time.Second
	pollInterval  = 100 * time.Millisecond
	startAttempts = 3
	logTailLines  = 40
)

// Prometheus is a running Prometheus server on a loopback port, scraping fixed targets.
type Prometheus struct {
	url     string
	dir     string
	ownsDir bool
	logPath string
	logFile *os.File
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited
	client  *http.Client  // trusts the server's certificate and sends its credentials
	api     promv1.API

	stopOnce sync.Once
}

// Start runs Prometheus for the test, scraping scrapeTargets (host:port of /metrics pages,
// such as Exporter.Addr) every second. It is killed when the test ends, and the tail of its log
// is printed if the test failed. A missing binary fails the test rather than skipping it: the
// tests are meant to run against the real server.
func Start(t testing.TB, scrapeTargets ...string) *Prometheus {
	t.Helper()
	return StartOptions(t, Options{Targets: scrapeTargets})
}

// StartOptions runs Prometheus for the test like Start, with the options that Start has no
// arguments for, such as TLS or basic auth; o.Dir defaults to a directory of the test.
func StartOptions(t testing.TB, o Options) *Prometheus {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	p, err := startConfig(o.Dir, false, o)
	if err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("prometheus log (%s), last lines:\n%s", p.logPath, p.LogTail(logTailLines))
		}
	})
	return p
}

// StartProcess runs Prometheus like Start, for a TestMain that has no testing.TB. The caller
// must call Stop, which also removes the server's storage.
func StartProcess(scrapeTargets ...string) (*Prometheus, error) {
	dir, err := os.MkdirTemp("", "testprom-")
	if err != nil {
		return nil, fmt.Errorf("create prometheus directory: %w", err)
	}
	p, err := startConfig(dir, true, Options{Targets: scrapeTargets})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// Options configure a Prometheus started by StartWith.
type Options struct {
	// Targets are host:port of /metrics pages scraped as they are (job JobName).
	Targets []string
	// FileSD is a file_sd JSON file of further targets with their labels (job "pods"), the way
	// a kubernetes-pods scrape labels each pod's series with namespace and pod. Prometheus
	// rereads it whenever it changes.
	FileSD string
	// Dir holds the configuration, storage and log; a new temporary directory when empty,
	// removed by Stop.
	Dir string
	// TLS, when set, serves the HTTP API over HTTPS with this certificate (see
	// GenerateServerCert), so that a test can check how a client verifies the server. URL then
	// starts with https.
	TLS *ServerCert
	// BasicAuth, when not empty, maps user names to the passwords the server accepts as basic
	// auth; it answers 401 to every request without one of them, /-/ready included.
	BasicAuth map[string]string
	// Port, when set, is the loopback port it listens on, so that a test can stop it and start
	// it again where its clients look for it; a free one otherwise.
	Port int
}

// StartWith runs Prometheus with the given options; the caller must call Stop.
func StartWith(o Options) (*Prometheus, error) {
	dir, owns := o.Dir, false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "testprom-"); err != nil {
			return nil, fmt.Errorf("create prometheus directory: %w", err)
		}
		owns = true
	}
	p, err := startConfig(dir, owns, o)
	if err != nil && owns {
		_ = os.RemoveAll(dir)
	}
	return p, err
}

func startConfig(dir string, ownsDir bool, o Options) (*Prometheus, error) {
	for _, target := range o.Targets {
		if _, _, err := net.SplitHostPort(target); err != nil {
			return nil, fmt.Errorf("scrape target %q is not host:port: %w", target, err)
		}
	}
	binary, err := findBinary()
	if err != nil {
		return nil, err
	}
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, config(o.Targets, o.FileSD), 0o600); err != nil {
		return nil, fmt.Errorf("write prometheus config: %w", err)
	}
	web, err := newWebSettings(dir, o.TLS, o.BasicAuth)
	if err != nil {
		return nil, err
	}

	// The free port is only reserved until it is closed; if another process takes it before
	// Prometheus binds, try again with another one.
	for attempt := 1; ; attempt++ {
		p, err := launch(binary, configPath, web, dir, ownsDir, attempt, o.Port)
		if err == nil {
			return p, nil
		}
		if attempt < startAttempts && errors.Is(err, errAddressInUse) && o.Port == 0 {
			continue
		}
		return nil, err
	}
}

var errAddressInUse = errors.New("listen address already in use")

func launch(binary, configPath string, web *webSettings, dir string, ownsDir bool, attempt, port int) (*Prometheus, error) {
	if port == 0 {
		var err error
		if port, err = freeport.Port(); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create prometheus log: %w", err)
	}
	address := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"--config.file=" + configPath,
		"--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--web.listen-address=" + address,
	}
	if web.configPath != "" {
		args = append(args, "--web.config.file="+web.configPath)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := startProcess(cmd); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("run %s: %w", binary, err)
	}

	p := &Prometheus{
		url:     web.scheme + "://" + address,
		dir:     dir,
		ownsDir: ownsDir,
		logPath: logPath,
		logFile: logFile,
		cmd:     cmd,
		exited:  make(chan struct{}),
		client:  &http.Client{Transport: web.transport, Timeout: time.Second},
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	client, err := promapi.NewClient(promapi.Config{Address: p.url, RoundTripper: web.transport})
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("create prometheus client: %w", err)
	}
	p.api = promv1.NewAPI(client)

	if err := p.waitReady(); err != nil {
		p.kill()
		tail := p.LogTail(logTailLines)
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %w", errAddressInUse, err)
		}
		return nil, fmt.Errorf("%w; log %s, last lines:\n%s", err, logPath, tail)
	}
	return p, nil
}

// config is the prometheus.yml for one job that scrapes targets, keeping the labels the
// targets expose (namespace, pod) as they are.
func config(targets []string, fileSD string) []byte {
	quoted := make([]string, len(targets))
	for i, target := range targets {
		quoted[i] = strconv.Quote(target)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		model.Duration(ScrapeInterval), model.Duration(ScrapeInterval), model.Duration(ScrapeInterval))
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: %s\n    honor_labels: true\n    static_configs:\n      - targets: [%s]\n",
		JobName, strings.Join(quoted, ", "))
	if fileSD != "" {
		fmt.Fprintf(&b, "  - job_name: pods\n    file_sd_configs:\n      - files: [%s]\n        refresh_interval: %s\n",
			strconv.Quote(fileSD), model.Duration(ScrapeInterval))
	}
	return b.Bytes()
}

// waitReady polls /-/ready until it answers 200, the process exits, or readyTimeout passes.
func (p *Prometheus) waitReady() error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		resp, err := p.client.Get(p.url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/-/ready answered %s", resp.Status)
		}
		lastErr = err
		select {
		case <-p.exited:
			return fmt.Errorf("prometheus exited before it was ready: %s", p.cmd.ProcessState)
		case <-deadline.C:
			return fmt.Errorf("prometheus not ready after %s: %w", readyTimeout, lastErr)
		case <-ticker.C:
		}
	}
}

// URL is the server's base address, such as http://127.0.0.1:41234, or https:// when it
// serves TLS.
func (p *Prometheus) URL() string { return p.url }

// WaitForSeries polls the instant query until its result is not empty, and fails the test if
// that takes longer than timeout. Rates need two scrapes inside their window, so a test waits
// here before it asserts on values.
func (p *Prometheus) WaitForSeries(t testing.TB, query string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if err := p.waitForSeries(ctx, query); err != nil {
		t.Fatalf("wait %s for series of %s: %v\nprometheus log (%s), last lines:\n%s",
			timeout, query, err, p.logPath, p.LogTail(logTailLines))
	}
}

func (p *Prometheus) waitForSeries(ctx context.Context, query string) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last string
	for {
		value, _, _, err := p.api.Query(ctx, query, time.Time{})
		switch {
		case err != nil:
			last = "error: " + err.Error()
		case !isEmpty(value):
			return nil
		default:
			last = "empty result"
		}
		select {
		case <-p.exited:
			return fmt.Errorf("prometheus exited: %s", p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %s)", ctx.Err(), last)
		case <-ticker.C:
		}
	}
}

// isEmpty reports whether a query result holds no series; a scalar is empty when it is NaN,
// which is what scalar() of an empty vector gives.
func isEmpty(value model.Value) bool {
	switch v := value.(type) {
	case model.Vector:
		return len(v) == 0
	case model.Matrix:
		return len(v) == 0
	case *model.Scalar:
		return math.IsNaN(float64(v.Value))
	case nil:
		return true
	default:
		return false
	}
}

// LogTail returns the last lines of the server's log, for a TestMain to print on failure. Call
// it before Stop, which removes the log of a server started by StartProcess.
func (p *Prometheus) LogTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Stop kills the server and waits for it to exit; for StartProcess it also removes the
// storage. It is safe to call more than once.
func (p *Prometheus) Stop() {
	p.stopOnce.Do(func() {
		p.kill()
		if p.ownsDir {
			_ = os.RemoveAll(p.dir)
		}
	})
}

// kill ends the process, waits until it has exited and closes its log.
func (p *Prometheus) kill() {
	_ = p.cmd.Process.Kill() // fails only if it has already exited
	<-p.exited
	_ = p.logFile.Close()
}
