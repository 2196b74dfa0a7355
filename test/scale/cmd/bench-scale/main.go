// Command bench-scale runs the scale benchmark and prints its table: see package scale.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trafficctl/trafficctl/test/scale"
)

func main() {
	var cfg scale.Config
	flag.IntVar(&cfg.Canaries, "n", 1000, "how many Canaries")
	flag.DurationVar(&cfg.Interval, "interval", time.Minute, "every Canary's analysis.interval")
	flag.DurationVar(&cfg.Idle, "idle", 5*time.Minute, "how long the idle window lasts")
	flag.Float64Var(&cfg.Wave, "wave", 0.1, "share of targets changed at once after the idle window; 0 for none")
	flag.BoolVar(&cfg.Poke, "poke", true, "wake every Canary once in the idle window's first interval, paced evenly (an annotation on its target)")
	flag.IntVar(&cfg.Workers, "workers", 0, "the controller's --concurrent-canaries; its default when 0")
	flag.StringVar(&cfg.Binary, "binary", "", "controller binary; built into bin/trafficctl when empty")
	flag.IntVar(&cfg.Unrelated, "unrelated", 0, "how many Deployments (each with a headless Service) no Canary targets are created beside, as kubectl apply leaves them")
	flag.DurationVar(&cfg.InitTimeout, "timeout", 30*time.Minute, "how long initialisation and the wave may each take")
	flag.Func("controller-arg", "a further flag for the controller, such as --pprof-bind-address=127.0.0.1:6060 (repeatable)", func(v string) error {
		cfg.ControllerArgs = append(cfg.ControllerArgs, v)
		return nil
	})
	floor := flag.Bool("floor", false, "time the apiserver alone creating what initialisation creates (no controller), instead of the benchmark")
	flag.Parse()
	cfg.Logf = func(format string, args ...any) { log.Printf(format, args...) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *floor {
		res, err := scale.Floor(ctx, cfg)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.WriteString(os.Stdout, res.Table()); err != nil {
			log.Fatal(err)
		}
		return
	}
	res, err := scale.Run(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.WriteString(os.Stdout, res.Table()); err != nil {
		log.Fatal(err)
	}
}
