package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/test/e2e/dataplane"
)

// Env is the whole machine-local installation the scenarios share: the cluster, the node
// agent, the data plane that plays the Gateway, and Prometheus scraping the data plane and
// every pod. Each scenario adds its own namespace, controller and load (see App).
type Env struct {
	Dir        string
	Cluster    *Cluster
	Agent      *NodeAgent
	DataPlane  *dataplane.DataPlane
	Prometheus *testprom.Prometheus
	// Trafficctl is the built controller binary.
	Trafficctl string
	// fileSD is the file the node agent lists the pods in, for Prometheus.
	fileSD string
}

// StartEnv builds the binaries and starts everything; dir keeps logs and configuration.
// On error, whatever was started is stopped.
func StartEnv(ctx context.Context, dir string) (_ *Env, err error) {
	ctrl.SetLogger(logr.Discard())
	if err := errors.Join(os.MkdirAll(filepath.Join(dir, "pods"), 0o755), os.MkdirAll(filepath.Join(dir, "prometheus"), 0o755)); err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	demoapp, err := Build(ctx, "./test/e2e/demoapp", "demoapp")
	if err != nil {
		return nil, err
	}
	if e.Trafficctl, err = Build(ctx, "./cmd/trafficctl", "trafficctl"); err != nil {
		return nil, err
	}
	if e.Cluster, err = StartCluster(ctx, dir); err != nil {
		return nil, err
	}
	fileSD := filepath.Join(dir, "pods.json")
	if e.Agent, err = StartNodeAgent(ctx, e.Cluster, demoapp, filepath.Join(dir, "pods"), fileSD); err != nil {
		return nil, fmt.Errorf("starting the node agent: %w", err)
	}
	if e.DataPlane, err = dataplane.Start(ctx, dataplane.Options{
		Config: e.Cluster.Config(), ListenAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		GatewayName: GatewayName, GatewayNamespace: GatewayNamespace,
	}); err != nil {
		return nil, fmt.Errorf("starting the data plane: %w", err)
	}
	e.fileSD = fileSD
	if e.Prometheus, err = testprom.StartWith(e.PrometheusOptions(filepath.Join(dir, "prometheus"))); err != nil {
		return nil, fmt.Errorf("starting prometheus: %w", err)
	}
	return e, nil
}

// The Gateway the data plane plays; every Canary's route attaches to it.
const (
	GatewayName      = "public-gw"
	GatewayNamespace = "infra"
)

// PrometheusOptions are those of a Prometheus that scrapes what the environment's does (the data
// plane and every pod), keeping its data in dir: a scenario that stops and starts its own.
func (e *Env) PrometheusOptions(dir string) testprom.Options {
	return testprom.Options{Targets: []string{e.DataPlane.MetricsAddr()}, FileSD: e.fileSD, Dir: dir}
}

// Stop stops everything, the processes first, and waits for them.
func (e *Env) Stop() {
	if e.Prometheus != nil {
		e.Prometheus.Stop()
	}
	if e.DataPlane != nil {
		e.DataPlane.Stop()
	}
	if e.Agent != nil {
		e.Agent.Stop()
	}
	if e.Cluster != nil {
		e.Cluster.Stop()
	}
}

// eventually polls cond every 100ms until it holds or the timeout passes.
func eventually(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
