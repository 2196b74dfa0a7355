package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/rollout"
)

// The CLI tests share one control plane, one Prometheus and one exporter, like the controller
// suite; each test has its own namespace, its own controller manager (when it needs rollouts)
// and its own series in the exporter. The verbs run as a user runs them: through the root
// command, with a kubeconfig file, against the real apiserver.
var (
	env      *testenv.Env
	k8s      client.Client
	prom     *testprom.Prometheus
	exporter *testprom.Exporter
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(suiteLogLevel())))
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	if exporter, err = testprom.NewExporter(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer exporter.Close()
	if prom, err = testprom.StartProcess(exporter.Addr()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer prom.Stop()
	return m.Run()
}

// suiteLogLevel keeps the controllers' logs out of the test output unless TEST_LOG=debug: the
// tests assert on what the CLI prints, which is what users read.
func suiteLogLevel() zapcore.Level {
	if os.Getenv("TEST_LOG") == "debug" {
		return zapcore.DebugLevel
	}
	return zapcore.DPanicLevel
}

// Pod names the exporter reports for the canary's and the primary's pods; the metric templates
// select pods by these name prefixes.
const (
	suiteCanaryPod  = "podinfo-7d9c8b6f4-abcde"
	suitePrimaryPod = "podinfo-primary-5f6b7c8d9-xyz12"
)

// Traffic the tests give the exporter: a healthy version answers every request, a failing one
// fails one in ten (a success rate of 90%, under the Canary's 99).
var (
	suiteHealthy = testprom.Traffic{RequestsPerScrape: 100, Latency: 20 * time.Millisecond}
	suiteFailing = testprom.Traffic{RequestsPerScrape: 100, ErrorRatio: 0.1, Latency: 20 * time.Millisecond}
)

// Contexts of the kubeconfig file a harness writes.
const (
	// suiteContext is the current context: the test apiserver as its admin, in the test's
	// namespace.
	suiteContext = "envtest"
	// suiteUnreachable points at a port nothing listens on.
	suiteUnreachable = "unreachable"
	// suiteUnreachableAddress is the address of suiteUnreachable.
	suiteUnreachableAddress = "127.0.0.1:1"
)

// harness is one test's corner of the cluster: a namespace, the stand-ins that make its
// Deployments ready and its routes accepted, and a kubeconfig file for the CLI.
type harness struct {
	t  *testing.T
	ns string
	// kubeconfig is the path of the kubeconfig file the verbs run with.
	kubeconfig string

	mu     sync.Mutex
	broken map[string]bool
	// holdRoutes stops the stand-in Gateway from accepting route changes.
	holdRoutes atomic.Bool
}

// newHarness gives a test its own namespace with the stand-in Deployment and Gateway
// controllers running in it, and a kubeconfig file whose current context is that namespace.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, ns: env.Namespace(t), broken: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	standIns := testenv.StandIns{
		Client: k8s, Namespace: h.ns, HoldRoutes: h.holdRoutes.Load,
		Broken: func(name string) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.broken[name]
		},
	}
	go func() {
		defer close(done)
		standIns.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	h.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	h.writeKubeconfig(func(*clientcmdapi.Config) {})
	return h
}

// writeKubeconfig writes the harness's kubeconfig file: the envtest context (current) and the
// unreachable one, changed by mod.
func (h *harness) writeKubeconfig(mod func(*clientcmdapi.Config)) {
	h.t.Helper()
	cfg := clientcmdapi.NewConfig()
	if existing, err := clientcmd.LoadFromFile(h.kubeconfig); err == nil {
		cfg = existing
	} else {
		host := env.Config.Host
		if !strings.Contains(host, "://") {
			host = "https://" + host
		}
		cfg.Clusters[suiteContext] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: env.Config.CAData}
		cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
			ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken,
		}
		cfg.Contexts[suiteContext] = &clientcmdapi.Context{Cluster: suiteContext, AuthInfo: "admin", Namespace: h.ns}
		cfg.Clusters[suiteUnreachable] = &clientcmdapi.Cluster{Server: "https://" + suiteUnreachableAddress, InsecureSkipTLSVerify: true}
		cfg.Contexts[suiteUnreachable] = &clientcmdapi.Context{Cluster: suiteUnreachable, AuthInfo: "admin", Namespace: h.ns}
		cfg.CurrentContext = suiteContext
	}
	mod(cfg)
	require.NoError(h.t, clientcmd.WriteToFile(*cfg, h.kubeconfig))
}

// addUserContext provisions a user of the test apiserver, with no permissions beyond what its
// groups grant, and adds a context of that name for it to the kubeconfig file, in the test's
// namespace; `--context name` then runs a verb as that user.
func (h *harness) addUserContext(name string, groups ...string) string {
	h.t.Helper()
	u, err := env.AddUser(envtest.User{Name: name, Groups: groups})
	require.NoError(h.t, err)
	rc := u.Config()
	h.writeKubeconfig(func(cfg *clientcmdapi.Config) {
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData, Token: rc.BearerToken}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: suiteContext, AuthInfo: name, Namespace: h.ns}
	})
	return name
}

// factory is a Factory as main builds one, with test streams and the harness's kubeconfig.
func (h *harness) factory(stdin string) (f *Factory, out, errOut *bytes.Buffer) {
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(stdin)
	f = NewFactory(streams, "v0.0.0-test")
	f.Flags.KubeConfig = ptr.To(h.kubeconfig)
	f.Flags.Namespace = ptr.To(h.ns)
	f.Flags.CacheDir = ptr.To(filepath.Join(h.t.TempDir(), "cache"))
	return f, out, errOut
}

