package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/trafficctl/trafficctl/internal/freeport"
	"github.com/trafficctl/trafficctl/internal/testenv"
)

// NodeName is the one Node of the cluster, played by the NodeAgent.
const NodeName = "local"

// Cluster is a control plane on this machine: etcd and kube-apiserver (through envtest, with
// trafficctl's and the Gateway API's CRDs), and the real kube-controller-manager and
// kube-scheduler, so Deployments, ReplicaSets, scheduling and garbage collection are the real
// ones. Pods are bound to Node NodeName; a NodeAgent runs them.
type Cluster struct {
	Env *testenv.Env
	// Kubeconfig is a file with admin credentials, for the controller binary and the other
	// components.
	Kubeconfig string
	Dir        string
	procs      []*Process
}

// StartCluster starts the control plane; dir holds its kubeconfig and logs.
func StartCluster(ctx context.Context, dir string) (*Cluster, error) {
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Env: env, Dir: dir}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	user, err := c.Env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}})
	if err != nil {
		return fmt.Errorf("creating the admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	common := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
	}
	kcmPort, err := FreePort()
	if err != nil {
		return err
	}
	// Only the controllers a rollout needs. The node lifecycle controller would taint the Node
	// for missing kubelet heartbeats; the EndpointSlice controller cannot store loopback pod IPs.
	kcm, err := StartProcess(ctx, ProcessOptions{
		Name: "kube-controller-manager", Path: filepath.Join(assets, "kube-controller-manager"), LogDir: c.Dir,
		Args: append(common, "--secure-port="+strconv.Itoa(kcmPort),
			"--controllers=deployment,replicaset,garbagecollector,namespace,horizontalpodautoscaling,disruption",
			"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10"),
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, kcm)
	schedPort, err := FreePort()
	if err != nil {
		return err
	}
	sched, err := StartProcess(ctx, ProcessOptions{
		Name: "kube-scheduler", Path: filepath.Join(assets, "kube-scheduler"), LogDir: c.Dir,
		Args: append(common, "--secure-port="+strconv.Itoa(schedPort)),
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, sched)
	return c.createNode(ctx)
}

// createNode registers the Node the scheduler binds pods to, with room for any demo.
func (c *Cluster) createNode(ctx context.Context) error {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("500"),
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: map[string]string{"kubernetes.io/hostname": NodeName}}}
	if err := c.Env.Client.Create(ctx, node); err != nil {
		return fmt.Errorf("creating node: %w", err)
	}
	node.Status = corev1.NodeStatus{
		Capacity: resources, Allocatable: resources,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message:           "the e2e node agent runs pods as local processes",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
	}
	if err := c.Env.Client.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("setting node status: %w", err)
	}
	// Admission taints a new Node not-ready; the node lifecycle controller, which is not run,
	// would lift the taint once the Node reports Ready, as it now does.
	node.Spec.Taints = nil
	if err := c.Env.Client.Update(ctx, node); err != nil {
		return fmt.Errorf("untainting node: %w", err)
	}
	return nil
}

// Config is the admin REST config.
func (c *Cluster) Config() *rest.Config { return c.Env.Config }

// Client talks to the apiserver directly, without a cache.
func (c *Cluster) Client() client.Client { return c.Env.Client }

// Stop stops the controller-manager and the scheduler, then the apiserver, then etcd.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop()
	}
	c.procs = nil
	if c.Env != nil {
		_ = c.Env.Stop()
	}
}

// FreePort finds a loopback port nobody listens on, outside the range outgoing connections
// take theirs from (see internal/freeport).
func FreePort() (int, error) { return freeport.Port() }

// WaitHTTP polls url until it answers 200, or the deadline passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &httpClient
	for {
		req, _ := newGet(ctx, url)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 within %s", url, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Build compiles a main package of this module into bin/, returning the binary's path.
func Build(ctx context.Context, pkg, name string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(root, "bin", name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}
