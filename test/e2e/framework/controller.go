package framework

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Controller is `trafficctl controller` running as its built binary, with its real flags.
type Controller struct {
	opts ControllerOptions
	proc *Process
}

// ControllerOptions are the controller's command line, as a user would give it.
type ControllerOptions struct {
	Binary         string
	Kubeconfig     string
	Prometheus     string
	WatchNamespace string
	LogDir         string
	// LogName is the log file in LogDir; restarts append to it.
	LogName string
}

// StartController starts the controller and waits until it reports ready.
func StartController(ctx context.Context, o ControllerOptions) (*Controller, error) {
	c := &Controller{opts: o}
	return c, c.Start(ctx)
}

// Start starts the controller process (again, after Kill or Stop). A port taken between
// choosing it and the controller binding it (by another test process) is chosen again.
func (c *Controller) Start(ctx context.Context) error {
	var err error
	for range 3 {
		if err = c.start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
	return err
}

func (c *Controller) start(ctx context.Context) error {
	probePort, err := FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return err
	}
	args := []string{"controller",
		"--kubeconfig=" + c.opts.Kubeconfig,
		"--prometheus-address=" + c.opts.Prometheus,
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(probePort),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
		"--zap-log-level=info",
	}
	if c.opts.WatchNamespace != "" {
		args = append(args, "--watch-namespace="+c.opts.WatchNamespace)
	}
	name := c.opts.LogName
	if name == "" {
		name = "trafficctl-controller.log"
	}
	proc, err := StartProcess(ctx, ProcessOptions{Name: "trafficctl", Path: c.opts.Binary, Args: args, LogDir: c.opts.LogDir, LogName: name})
	if err != nil {
		return err
	}
	c.proc = proc
	if err := WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort), 30*time.Second); err != nil {
		proc.Kill()
		return fmt.Errorf("controller not ready: %w\n%s", err, proc.Tail(20))
	}
	return nil
}

// Kill ends the controller with SIGKILL, mid-whatever it was doing.
func (c *Controller) Kill() { c.proc.Kill() }

// Stop ends the controller gracefully.
func (c *Controller) Stop() {
	if c.proc != nil {
		c.proc.Stop()
	}
}

// Tail is the end of the controller's log.
func (c *Controller) Tail(n int) string { return c.proc.Tail(n) }
