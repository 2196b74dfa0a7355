package scale

import (
	"cmp"
	"fmt"
	"strings"
)

// Table is the result as one Markdown table, with the requests behind the counts below it.
func (r Result) Table() string {
	cfg := r.Config
	intervals := cfg.Idle.Seconds() / cfg.Interval.Seconds()
	per := func(n int) string {
		return fmt.Sprintf("%.2f", float64(n)/float64(cfg.Canaries)/intervals)
	}
	mib := func(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }
	var b strings.Builder
	fmt.Fprintf(&b, "| Canaries | interval | initialise all | controller RSS max / idle | CPU s per idle minute | reads per Canary per interval | writes per Canary per interval | lateness p50 / p99 idle | wave | lateness p50 / p99 wave | apiserver RSS | etcd RSS |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	wave, waveLate := "—", "—"
	if r.WaveCanaries > 0 {
		wave = fmt.Sprintf("%d done in %s", r.WaveCanaries, r.WaveDone.Round(100_000_000))
		waveLate = describeBound(r.WaveLate.quantile(0.5)) + " / " + describeBound(r.WaveLate.quantile(0.99))
	}
	fmt.Fprintf(&b, "| %d | %s | %s | %s / %s | %.2f | %s | %s | %s / %s | %s | %s | %s | %s |\n",
		cfg.Canaries, cfg.Interval, r.Init.Round(100_000_000), mib(r.RSSMax), mib(r.RSSIdle), r.CPUPerIdleMinute,
		per(r.Idle.reads()), per(r.Idle.writes()),
		describeBound(r.IdleLate.quantile(0.5)), describeBound(r.IdleLate.quantile(0.99)),
		wave, waveLate, mib(r.APIServerRSS), mib(r.EtcdRSS))
	fmt.Fprintf(&b, "\nLateness is %s: quantiles are interpolated within a bucket, as histogram_quantile does.\n", cmp.Or(r.IdleLate.metric, r.WaveLate.metric))
	fmt.Fprintf(&b, "Controller heap after a GC at the end of the idle window: %s.\n", mib(r.LiveHeap))
	if r.Config.Unrelated > 0 {
		fmt.Fprintf(&b, "Beside them: %d Deployments and %d headless Services no Canary targets, with kubectl's last-applied annotation.\n", r.Config.Unrelated, r.Config.Unrelated)
	}
	fmt.Fprintf(&b, "Idle window %s (%.1f intervals): %d requests: %s; %d queue waits, %.1f%% over 1s.\n",
		cfg.Idle, intervals, r.Idle.total(), r.Idle.summary(), int(r.IdleLate.total), 100*r.IdleLate.over(1))
	if r.WaveCanaries > 0 {
		fmt.Fprintf(&b, "Wave: %d requests: %s; %d queue waits, %.1f%% over 1s.\n",
			r.Wave.total(), r.Wave.summary(), int(r.WaveLate.total), 100*r.WaveLate.over(1))
	}
	return b.String()
}
