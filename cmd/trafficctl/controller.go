package main

import (
	"cmp"
	"flag"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/controllers"
	"github.com/trafficctl/trafficctl/internal/apis"
	"github.com/trafficctl/trafficctl/providers/netguard"
)

type controllerOptions struct {
	metricsAddr       string
	pprofAddr         string
	probeAddr         string
	leaderElect       bool
	leaderElectionNS  string
	prometheusAddress string
	queryTimeout      time.Duration
	concurrency       int
	watchNamespace    string
	crossNamespace    bool
	urlDeny, urlAllow []string
	shard             string
	otherShards       []string
	watchSelector     string
	leaderElectionID  string
	zap               zap.Options
}

func newControllerCommand() *cobra.Command {
	o := &controllerOptions{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller that carries out rollouts",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return o.run()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address the controller's own Prometheus metrics are served on; 0 turns them off")
	f.StringVar(&o.pprofAddr, "pprof-bind-address", "", "address Go's profiles (/debug/pprof) are served on, for a sizing question; off when empty")
	f.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address /healthz and /readyz are served on")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader so that only one replica acts at a time")
	f.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease; the controller's own when empty")
	f.StringVar(&o.prometheusAddress, "prometheus-address", "http://prometheus:9090", "Prometheus that answers built-in metrics and templates without an address of their own")
	f.StringVar(&o.watchNamespace, "watch-namespace", "", "act only on Canaries in this namespace; all namespaces when empty")
	f.DurationVar(&o.queryTimeout, "query-timeout", 10*time.Second, "time limit of one metric query")
	f.IntVar(&o.concurrency, "concurrent-canaries", 4, "how many Canaries are reconciled at once")
	f.BoolVar(&o.crossNamespace, "allow-cross-namespace-refs", false, "let a Canary name a MetricTemplate or AlertProvider of another namespace, whose Secrets the controller then reads on its behalf")
	f.StringSliceVar(&o.urlDeny, "url-deny-cidrs", netguard.DefaultDeny, "addresses the controller never calls for a webhook, an AlertProvider or a MetricTemplate (link-local and cloud metadata endpoints by default)")
	f.StringVar(&o.shard, "shard", "", "act only on the Canaries labelled "+v1alpha1.LabelShard+"=<this name>; the default shard when empty")
	f.StringSliceVar(&o.otherShards, "other-shards", nil, "for the default shard: the shards other controllers serve, whose Canaries this one leaves alone")
	f.StringVar(&o.watchSelector, "watch-label-selector", "", "act only on the Canaries this label selector selects, instead of --shard and --other-shards")
	f.StringVar(&o.leaderElectionID, "leader-election-id", "", "name of the leader election Lease; trafficctl.io, or trafficctl.io-shard-<name> for a shard, when empty")
	f.StringSliceVar(&o.urlAllow, "url-allow-cidrs", nil, "when set, the only addresses the controller calls for a webhook, an AlertProvider or a MetricTemplate")
	goflags := flag.NewFlagSet("controller", flag.ContinueOnError)
	o.zap.BindFlags(goflags)
	f.AddGoFlagSet(goflags)
	f.AddGoFlag(flag.CommandLine.Lookup("kubeconfig"))
	return cmd
}

func (o *controllerOptions) run() error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no cluster to talk to: %w", err)
	}
	cacheOpts := controllers.CacheOptions()
	shard, err := controllers.ShardSelector(o.shard, o.otherShards, o.watchSelector)
	if err != nil {
		return err
	}
	controllers.ShardCache(&cacheOpts, shard)
	leaseID := cmp.Or(o.leaderElectionID, controllers.LeaderElectionID(o.shard))
	var namespaces []string
	if o.watchNamespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.watchNamespace: {}}
		namespaces = []string{o.watchNamespace}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Cache:                   cacheOpts,
		Client:                  controllers.ClientOptions(),
		Scheme:                  apis.NewScheme(),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        leaseID,
		LeaderElectionNamespace: o.leaderElectionNS,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	policy, err := netguard.Parse(o.urlDeny, o.urlAllow)
	if err != nil {
		return fmt.Errorf("--url-deny-cidrs or --url-allow-cidrs: %w", err)
	}
	policy.DenyHosts = netguard.DefaultDenyHosts
	if err := controllers.Setup(mgr, controllers.Options{
		PrometheusAddress: o.prometheusAddress, QueryTimeout: o.queryTimeout, MaxConcurrentReconciles: o.concurrency,
		AllowCrossNamespaceRefs: o.crossNamespace, URLPolicy: &policy, Namespaces: namespaces,
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	ctrl.Log.WithName("setup").Info("starting the controller", "version", version, "prometheus", o.prometheusAddress)
	return mgr.Start(ctrl.SetupSignalHandler())
}
