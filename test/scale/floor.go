package scale

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FloorResult is what the apiserver alone takes to create the objects that trafficctl creates
// when it initialises Canaries, with no controller running: the floor under the benchmark's time
// to initialise.
type FloorResult struct {
	Canaries int
	// Apps is the time to create the apps (ConfigMap, Deployment, Service, Canary each).
	Apps time.Duration
	// Services is the time to create a primary and a canary ClusterIP Service per Canary, as
	// trafficctl does; ConfigMaps the time to create as many ConfigMaps, the same writes without
	// a ClusterIP to allocate.
	Services, ConfigMaps time.Duration
	// ServicesFirst and ServicesLast are the creation rates over the first and the last tenth of
	// the Services.
	ServicesFirst, ServicesLast float64
	APIServerRSS                int64
}

// Floor creates cfg.Canaries apps on a fresh local apiserver, then, with the same 32 clients,
// two ConfigMaps per app and two Services per app, and times each.
func Floor(ctx context.Context, cfg Config) (res FloorResult, err error) {
	cfg = withDefaults(cfg)
	res.Canaries = cfg.Canaries
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := startTempCluster(ctx, "trafficctl-floor-")
	if err != nil {
		return res, err
	}
	defer func() {
		cancel()
		if serr := cl.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	c := cl.client
	apiserver := findProcess("kube-apiserver", "--audit-log-path="+cl.audit.path)
	mem := newSampler(0, apiserver, 0)
	go mem.run(ctx)

	start := time.Now()
	if err := parallel(ctx, cfg.Canaries, 32, func(i int) error { return createApp(ctx, c, i, cfg.Interval) }); err != nil {
		return res, err
	}
	res.Apps = time.Since(start)
	cfg.Logf("%d apps created in %s", cfg.Canaries, res.Apps.Round(time.Second))

	n := 2 * cfg.Canaries
	start = time.Now()
	err = parallel(ctx, n, 32, func(i int) error {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-floor-%d", appName(i/2), i%2), Namespace: namespace},
			Data:       map[string]string{"GREETING": "hello"},
		}
		return c.Create(ctx, cm)
	})
	if err != nil {
		return res, err
	}
	res.ConfigMaps = time.Since(start)
	cfg.Logf("%d ConfigMaps created in %s", n, res.ConfigMaps.Round(time.Second))

	tenth := max(n/10, 1)
	var done atomic.Int64
	var firstAt, lastFrom time.Time
	start = time.Now()
	err = parallel(ctx, n, 32, func(i int) error {
		name := fmt.Sprintf("%s-%s", appName(i/2), []string{"primary", "canary"}[i%2])
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": name},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}},
			},
		}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
		switch k := done.Add(1); {
		case k == int64(tenth):
			firstAt = time.Now()
		case k == int64(n-tenth):
			lastFrom = time.Now()
		case k%int64(max(n/20, 1)) == 0:
			cfg.Logf("%d of %d Services created in %s", k, n, time.Since(start).Round(time.Second))
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Services = time.Since(start)
	res.ServicesFirst = float64(tenth) / firstAt.Sub(start).Seconds()
	res.ServicesLast = float64(tenth) / time.Since(lastFrom).Seconds()
	cfg.Logf("%d Services created in %s", n, res.Services.Round(time.Second))

	_, res.APIServerRSS, _ = mem.max()
	return res, nil
}

// Table is the floor as one Markdown table.
func (r FloorResult) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| Canaries | create the apps | %d ClusterIP Services | rate, first / last tenth | %d ConfigMaps | apiserver RSS |\n", 2*r.Canaries, 2*r.Canaries)
	fmt.Fprintf(&b, "|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %s | %s | %.0f / %.0f per s | %s | %d MiB |\n", r.Canaries, r.Apps.Round(time.Second),
		r.Services.Round(time.Second), r.ServicesFirst, r.ServicesLast, r.ConfigMaps.Round(time.Second), r.APIServerRSS>>20)
	return b.String()
}
