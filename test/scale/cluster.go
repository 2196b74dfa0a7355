package scale

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/trafficctl/trafficctl/internal/freeport"
	"github.com/trafficctl/trafficctl/internal/testenv"
)

// cluster is a local kube-apiserver and etcd whose audit log records the requests of the
// controllers started on it (as controllerUser), the namespaces the apps live in, and the
// stand-in that plays the Deployment and Gateway controllers.
type cluster struct {
	env *testenv.Env
	// client is the harness's own, unthrottled; the audit log leaves it out. cache holds the
	// Canaries, Deployments and HTTPRoutes of the apps' namespace, from a watch.
	client client.Client
	cache  client.Reader
	dir    string
	// tempDir is true when dir is the cluster's own, removed by stop.
	tempDir bool
	// kubeconfigs are the controllers' users' kubeconfig files, by user.
	kubeconfigs map[string]string
	audit       auditLog
}

// secondUser is the user of a second controller process, told apart in the audit log.
const secondUser = controllerUser + "-2"

// startCluster starts it, keeping its files in dir.
func startCluster(ctx context.Context, dir string) (*cluster, error) {
	ctrllog.SetLogger(logr.Discard()) // the stand-in's informers log through controller-runtime
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy(controllerUser, secondUser)), 0o600); err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, audit: auditLog{path: filepath.Join(dir, "audit.log")}}
	env, err := testenv.StartWith(testenv.Options{APIServerFlags: map[string]string{
		"audit-policy-file": policy, "audit-log-path": c.audit.path, "audit-log-format": "json",
		"max-requests-inflight": "800", "max-mutating-requests-inflight": "400",
	}})
	if err != nil {
		return nil, err
	}
	c.env = env
	fail := func(err error) (*cluster, error) {
		_ = env.Stop()
		return nil, err
	}
	fast := rest.CopyConfig(env.Config)
	fast.QPS, fast.Burst = -1, 0
	if c.client, err = client.New(fast, client.Options{Scheme: testenv.Scheme()}); err != nil {
		return fail(err)
	}
	for _, ns := range []string{namespace, "infra"} {
		if err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fail(fmt.Errorf("creating namespace %s: %w", ns, err))
		}
	}
	standIn, err := startStandIn(ctx, env.Config, namespace, 8)
	if err != nil {
		return fail(err)
	}
	c.cache = standIn.cache
	c.kubeconfigs = map[string]string{}
	for _, name := range []string{controllerUser, secondUser} {
		user, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}})
		if err != nil {
			return fail(fmt.Errorf("adding user %s: %w", name, err))
		}
		kubeconfig, err := user.KubeConfig()
		if err != nil {
			return fail(err)
		}
		c.kubeconfigs[name] = filepath.Join(dir, name+".kubeconfig")
		if err := os.WriteFile(c.kubeconfigs[name], kubeconfig, 0o600); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

func (c *cluster) stop() error {
	err := c.env.Stop()
	if c.tempDir {
		_ = os.RemoveAll(c.dir)
	}
	return err
}

// startTempCluster starts one keeping its files in a new temporary directory named after prefix,
// which stop removes.
func startTempCluster(ctx context.Context, prefix string) (*cluster, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	c, err := startCluster(ctx, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	c.tempDir = true
	return c, nil
}

// process is a controller binary running against the cluster.
type process struct {
	cmd *exec.Cmd
	// exited is closed once it has exited, with what Wait returned in err.
	exited <-chan struct{}
	err    error
	// log is the file its output goes to; metrics the URL of its Prometheus metrics.
	log, metrics string
}

// startController runs bin's controller as user (controllerUser or secondUser) with args, its
// output in a log file named after name. It ends with ctx (SIGTERM).
func (c *cluster) startController(ctx context.Context, bin, user, name string, args ...string) (*process, error) {
	metricsAddr, err := freeport.Address()
	if err != nil {
		return nil, err
	}
	args = append([]string{"controller", "--kubeconfig", c.kubeconfigs[user], "--metrics-bind-address", metricsAddr,
		"--health-probe-bind-address", "0", "--prometheus-address", "http://127.0.0.1:9"}, args...)
	p := &process{log: filepath.Join(c.dir, name+".log"), metrics: "http://" + metricsAddr + "/metrics"}
	logFile, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return p, nil
}

// kill ends the process at once, as a crash or an evicted pod does: nothing is handed over.
func (p *process) kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.exited
	return nil
}

// logTail is the end of its log, for an error message.
func (p *process) logTail() string { return tail(p.log) }
