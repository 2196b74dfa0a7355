package scale

import (
	"context"
	"testing"
	"time"
)

// TestIdleIntervalWritesNothing runs the benchmark small: a few Canaries on short intervals, an
// idle window of several intervals in which every Canary is woken (an annotation on its target)
// and the controller must neither read from the apiserver nor write, and a wave in which one
// Canary rolls out (so the counts are seen to count).
func TestIdleIntervalWritesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Canaries: 10, Interval: 2 * time.Second, Idle: 8 * time.Second, Wave: 0.1, Poke: true,
		InitTimeout: 2 * time.Minute, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Table())
	if n := res.Idle.writes(); n != 0 {
		t.Errorf("the controller wrote %d times in an idle window of %s: %s", n, res.Config.Idle, res.Idle.summary())
	}
	if n := res.Idle.reads(); n != 0 {
		t.Errorf("the controller read %d times from the apiserver in an idle window of %s, where its cache has all it needs: %s", n, res.Config.Idle, res.Idle.summary())
	}
	if int(res.IdleLate.total) < res.Config.Canaries {
		t.Errorf("%d reconciles in the idle window, fewer than the %d Canaries woken: the window measured too little", int(res.IdleLate.total), res.Config.Canaries)
	}
	if res.Wave.writes() == 0 {
		t.Errorf("the wave's rollout wrote nothing the audit log saw: %s", res.Wave.summary())
	}
}
