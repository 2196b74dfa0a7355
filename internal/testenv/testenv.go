package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trafficctl/trafficctl/internal/apis"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running kube-apiserver and etcd.
type Env struct {
	Config *rest.Config
	// Client talks to the apiserver directly, never through a cache, so tests assert on what
	// is really stored.
	Client client.Client
	env    *envtest.Environment
}

// Options change how the control plane runs.
type Options struct {
	// APIServerFlags are set on kube-apiserver's command line, by name without the dashes.
	APIServerFlags map[string]string
}

// Start runs the control plane. It needs KUBEBUILDER_ASSETS pointing at the binaries that
// `make test` installs; without it the error says so.
func Start() (*Env, error) { return StartWith(Options{}) }

// StartWith is Start, with opts.
func StartWith(opts Options) (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: these tests need a real kube-apiserver and etcd; run `make test`, which installs them into bin/ and sets it")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	gw, err := ModuleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		return nil, err
	}
	istio, err := ModuleDir("istio.io/api")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(root, "config", "crd"),
			filepath.Join(gw, "config", "crd", "standard"),
			filepath.Join(istio, "kubernetes", "customresourcedefinitions.gen.yaml"),
		},
		ErrorIfCRDPathMissing: true,
	}
	// envtest's default range, a /24, holds 254 Services, and no namespace controller deletes a
	// finished test's: a suite of a hundred Canaries, three Services each, runs out. A /16 holds
	// 65,534.
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("service-cluster-ip-range", "10.0.0.0/16")
	for name, value := range opts.APIServerFlags {
		args.Set(name, value)
	}
	cfg, err := env.Start()
	if err != nil {
		// envtest may have started etcd and the apiserver before failing (a CRD that does not
		// install, say); stop whatever runs, or it outlives the test.
		_ = env.Stop()
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return &Env{Config: cfg, Client: c, env: env}, nil
}

// Scheme knows every API the tests read or write: the controller's own.
func Scheme() *runtime.Scheme { return apis.NewScheme() }

// Stop stops the apiserver, then etcd.
func (e *Env) Stop() error { return e.env.Stop() }

// Namespace creates a namespace of its own for one test.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// RepoRoot is the directory holding go.mod, found from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ModuleDir is where the Go module cache holds a module the project depends on.
func ModuleDir(module string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		return "", fmt.Errorf("finding module %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not in the module cache; run `go mod download`", module)
	}
	return dir, nil
}

// AddUser provisions a user of the apiserver, such as an admin for a kubeconfig file that
// other processes use.
func (e *Env) AddUser(u envtest.User) (*envtest.AuthenticatedUser, error) {
	return e.env.AddUser(u, nil)
}

// Main is what a package's TestMain calls, os.Exit(testenv.Main(m, &env)): it starts the
// control plane, runs the tests, and stops it again, whatever the tests did.
func Main(m *testing.M, env **Env) int {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*env = e
	defer func() {
		if err := e.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	return m.Run()
}
