package controllers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/hooks"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
	"github.com/trafficctl/trafficctl/providers/netguard"
	"github.com/trafficctl/trafficctl/providers/notify"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/providers/router/istio"
	"github.com/trafficctl/trafficctl/providers/router/kubernetes"
	"github.com/trafficctl/trafficctl/rollout"
)

// Options are the controller's settings that come from its command line.
type Options struct {
	// PrometheusAddress answers the queries of built-in metrics and of templates without an
	// address of their own.
	PrometheusAddress string
	// QueryTimeout bounds every metric query.
	QueryTimeout time.Duration
	// Clock is the time source; the real clock when nil.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles is how many Canaries are reconciled at once; 4 when unset.
	MaxConcurrentReconciles int
	// Delivery configures how alerts and event webhooks are delivered; zero fields take the
	// Dispatcher's defaults.
	Delivery notify.DispatcherOptions
	// AllowCrossNamespaceRefs lets a Canary name a MetricTemplate or AlertProvider of another
	// namespace (whose Secrets the controller then reads on its behalf); refused by default.
	AllowCrossNamespaceRefs bool
	// URLPolicy is which addresses the controller may call for a Canary, an AlertProvider or a
	// MetricTemplate; nil is netguard.Default (link-local and metadata endpoints refused).
	URLPolicy *netguard.Policy
	// Namespaces are the namespaces the manager's cache watches, every one when empty; the
	// ConfigMaps and Secrets targets use are watched in the same ones.
	Namespaces []string
}

// Setup wires the Canary reconciler with its router and metric providers into a manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	timeout := opts.QueryTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	RegisterMetrics()
	delivery := opts.Delivery
	if delivery.Registerer == nil {
		delivery.Registerer = metrics.Registry
	}
	delivery.Logger = mgr.GetLogger().WithName("delivery")
	recorder := mgr.GetEventRecorder("trafficctl")
	delivery.OnFailure = func(j notify.Job, err error) {
		// The Canary's own event tells its owners; the address stays out of it.
		ns, name, _ := strings.Cut(j.Canary, "/")
		cn := &v1alpha1.Canary{}
		if gerr := mgr.GetClient().Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cn); gerr != nil {
			return
		}
		recorder.Eventf(cn, nil, corev1.EventTypeWarning, rollout.ReasonAlertDeliveryFailed, "Deliver", "%s", eventNote(fmt.Sprintf("Delivery to %s (%s) failed: %v.", j.Provider, j.Kind, err)))
	}
	dispatcher := notify.NewDispatcher(delivery)
	if err := mgr.Add(dispatcher); err != nil {
		return fmt.Errorf("adding the alert dispatcher: %w", err)
	}
	policy := netguard.Default()
	if opts.URLPolicy != nil {
		policy = *opts.URLPolicy
	}
	dial := policy.Dialer().DialContext
	// Every check makes a Provider; they share their HTTP transports through one Factory.
	queriers := prometheus.NewFactory(dial)
	r := &CanaryReconciler{
		URLPolicy:               policy,
		AllowCrossNamespaceRefs: opts.AllowCrossNamespaceRefs,
		Hooks: &hooks.Caller{Client: &http.Client{
			Transport:     policy.Transport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}},
		Deliveries:              dispatcher,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                recorder,
		Clock:                   clk,
		Routers:                 map[v1alpha1.Provider]Router{},
		Querier: func(cfg prometheus.Config) (MetricQuerier, error) {
			if cfg.Address == "" {
				cfg.Address = opts.PrometheusAddress
			}
			if cfg.Timeout <= 0 {
				cfg.Timeout = timeout
			}
			return queriers.New(cfg)
		},
	}
	// A router only for the route objects this cluster serves: watching a kind the apiserver does
	// not know would keep the manager from starting.
	served := func(obj client.Object) (bool, error) {
		gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
		if err != nil {
			return false, err
		}
		_, err = mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		return err == nil, err
	}
	providers := []struct {
		provider v1alpha1.Provider
		route    client.Object
		router   Router
	}{
		{v1alpha1.ProviderGatewayAPI, &gatewayv1.HTTPRoute{}, gatewayapi.New(mgr.GetClient(), FieldManager)},
		{v1alpha1.ProviderIstio, &istionetv1.VirtualService{}, istio.New(mgr.GetClient(), FieldManager)},
	}
	for _, p := range providers {
		ok, err := served(p.route)
		if err != nil {
			return fmt.Errorf("looking up %T: %w", p.route, err)
		}
		if !ok {
			mgr.GetLogger().Info("route kind not served by this cluster; its provider is unavailable", "provider", p.provider, "kind", fmt.Sprintf("%T", p.route))
			continue
		}
		r.Routers[p.provider] = p.router
		r.RouteTypes = append(r.RouteTypes, p.route)
	}
	// Services are always served, and the Canary's own watches already cover them.
	r.Routers[v1alpha1.ProviderKubernetes] = kubernetes.New(mgr.GetClient(), FieldManager)
	config, err := newConfigWatch(mgr, opts.Namespaces)
	if err != nil {
		return err
	}
	r.config = config
	r.gates = newGateCalls(clk)
	if err := mgr.Add(r.gates); err != nil {
		return fmt.Errorf("adding the webhook caller: %w", err)
	}
	r.checks = newCheckRounds(clk)
	if err := mgr.Add(r.checks); err != nil {
		return fmt.Errorf("adding the check runner: %w", err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the canary controller: %w", err)
	}
	return nil
}
