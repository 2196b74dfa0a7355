package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/trafficctl/trafficctl/controllers"
	"github.com/trafficctl/trafficctl/internal/apis"
)

// StartController runs a controller manager wired as the binary wires it, watching only
// namespace and asking the Prometheus at prometheusURL, with options changed by mods, and returns
// the function that stops it (also run when the test ends). Tests run one each, side by side in
// one process.
func StartController(t testing.TB, cfg *rest.Config, namespace, prometheusURL string, mods ...func(*controllers.Options)) (stop func()) {
	t.Helper()
	cacheOpts := controllers.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 apis.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cacheOpts,
		Client:                 controllers.ClientOptions(),
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating a controller manager: %v", err)
	}
	opts := controllers.Options{PrometheusAddress: prometheusURL, QueryTimeout: 2 * time.Second, Namespaces: []string{namespace}}
	for _, m := range mods {
		m(&opts)
	}
	if err := controllers.Setup(mgr, opts); err != nil {
		t.Fatalf("setting up the controllers: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("the controller manager stopped with an error: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