// run runs one verb's command as a user would, against the test apiserver: args are the verb's
// own args; it returns stdout, stderr and the error. The verb runs under the real root command,
// so --namespace, --context and the other kubeconfig flags work; newCmd replaces the root's
// verb of the same name, so a test may build it with injected options.
func (h *harness) run(newCmd func(*Factory) *cobra.Command, args ...string) (stdout, stderr string, err error) {
	h.t.Helper()
	return h.runIn("", newCmd, args...)
}

// runIn is run with stdin.
func (h *harness) runIn(stdin string, newCmd func(*Factory) *cobra.Command, args ...string) (stdout, stderr string, err error) {
	h.t.Helper()
	f, out, errOut := h.factory(stdin)
	root := NewRootCommand(f, "trafficctl")
	cmd := newCmd(f)
	for _, c := range root.Commands() {
		if c.Name() == cmd.Name() {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(cmd)
	err = h.execute(root, f, append([]string{cmd.Name()}, args...))
	return out.String(), errOut.String(), err
}

// runRoot runs the root command with args as given, for what is not a verb of its own (such
// as cobra's completion command).
func (h *harness) runRoot(args ...string) (stdout, stderr string, err error) {
	h.t.Helper()
	f, out, errOut := h.factory("")
	err = h.execute(NewRootCommand(f, "trafficctl"), f, args)
	return out.String(), errOut.String(), err
}

func (h *harness) execute(root *cobra.Command, f *Factory, args []string) error {
	root.SetIn(f.Streams.In)
	root.SetOut(f.Streams.Out)
	root.SetErr(f.Streams.ErrOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return root.ExecuteContext(ctx)
}

// startController runs a controller manager that watches only this test's namespace, and
// returns the function that stops it.
func (h *harness) startController() (stop func()) {
	h.t.Helper()
	return testenv.StartController(h.t, env.Config, h.ns, prom.URL())
}

// setTraffic sets what the exporter reports for the canary's and the primary's pods.
func (h *harness) setTraffic(canary, primary testprom.Traffic) {
	exporter.SetTraffic(h.ns, suiteCanaryPod, canary)
	exporter.SetTraffic(h.ns, suitePrimaryPod, primary)
	h.t.Cleanup(func() {
		exporter.RemoveTraffic(h.ns, suiteCanaryPod)
		exporter.RemoveTraffic(h.ns, suitePrimaryPod)
	})
}

// breakDeployment keeps a Deployment from ever having available replicas, like a crashing pod.
func (h *harness) breakDeployment(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broken[name] = true
}

// createTarget creates the Deployment podinfo the Canary rolls out.
func (h *harness) createTarget(image string) {
	h.t.Helper()
	labels := map[string]string{"app": "podinfo"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: h.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 9898}}}}},
			},
		},
	}
	require.NoError(h.t, k8s.Create(context.Background(), d))
}

// newCanary is the Canary the tests start from: two steps of 3s, two failed checks roll back.
func (h *harness) newCanary(mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	return gen.Canary(h.ns, append([]gen.CanaryMod{gen.Analysed("3s"), gen.Provider(v1alpha1.ProviderGatewayAPI)}, mods...)...)
}

// createCanary creates the Canary podinfo, changed by mods.
func (h *harness) createCanary(mods ...func(*v1alpha1.Canary)) {
	h.t.Helper()
	require.NoError(h.t, k8s.Create(context.Background(), h.newCanary(mods...)))
}

// setImage changes the target's pod template, which makes a new revision.
func (h *harness) setImage(image string) {
	h.t.Helper()
	require.Eventually(h.t, func() bool {
		d := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, d); err != nil {
			return false
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		return k8s.Update(context.Background(), d) == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// canary reads the Canary podinfo straight from the apiserver.
func (h *harness) canary() *v1alpha1.Canary {
	h.t.Helper()
	cn := &v1alpha1.Canary{}
	require.NoError(h.t, k8s.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, cn))
	return cn
}

// waitFor polls the Canary podinfo until cond holds, and fails with its last status otherwise.
func (h *harness) waitFor(what string, timeout time.Duration, cond func(*v1alpha1.Canary) bool) *v1alpha1.Canary {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cn := &v1alpha1.Canary{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, cn)
		if err == nil && cond(cn) {
			return cn
		}
		if time.Now().After(deadline) {
			msg := ""
			if c := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReady); c != nil {
				msg = c.Reason + ": " + c.Message
			}
			h.t.Fatalf("timed out after %s waiting for %s; status: phase=%s step=%d weight=%d failed=%d ready=%q", timeout, what,
				cn.Status.Phase, cn.Status.Step, cn.Status.CanaryWeight, cn.Status.FailedChecks, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// suitePhaseIs is a waitFor condition: the Canary is in phase p.
func suitePhaseIs(p v1alpha1.CanaryPhase) func(*v1alpha1.Canary) bool {
	return func(cn *v1alpha1.Canary) bool { return cn.Status.Phase == p }
}

// initialized creates the target and the Canary, starts the controller, and waits until the
// primary runs image: the state every rollout starts from.
func (h *harness) initialized(image string, mods ...func(*v1alpha1.Canary)) {
	h.t.Helper()
	h.createTarget(image)
	h.startController()
	h.createCanary(mods...)
	h.waitFor("initialization", 30*time.Second, suitePhaseIs(v1alpha1.PhaseInitialized))
}
