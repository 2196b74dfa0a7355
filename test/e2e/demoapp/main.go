package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// shutdownTimeout bounds the drain on SIGTERM; it stays below the node agent's five-second
// grace period so that a stop never ends in a SIGKILL.
const shutdownTimeout = 3 * time.Second

// config is the app's behaviour, read from the environment once at start.
type config struct {
	listenAddr   string
	version      string
	errorRate    float64
	latency      time.Duration
	crash        bool
	podName      string
	podNamespace string
	// greeting is GREETING, a value a test gives through a ConfigMap (envFrom), read at start.
	greeting string
	// configFile is MOUNT_ROOT joined with CONFIG_FILE: a mounted ConfigMap key, read at every
	// request, so its changes show as a kubelet propagates them.
	configFile string
}

// loadConfig reads the configuration through getenv; an empty variable takes its default.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		listenAddr:   getenv("LISTEN_ADDR"),
		version:      getenv("VERSION"),
		podName:      getenv("POD_NAME"),
		podNamespace: getenv("POD_NAMESPACE"),
		greeting:     getenv("GREETING"),
	}
	if f := getenv("CONFIG_FILE"); f != "" {
		c.configFile = filepath.Join(getenv("MOUNT_ROOT"), f)
	}
	if c.listenAddr == "" {
		return c, errors.New("LISTEN_ADDR is required, as host:port")
	}
	if _, _, err := net.SplitHostPort(c.listenAddr); err != nil {
		return c, fmt.Errorf("LISTEN_ADDR %q is not host:port: %w", c.listenAddr, err)
	}
	if c.version == "" {
		c.version = "unknown"
	}
	if v := getenv("ERROR_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
			return c, fmt.Errorf("ERROR_RATE %q must be a number between 0 and 1", v)
		}
		c.errorRate = r
	}
	if v := getenv("LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("LATENCY %q must be a non-negative Go duration such as 50ms", v)
		}
		c.latency = d
	}
	if v := getenv("CRASH"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("CRASH %q must be true or false", v)
		}
		c.crash = b
	}
	return c, nil
}

func main() { os.Exit(run()) }

func run() int {
	c, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoapp: invalid configuration:", err)
		return 2
	}
	if c.crash {
		fmt.Fprintf(os.Stderr, "demoapp %s: CRASH=true, exiting with status 1\n", c.version)
		return 1
	}
	ln, err := net.Listen("tcp", c.listenAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		return 1
	}
	srv := &http.Server{Handler: newHandler(c), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "demoapp %s: pod %s/%s serving on %s (error rate %g, latency %s)\n",
		c.version, c.podNamespace, c.podName, ln.Addr(), c.errorRate, c.latency)

	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintln(os.Stderr, "demoapp: shutting down:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "demoapp %s: stopped\n", c.version)
	return 0
}
