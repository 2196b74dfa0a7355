package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Options configure a data plane. Only Config is required.
type Options struct {
	// Config reaches the apiserver.
	Config *rest.Config
	// ListenAddr is where the Gateway serves HTTP; default "127.0.0.1:0".
	ListenAddr string
	// MetricsAddr is where Prometheus scrapes /metrics; default "127.0.0.1:0".
	MetricsAddr string
	// GatewayName and GatewayNamespace name the Gateway the data plane plays: it serves the
	// routes with a parentRef to it, and only those. Defaults "public-gw" and "infra".
	GatewayName      string
	GatewayNamespace string
	// IstioGateway is the same Gateway as Istio VirtualServices name it in spec.gateways,
	// "<namespace>/<name>"; the data plane serves the VirtualServices that name it, and only
	// those. Default: GatewayNamespace/GatewayName.
	IstioGateway string
	// ControllerName is how the data plane signs its entries in route status; default
	// "trafficctl.io/e2e-dataplane".
	ControllerName string
	// Rand returns numbers in [0, 1) for the weighted choice of a backend and for sampling
	// mirrored requests, so that tests can make the split exact. The data plane serialises the
	// calls. Default: math/rand/v2.
	Rand func() float64
	// Logger receives what the data plane does; default: nothing.
	Logger logr.Logger
}

// Defaults of Options.
const (
	DefaultGatewayName      = "public-gw"
	DefaultGatewayNamespace = "infra"
	DefaultControllerName   = "trafficctl.io/e2e-dataplane"
)

// syncTimeout bounds the wait for the first list of routes, Services and pods.
const syncTimeout = time.Minute

