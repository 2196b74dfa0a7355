package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/test/e2e/framework"
	"github.com/trafficctl/trafficctl/test/e2e/load"
)

const rate = 50

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "\ninterrupted; everything the demo started has been stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// result is one rollout, for the summary.
type result struct {
	name, version, phase, reason string
	took                         time.Duration
	weights                      []int32
	traffic                      load.Counts
}

func run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "trafficctl-demo-")
	if err != nil {
		return err
	}
	started := time.Now()
	fmt.Fprintln(out, "== Starting a cluster on this machine: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,")
	fmt.Fprintln(out, "   a node agent running pods as local processes, a Gateway data plane, Prometheus")
	env, err := framework.StartEnv(ctx, dir)
	if err != nil {
		return err
	}
	defer func() {
		env.Stop()
		_ = os.RemoveAll(dir)
	}()
	fmt.Fprintf(out, "   up in %s (logs: %s)\n\n", time.Since(started).Round(100*time.Millisecond), dir)

	fmt.Fprintf(out, "== Deploying podinfo 1.0.0 (2 pods) with a Canary: steps 20%% and 50%%, checks every 10s,\n")
	fmt.Fprintf(out, "   success rate >= 99%% and p99 latency <= 100ms, rollback after 2 failed checks; %d requests/s of load\n", rate)
	app, err := env.NewApp(ctx, framework.AppOptions{Namespace: "demo", Initial: framework.Version{Tag: "1.0.0"}, Rate: rate})
	if err != nil {
		return err
	}
	defer app.Stop()
	cn, _ := app.Canary(ctx)
	fmt.Fprintf(out, "   %s: %s\n\n", cn.Status.Phase, readyMessage(cn))

	var results []result
	for _, r := range []struct {
		name string
		v    framework.Version
	}{
		{"healthy release", framework.Version{Tag: "2.0.0"}},
		{"faulty release (10% errors)", framework.Version{Tag: "3.0.0", ErrorRate: 0.1}},
	} {
		res, err := rollout(ctx, out, app, r.name, r.v)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	summary(out, results)
	if err := showCLI(ctx, out, env); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDemo finished in %s; stopping everything.\n", time.Since(started).Round(time.Second))
	return nil
}

// showCLI runs the trafficctl command line, the built binary, on the rollouts the demo made.
func showCLI(ctx context.Context, out io.Writer, env *framework.Env) error {
	for _, args := range [][]string{
		{"get", "-n", "demo"},
		{"history", "podinfo", "-n", "demo"},
		{"explain", "podinfo", "-n", "demo"},
	} {
		fmt.Fprintf(out, "\n$ trafficctl %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, env.Trafficctl, append(args, "--kubeconfig", env.Cluster.Kubeconfig)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("trafficctl %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// rollout releases a version and prints a line a second until the Canary settles.
func rollout(ctx context.Context, out io.Writer, app *framework.App, name string, v framework.Version) (result, error) {
	fmt.Fprintf(out, "== %s: podinfo %s\n", strings.ToUpper(name[:1])+name[1:], v.Tag)
	weightsBefore := len(app.RouteWeights())
	trafficBefore := app.Load.Counts()
	start := time.Now()
	if err := app.Release(ctx, v); err != nil {
		return result{}, err
	}
	const row = "%5s  %-12s  %4s  %-22s  %-14s  %-7s  %s\n"
	fmt.Fprintf(out, row, "time", "phase", "step", "route primary/canary", "users on "+v.Tag, "errors", "latest checks")
	last := app.Load.Counts()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return result{}, ctx.Err()
		case <-tick.C:
		}
		cn, err := app.Canary(ctx)
		if err != nil {
			return result{}, err
		}
		now := app.Load.Counts()
		second := now.Sub(last)
		last = now
		fmt.Fprintf(out, row, fmt.Sprintf("%.0fs", time.Since(start).Seconds()), cn.Status.Phase, fmt.Sprint(cn.Status.Step),
			fmt.Sprintf("%d%% / %d%%", 100-cn.Status.CanaryWeight, cn.Status.CanaryWeight),
			fmt.Sprintf("%.0f%%", 100*second.Share(v.Tag)), fmt.Sprintf("%.1f%%", 100*second.ErrorRate()), checks(cn))
		settled := cn.Status.LastAppliedSpec != "" && time.Since(start) > 2*time.Second &&
			(cn.Status.Phase == v1alpha1.PhaseSucceeded || cn.Status.Phase == v1alpha1.PhaseFailed)
		if settled {
			fmt.Fprintf(out, "   => %s: %s\n\n", cn.Status.Phase, readyMessage(cn))
			return result{
				name: name, version: v.Tag, phase: string(cn.Status.Phase), reason: readyReason(cn),
				took: time.Since(start), weights: app.RouteWeights()[weightsBefore:], traffic: app.Load.Counts().Sub(trafficBefore),
			}, nil
		}
		if time.Since(start) > 5*time.Minute {
			return result{}, fmt.Errorf("the rollout did not settle in 5 minutes: %s", framework.Describe(cn))
		}
	}
}

// checks renders the latest round of decisions: name=value (bound) and a pass/fail mark.
func checks(cn *v1alpha1.Canary) string {
	if len(cn.Status.Decisions) == 0 {
		return "-"
	}
	latest := cn.Status.Decisions[0].Time
	var parts []string
	for _, d := range cn.Status.Decisions {
		if !d.Time.Equal(&latest) {
			break
		}
		value := d.Value
		if value == "" {
			value = string(d.Verdict)
		}
		mark := map[v1alpha1.Verdict]string{v1alpha1.VerdictPass: "ok", v1alpha1.VerdictFail: "FAIL"}[d.Verdict]
		parts = append(parts, fmt.Sprintf("%s=%s (%s) %s", d.Metric, value, d.Bound, mark))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func readyMessage(cn *v1alpha1.Canary) string {
	for _, c := range cn.Status.Conditions {
		if c.Type == "Ready" {
			return c.Message
		}
	}
	return ""
}

func readyReason(cn *v1alpha1.Canary) string {
	for _, c := range cn.Status.Conditions {
		if c.Type == "Ready" {
			return c.Reason
		}
	}
	return ""
}

func summary(out io.Writer, results []result) {
	fmt.Fprintln(out, "== Summary")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "rollout\tversion\tresult\treason\ttook\troute weights (canary %)\trequests\tserved by it\tfailed requests")
	for _, r := range results {
		weights := make([]string, len(r.weights))
		for i, w := range r.weights {
			weights[i] = fmt.Sprint(w)
		}
		failed := r.traffic.Errors
		for code, n := range r.traffic.ByCode {
			if code >= 500 {
				failed += n
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", r.name, r.version, r.phase, r.reason,
			r.took.Round(time.Second), strings.Join(weights, " -> "), r.traffic.Total, r.traffic.ByVersion[r.version], failed)
	}
	tw.Flush()
}
