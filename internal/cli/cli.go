package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/apis"
)

// Factory is what every verb shares: the kubeconfig flags (--kubeconfig, --context, -n, ...),
// the streams it writes to, and the clients built from them.
type Factory struct {
	Flags   *genericclioptions.ConfigFlags
	Streams genericiooptions.IOStreams
	// Version is the binary's version, for `trafficctl version`.
	Version string
}

// NewFactory makes a Factory whose flags are bound by NewRootCommand.
func NewFactory(streams genericiooptions.IOStreams, version string) *Factory {
	return &Factory{Flags: genericclioptions.NewConfigFlags(true), Streams: streams, Version: version}
}

// defaultRequestTimeout bounds every request to the cluster when --request-timeout does not, so a
// server that accepts a connection and never answers cannot hang a verb. --watch polls, so no
// request lives longer than this.
const defaultRequestTimeout = 30 * time.Second

// RESTConfig is how to reach the cluster of the flags, or an error that says what is wrong with
// the kubeconfig: one named with --kubeconfig that is not there, or none at all, rather than an
// attempt at localhost:8080 that reads like an unreachable cluster.
func (f *Factory) RESTConfig() (*rest.Config, error) {
	if err := f.checkKubeconfig(); err != nil {
		return nil, err
	}
	raw, err := f.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, friendly(err, "", "")
	}
	inCluster := os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	if len(raw.Clusters) == 0 && ptr.Deref(f.Flags.APIServer, "") == "" && !inCluster {
		return nil, errors.New("no cluster is configured: no kubeconfig names one (set --kubeconfig, KUBECONFIG or ~/.kube/config), --server is not set, and this is not a pod in a cluster")
	}
	cfg, err := f.Flags.ToRESTConfig()
	if err != nil {
		return nil, friendly(err, "", "")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultRequestTimeout
	}
	return cfg, nil
}

// checkKubeconfig reports a kubeconfig named with --kubeconfig that cannot be read, by its name.
func (f *Factory) checkKubeconfig() error {
	if path := ptr.Deref(f.Flags.KubeConfig, ""); path != "" {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", path, withoutPath(err))
		}
	}
	return nil
}

// Client is a client for Canaries, MetricTemplates, AlertProviders, Deployments, Services and
// the route objects, with the context and namespace of the flags.
func (f *Factory) Client() (client.Client, error) {
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: apis.NewScheme()})
	if err != nil {
		return nil, friendly(err, "", "")
	}
	return c, nil
}

// Namespace is the namespace of -n, or the kubeconfig context's, or "default".
func (f *Factory) Namespace() (string, error) {
	if err := f.checkKubeconfig(); err != nil {
		return "", err
	}
	ns, _, err := f.Flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", friendly(err, "", "")
	}
	return ns, nil
}

// User is the name the apiserver authenticates the caller as (a SelfSubjectReview), recorded
// with every manual request; empty when the cluster cannot tell.
func (f *Factory) User(ctx context.Context) string {
	cfg, err := f.RESTConfig()
	if err != nil {
		return ""
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return ""
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return ""
	}
	return r.Status.UserInfo.Username
}

// GetCanary reads one Canary, with an error that names it when it does not exist.
func (f *Factory) GetCanary(ctx context.Context, c client.Client, namespace, name string) (*v1alpha1.Canary, error) {
	cn := &v1alpha1.Canary{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cn); err != nil {
		return nil, friendly(err, "canary", namespace+"/"+name)
	}
	return cn, nil
}

// canaryRef is the one Canary a verb reads, and how: the verbs that take a NAME embed it.
type canaryRef struct {
	Name      string
	Namespace string
	factory   *Factory
	client    client.Client
}

// complete resolves the namespace of the flags and makes the client.
func (r *canaryRef) complete(f *Factory, name string) error {
	r.factory, r.Name = f, name
	var err error
	if r.Namespace, err = f.Namespace(); err != nil {
		return err
	}
	r.client, err = f.Client()
	return err
}

// get reads the Canary, with an error that names it when it does not exist.
func (r *canaryRef) get(ctx context.Context) (*v1alpha1.Canary, error) {
	return r.factory.GetCanary(ctx, r.client, r.Namespace, r.Name)
}

// NewRootCommand is the trafficctl command with every CLI verb; the caller adds `controller`.
// Named kubectl-trafficctl, the binary is a kubectl plugin (`kubectl trafficctl ...`).
func NewRootCommand(f *Factory, use string) *cobra.Command {
	root := &cobra.Command{
		Use:           "trafficctl",
		Short:         "Progressive delivery for Kubernetes: canary rollouts gated by analysis",
		SilenceUsage:  true,
		SilenceErrors: true,
		// As a kubectl plugin, help and usage say "kubectl trafficctl".
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: use},
	}
	f.Flags.AddFlags(root.PersistentFlags())
	root.AddCommand(verbs(f)...)
	return root
}

// friendly turns a client error into one line a user can act on, naming the object, the
// cluster or the permission; what the verbs return reaches stderr as it is.
func friendly(err error, kind, name string) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	switch {
	case apierrors.IsNotFound(err) && name != "":
		return fmt.Errorf("%s %s not found", kind, name)
	case apierrors.IsForbidden(err):
		msg := err.Error()
		if errors.As(err, &status) {
			msg = status.Status().Message
		}
		return fmt.Errorf("permission denied: %s", msg)
	case apierrors.IsUnauthorized(err):
		return errors.New("the cluster refused the credentials of the current context (Unauthorized); log in again or pick another --context")
	case meta.IsNoMatchError(err):
		return errors.New("the cluster does not serve trafficctl.io/v1alpha1: install the CRDs (helm install trafficctl charts/trafficctl)")
	}
	var uerr *url.Error
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		host := ""
		if errors.As(err, &uerr) {
			if u, perr := url.Parse(uerr.URL); perr == nil {
				host = u.Host
			}
		}
		return fmt.Errorf("the cluster at %s did not answer in time (raise --request-timeout, %s by default)", cmp.Or(host, "the address of the current context"), defaultRequestTimeout)
	}
	if errors.As(err, &uerr) || errors.As(err, &nerr) {
		host := ""
		if uerr != nil {
			if u, perr := url.Parse(uerr.URL); perr == nil {
				host = u.Host
			}
		}
		return fmt.Errorf("cannot reach the cluster at %s: %w", cmp.Or(host, "the address of the current context"), rootCause(err))
	}
	if strings.Contains(err.Error(), "invalid configuration") || strings.Contains(err.Error(), "context") && strings.Contains(err.Error(), "does not exist") {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return err
}

// withoutPath is an error about a file without the file's name, which the caller says.
func withoutPath(err error) error {
	var perr *fs.PathError
	if errors.As(err, &perr) {
		return perr.Err
	}
	return err
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