func (o Options) withDefaults() Options {
	if o.ListenAddr == "" {
		o.ListenAddr = "127.0.0.1:0"
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "127.0.0.1:0"
	}
	if o.GatewayName == "" {
		o.GatewayName = DefaultGatewayName
	}
	if o.GatewayNamespace == "" {
		o.GatewayNamespace = DefaultGatewayNamespace
	}
	if o.IstioGateway == "" {
		o.IstioGateway = o.GatewayNamespace + "/" + o.GatewayName
	}
	if o.ControllerName == "" {
		o.ControllerName = DefaultControllerName
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}

// DataPlane is a running Gateway: its proxy, its metrics endpoint, and the watch that keeps
// its routing table and the routes' status current.
type DataPlane struct {
	opts         Options
	log          logr.Logger
	gateway      gatewayRef
	istioGateway gatewayRef
	// istio is set when the apiserver knows VirtualServices, which are then watched and
	// served.
	istio bool

	// cache serves every read on the request path; apiReader reads fresh objects before a
	// status write; client writes.
	cache     client.Reader
	apiReader client.Reader
	client    client.Client

	table     atomic.Pointer[table]
	buildMu   sync.Mutex
	endpoints *resolver
	metrics   *metrics
	proxy     *httputil.ReverseProxy
	transport *http.Transport

	randMu sync.Mutex

	proxyAddr   string
	metricsAddr string

	// runCtx ends when the data plane stops; mirrored requests, which outlive the request
	// they copy, run under it.
	runCtx   context.Context
	cancel   context.CancelFunc
	stopOnce sync.Once
	done     chan struct{}

	// background tracks mirrored requests, which outlive the request they copy.
	bgMu       sync.Mutex
	stopping   bool
	background sync.WaitGroup
}

// Start runs a data plane until ctx is done or Stop is called. It returns once the cache has
// synced, the routing table is loaded and both listeners accept connections.
func Start(ctx context.Context, o Options) (_ *DataPlane, err error) {
	if o.Config == nil {
		return nil, errors.New("dataplane: Options.Config is required")
	}
	o = o.withDefaults()
	istioNamespace, istioName, ok := strings.Cut(o.IstioGateway, "/")
	if !ok || istioNamespace == "" || istioName == "" {
		return nil, fmt.Errorf("dataplane: Options.IstioGateway %q is not <namespace>/<name>", o.IstioGateway)
	}
	d := &DataPlane{
		opts:         o,
		log:          o.Logger,
		gateway:      gatewayRef{namespace: o.GatewayNamespace, name: o.GatewayName},
		istioGateway: gatewayRef{namespace: istioNamespace, name: istioName},
		metrics:      newMetrics(),
		transport:    newTransport(),
		done:         make(chan struct{}),
	}
	d.proxy = d.newReverseProxy()
	d.table.Store(buildTable(nil, d.gateway))

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))
	utilruntime.Must(istionetv1.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(o.Config, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 d.log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Tests run several data planes in one process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the data plane's manager: %w", err)
	}
	d.cache, d.apiReader, d.client = mgr.GetCache(), mgr.GetAPIReader(), mgr.GetClient()
	d.endpoints = newResolver(d.cache)
	// Without Istio's CRDs the data plane is a Gateway API Gateway alone.
	if _, err := mgr.GetRESTMapper().RESTMapping(istionetv1.SchemeGroupVersion.WithKind("VirtualService").GroupKind(), istionetv1.SchemeGroupVersion.Version); err == nil {
		d.istio = true
	} else if !meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("looking up VirtualServices in the apiserver: %w", err)
	}
	watched := []client.Object{&gatewayv1.HTTPRoute{}, &corev1.Service{}, &corev1.Pod{}}
	if d.istio {
		watched = append(watched, &istionetv1.VirtualService{})
	}
	// The request path reads Pods; informers are registered now so that the sync below
	// covers them.
	for _, obj := range watched {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("watching %T: %w", obj, err)
		}
	}
	// One key for every change: each sync rebuilds the whole table, which is small.
	everything := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{}}
	})
	builder := ctrl.NewControllerManagedBy(mgr).Named("dataplane").
		Watches(&gatewayv1.HTTPRoute{}, everything).
		Watches(&corev1.Service{}, everything)
	if d.istio {
		builder = builder.Watches(&istionetv1.VirtualService{}, everything)
	}
	if err := builder.Complete(reconcile.Func(d.sync)); err != nil {
		return nil, fmt.Errorf("creating the data plane's controller: %w", err)
	}

	proxyLn, err := net.Listen("tcp", o.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", o.ListenAddr, err)
	}
	metricsLn, err := net.Listen("tcp", o.MetricsAddr)
	if err != nil {
		proxyLn.Close()
		return nil, fmt.Errorf("listening on %s: %w", o.MetricsAddr, err)
	}
	d.proxyAddr, d.metricsAddr = proxyLn.Addr().String(), metricsLn.Addr().String()

	runCtx, cancel := context.WithCancel(ctx)
	d.runCtx, d.cancel = runCtx, cancel
	var wg sync.WaitGroup
	var mgrErr error
	wg.Go(func() {
		mgrErr = mgr.Start(runCtx)
		cancel() // a manager that fails stops the data plane
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.metrics.handler())
	servers := []*http.Server{
		{Handler: d, ReadHeaderTimeout: 10 * time.Second},
		{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
	}
	for i, ln := range []net.Listener{proxyLn, metricsLn} {
		wg.Go(func() { _ = servers[i].Serve(ln) })
	}
	go func() {
		<-runCtx.Done()
		shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelShutdown()
		for _, s := range servers {
			if s.Shutdown(shutdownCtx) != nil {
				_ = s.Close()
			}
		}
		wg.Wait()
		d.bgMu.Lock()
		d.stopping = true
		d.bgMu.Unlock()
		d.background.Wait()
		d.transport.CloseIdleConnections()
		close(d.done)
	}()
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()

	syncCtx, cancelSync := context.WithTimeout(runCtx, syncTimeout)
	defer cancelSync()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		d.Stop() // after which mgrErr is final
		switch {
		case mgrErr != nil:
			return nil, fmt.Errorf("starting the data plane's manager: %w", mgrErr)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("waiting for the data plane's cache: %w", ctx.Err())
		}
		return nil, fmt.Errorf("the data plane's cache did not sync within %s", syncTimeout)
	}
	if _, err := d.rebuild(runCtx); err != nil {
		return nil, err
	}
	d.log.Info("data plane started", "gateway", d.gateway, "istioGateway", d.istioGateway, "istio", d.istio,
		"url", d.URL(), "metrics", d.metricsAddr)
	return d, nil
}

