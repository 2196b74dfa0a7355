package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// VersionOptions are the inputs of `trafficctl version`: the binary's version and, when the
// cluster answers, its version and whether it serves trafficctl's CRDs, which is the first
// thing to know when a verb says the cluster "does not serve trafficctl.io/v1alpha1".
type VersionOptions struct {
	// Output is "" for lines, json or yaml for the versionInfo.
	Output string
	// ClientOnly skips the cluster.
	ClientOnly bool
	// Timeout bounds the calls to the cluster when --request-timeout does not, so an
	// unreachable one does not hang the command.
	Timeout time.Duration

	factory *Factory
}

func newVersionCommand(f *Factory) *cobra.Command {
	o := &VersionOptions{factory: f, Timeout: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print trafficctl's version, the cluster's, and whether the cluster serves trafficctl's CRDs",
		Long: `Print trafficctl's version and, if the cluster of the current context answers, its version
and whether it serves the trafficctl.io CRDs. An unreachable cluster is reported, not an error.`,
		Example: `  trafficctl version
  trafficctl version --client
  trafficctl version -o json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.Complete(f); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format. One of: (json, yaml).")
	cmd.Flags().BoolVar(&o.ClientOnly, "client", false, "Print trafficctl's version only, without contacting the cluster.")
	return cmd
}

// Complete keeps the factory; the cluster is only contacted in Run.
func (o *VersionOptions) Complete(f *Factory) error {
	o.factory = f
	return nil
}

// Validate checks the output format.
func (o *VersionOptions) Validate() error { return validateStructuredFormat(o.Output) }

// versionInfo is what `trafficctl version -o json|yaml` prints.
type versionInfo struct {
	Client string          `json:"client"`
	Server *versionServer  `json:"server,omitempty"`
	CRDs   *versionCRDInfo `json:"crds,omitempty"`
}

type versionServer struct {
	Address string `json:"address,omitempty"`
	Version string `json:"version,omitempty"`
	// Error says why the cluster did not answer.
	Error string `json:"error,omitempty"`
}

type versionCRDInfo struct {
	GroupVersion string `json:"groupVersion"`
	Served       bool   `json:"served"`
	// Resources are the trafficctl resources the cluster serves, such as canaries.
	Resources []string `json:"resources,omitempty"`
	// Error says why it could not be told.
	Error string `json:"error,omitempty"`
}

// Run prints the versions.
func (o *VersionOptions) Run() error {
	info := versionInfo{Client: o.factory.Version}
	if !o.ClientOnly {
		info.Server, info.CRDs = o.server()
	}
	out := o.factory.Streams.Out
	if o.Output != "" {
		return printStructured(out, o.Output, info)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trafficctl %s\n", info.Client)
	if s := info.Server; s != nil {
		if s.Error != "" {
			fmt.Fprintf(&b, "server: unreachable (%s)\n", s.Error)
		} else {
			fmt.Fprintf(&b, "server: Kubernetes %s at %s\n", s.Version, s.Address)
		}
	}
	if c := info.CRDs; c != nil {
		switch {
		case c.Served:
			fmt.Fprintf(&b, "crds: %s is served (%s)\n", c.GroupVersion, strings.Join(c.Resources, ", "))
		case c.Error != "":
			fmt.Fprintf(&b, "crds: unknown (%s)\n", c.Error)
		default:
			fmt.Fprintf(&b, "crds: not installed: the cluster does not serve %s canaries; install them with helm install trafficctl charts/trafficctl\n", c.GroupVersion)
		}
	}
	if _, err := fmt.Fprint(out, b.String()); err != nil {
		return err
	}
	if s := info.Server; s != nil && s.Error != "" {
		// As kubectl version does: a script that asks for the server's version learns it did not
		// get one.
		return errors.New("the cluster did not answer (trafficctl version --client prints the client's version alone)")
	}
	return nil
}

// server asks the cluster for its version and for trafficctl's API group; a cluster that does
// not answer is reported in the result, not as an error: the client's version is still worth
// printing.
func (o *VersionOptions) server() (*versionServer, *versionCRDInfo) {
	cfg, err := o.factory.RESTConfig()
	if err != nil {
		return &versionServer{Error: err.Error()}, nil
	}
	if ptr.Deref(o.factory.Flags.Timeout, "0") == "0" {
		cfg.Timeout = o.Timeout
	}
	s := &versionServer{Address: cfg.Host}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		s.Error = friendly(err, "", "").Error()
		return s, nil
	}
	v, err := dc.ServerVersion()
	if err != nil {
		s.Error = friendly(err, "", "").Error()
		return s, nil
	}
	s.Version = v.GitVersion
	crds := &versionCRDInfo{GroupVersion: v1alpha1.GroupVersion.String()}
	resources, err := dc.ServerResourcesForGroupVersion(crds.GroupVersion)
	switch {
	case apierrors.IsNotFound(err):
		return s, crds
	case err != nil:
		crds.Error = friendly(err, "", "").Error()
		return s, crds
	}
	for _, r := range resources.APIResources {
		if !strings.Contains(r.Name, "/") {
			crds.Resources = append(crds.Resources, r.Name)
		}
	}
	slices.Sort(crds.Resources)
	crds.Served = slices.Contains(crds.Resources, "canaries")
	return s, crds
}