// URL is where clients send requests to the Gateway.
func (d *DataPlane) URL() string { return "http://" + d.proxyAddr }

// MetricsAddr is the host:port Prometheus scrapes at /metrics.
func (d *DataPlane) MetricsAddr() string { return d.metricsAddr }

// Stop stops the data plane and waits until it has: listeners closed, watches ended,
// mirrored requests finished. It may be called more than once.
func (d *DataPlane) Stop() {
	d.stopOnce.Do(d.cancel)
	<-d.done
}

// sync rebuilds the routing table from the cache and then reports, in the status of every
// route and VirtualService, what the table loaded.
func (d *DataPlane) sync(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	snap, err := d.rebuild(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	t := d.table.Load()
	var errs []error
	for i := range snap.routes {
		if err := d.reportStatus(ctx, &snap.routes[i], t); err != nil {
			errs = append(errs, fmt.Errorf("reporting the status of HTTPRoute %s/%s: %w", snap.routes[i].Namespace, snap.routes[i].Name, err))
		}
	}
	for _, vs := range snap.virtualServices {
		v, served := t.istio.services[types.NamespacedName{Namespace: vs.Namespace, Name: vs.Name}]
		if !served {
			continue // Istio's status is not per gateway: another one reports it.
		}
		if err := d.reportIstioStatus(ctx, vs, v); err != nil {
			errs = append(errs, fmt.Errorf("reporting the status of VirtualService %s/%s: %w", vs.Namespace, vs.Name, err))
		}
	}
	// An error retries the whole sync with backoff; it is cheap and idempotent.
	return reconcile.Result{}, errors.Join(errs...)
}

// snapshot is what a routing table is built from.
type snapshot struct {
	routes          []gatewayv1.HTTPRoute
	virtualServices []*istionetv1.VirtualService
}

// rebuild loads a new routing table from the cache and returns what it was built from.
func (d *DataPlane) rebuild(ctx context.Context) (snapshot, error) {
	d.buildMu.Lock()
	defer d.buildMu.Unlock()
	routes := &gatewayv1.HTTPRouteList{}
	if err := d.cache.List(ctx, routes); err != nil {
		return snapshot{}, fmt.Errorf("listing HTTPRoutes: %w", err)
	}
	snap := snapshot{routes: routes.Items}
	if d.istio {
		vss := &istionetv1.VirtualServiceList{}
		if err := d.cache.List(ctx, vss); err != nil {
			return snapshot{}, fmt.Errorf("listing VirtualServices: %w", err)
		}
		snap.virtualServices = vss.Items
	}
	t := buildTable(snap.routes, d.gateway)
	t.istio = buildIstioTable(snap.virtualServices, d.istioGateway)
	d.table.Store(t)
	d.log.V(1).Info("routing table loaded", "routes", len(t.routes), "matches", len(t.candidates),
		"virtualServices", len(t.istio.services))
	return snap, nil
}

// rand draws from Options.Rand, one caller at a time.
func (d *DataPlane) rand() float64 {
	d.randMu.Lock()
	defer d.randMu.Unlock()
	return d.opts.Rand()
}

// goBackground runs f unless the data plane is stopping, and makes Stop wait for it.
func (d *DataPlane) goBackground(f func()) {
	d.bgMu.Lock()
	defer d.bgMu.Unlock()
	if d.stopping {
		return
	}
	d.background.Go(f)
}
