package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/trafficctl/trafficctl/internal/testenv"
)

// NodeAgent plays the kubelet for Node NodeName: every Pod bound to it runs as a local process
// of the demo app on the pod's own loopback address (127.100.x.y), is probed with the pod's
// readiness probe, and gets a real Pod status; a Pod that goes away has its process stopped.
// It also keeps a file_sd file of the running pods for Prometheus, labelled with namespace and
// pod like a kubernetes-pods scrape.
type NodeAgent struct {
	c client.Client
	// reader reads ConfigMaps and Secrets straight from the apiserver, as a kubelet does.
	reader  client.Reader
	binary  string
	logDir  string
	fileSD  string
	mu      sync.Mutex
	pods    map[types.UID]*podRun
	nextIP  int
	cancel  context.CancelFunc
	stopped chan struct{}
}

// podRun is one pod's process and its probe loop.
type podRun struct {
	key      types.NamespacedName
	uid      types.UID
	ip       string
	port     int32
	cancel   context.CancelFunc
	finished chan struct{}
}

// StartNodeAgent runs the agent until Stop. binary is the demo app.
func StartNodeAgent(ctx context.Context, cl *Cluster, binary, logDir, fileSD string) (*NodeAgent, error) {
	a := &NodeAgent{binary: binary, logDir: logDir, fileSD: fileSD, pods: map[types.UID]*podRun{}, stopped: make(chan struct{})}
	if err := a.writeFileSD(); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cl.Config(), ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log.FromContext(ctx),
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Field: fields.OneTermEqualSelector("spec.nodeName", NodeName)},
		}},
	})
	if err != nil {
		return nil, err
	}
	a.c, a.reader = mgr.GetClient(), mgr.GetAPIReader()
	if err := ctrl.NewControllerManagedBy(mgr).Named("node-agent").For(&corev1.Pod{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).Complete(a); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	go func() {
		defer close(a.stopped)
		_ = mgr.Start(runCtx)
		a.stopAll()
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("node agent cache did not sync")
	}
	return a, nil
}

// Stop stops every pod process and the agent.
func (a *NodeAgent) Stop() {
	a.cancel()
	<-a.stopped
}

// Reconcile starts, keeps, or stops the process of one pod.
func (a *NodeAgent) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	err := a.c.Get(ctx, req.NamespacedName, pod)
	if apierrors.IsNotFound(err) {
		a.stopByKey(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if pod.DeletionTimestamp != nil {
		a.stopPod(pod.UID)
		// The kubelet finishes a deletion once the containers are gone.
		err := a.c.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &pod.UID})
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	a.mu.Lock()
	_, running := a.pods[pod.UID]
	a.mu.Unlock()
	if running || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, a.startPod(ctx, pod)
}

func (a *NodeAgent) startPod(ctx context.Context, pod *corev1.Pod) error {
	if len(pod.Spec.Containers) == 0 {
		return nil
	}
	container := pod.Spec.Containers[0]
	port := int32(8080)
	if len(container.Ports) > 0 {
		port = container.Ports[0].ContainerPort
	}
	a.mu.Lock()
	a.nextIP++
	n := a.nextIP
	a.mu.Unlock()
	ip := fmt.Sprintf("127.100.%d.%d", n/250, n%250+1)
	runCtx, cancel := context.WithCancel(context.Background())
	run := &podRun{key: client.ObjectKeyFromObject(pod), uid: pod.UID, ip: ip, port: port, cancel: cancel, finished: make(chan struct{})}
	a.mu.Lock()
	a.pods[pod.UID] = run
	a.mu.Unlock()

	now := metav1.Now()
	if err := a.updateStatus(ctx, run, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodRunning
		st.HostIP, st.PodIP = "127.0.0.1", ip
		st.HostIPs, st.PodIPs = []corev1.HostIP{{IP: "127.0.0.1"}}, []corev1.PodIP{{IP: ip}}
		st.StartTime = &now
		setPodCondition(st, corev1.PodScheduled, true)
		setPodCondition(st, corev1.PodInitialized, true)
		setPodCondition(st, corev1.ContainersReady, false)
		setPodCondition(st, corev1.PodReady, false)
		st.ContainerStatuses = []corev1.ContainerStatus{{
			Name: container.Name, Image: container.Image, ImageID: container.Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}}
	}); err != nil {
		a.stopPod(pod.UID)
		return err
	}
	go a.run(runCtx, run, pod.DeepCopy())
	return a.writeFileSD()
}

// volumeSync is how often mounted ConfigMaps and Secrets are written again from their data.
const volumeSync = 2 * time.Second

// configEnv is the container's environment from its env (values, ConfigMap and Secret keys) and
// envFrom (whole ConfigMaps and Secrets), read when the container starts, as a kubelet does.
func (a *NodeAgent) configEnv(ctx context.Context, namespace string, c corev1.Container) ([]string, error) {
	var env []string
	for _, ef := range c.EnvFrom {
		data, err := a.configData(ctx, namespace, ef.ConfigMapRef != nil, refName(ef.ConfigMapRef, ef.SecretRef))
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			env = append(env, ef.Prefix+k+"="+v)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			data, err := a.configData(ctx, namespace, true, e.ValueFrom.ConfigMapKeyRef.Name)
			if err != nil {
				return nil, err
			}
			env = append(env, e.Name+"="+data[e.ValueFrom.ConfigMapKeyRef.Key])
		case e.ValueFrom.SecretKeyRef != nil:
			data, err := a.configData(ctx, namespace, false, e.ValueFrom.SecretKeyRef.Name)
			if err != nil {
				return nil, err
			}
			env = append(env, e.Name+"="+data[e.ValueFrom.SecretKeyRef.Key])
		}
	}
	return env, nil
}

func refName(cm *corev1.ConfigMapEnvSource, sec *corev1.SecretEnvSource) string {
	if cm != nil {
		return cm.Name
	}
	return sec.Name
}

// configData is the data of a ConfigMap or a Secret.
func (a *NodeAgent) configData(ctx context.Context, namespace string, configMap bool, name string) (map[string]string, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	if configMap {
		cm := &corev1.ConfigMap{}
		if err := a.reader.Get(ctx, key, cm); err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %w", key, err)
		}
		return cm.Data, nil
	}
	sec := &corev1.Secret{}
	if err := a.reader.Get(ctx, key, sec); err != nil {
		return nil, fmt.Errorf("secret %s: %w", key, err)
	}
	out := make(map[string]string, len(sec.Data))
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	return out, nil
}

// syncVolumes writes the pod's ConfigMap and Secret volumes under root, each at its mount path,
// one file per key.
func (a *NodeAgent) syncVolumes(ctx context.Context, pod *corev1.Pod, root string) error {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok || (v.ConfigMap == nil && v.Secret == nil) {
			continue
		}
		var data map[string]string
		var err error
		if v.ConfigMap != nil {
			data, err = a.configData(ctx, pod.Namespace, true, v.ConfigMap.Name)
		} else {
			data, err = a.configData(ctx, pod.Namespace, false, v.Secret.SecretName)
		}
		if err != nil {
			return err
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for k, val := range data {
			tmp := filepath.Join(dir, "."+k+".tmp")
			if err := os.WriteFile(tmp, []byte(val), 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp, filepath.Join(dir, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// failConfig reports a container that cannot start for its config, as a kubelet does.
func (a *NodeAgent) failConfig(run *podRun, err error) {
	_ = a.updateStatus(context.Background(), run, func(st *corev1.PodStatus) {
		setPodCondition(st, corev1.ContainersReady, false)
		setPodCondition(st, corev1.PodReady, false)
		if len(st.ContainerStatuses) > 0 {
			st.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}}
		}
	})
}

// run keeps the pod's process running, restarting it with backoff like a crash loop, and
// reports readiness from the pod's probe.
func (a *NodeAgent) run(ctx context.Context, run *podRun, pod *corev1.Pod) {
	defer close(run.finished)
	container := pod.Spec.Containers[0]
	env := []string{
		"LISTEN_ADDR=" + net.JoinHostPort(run.ip, strconv.Itoa(int(run.port))),
		"POD_NAME=" + pod.Name, "POD_NAMESPACE=" + pod.Namespace,
		"VERSION=" + imageTag(container.Image),
	}
	configEnv, err := a.configEnv(ctx, pod.Namespace, container)
	if err != nil {
		a.failConfig(run, err)
		return
	}
	env = append(env, configEnv...)
	mounts := filepath.Join(a.logDir, "volumes", pod.Namespace+"_"+pod.Name)
	if err := a.syncVolumes(ctx, pod, mounts); err != nil {
		a.failConfig(run, err)
		return
	}
	env = append(env, "MOUNT_ROOT="+mounts)
	// As a kubelet does, mounted ConfigMaps and Secrets follow their data while the pod runs.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(volumeSync):
			}
			_ = a.syncVolumes(ctx, pod, mounts)
		}
	}()
	backoff := time.Second
	restarts := int32(0)
	for {
		proc, err := StartProcess(ctx, ProcessOptions{
			Name: pod.Name, Path: a.binary, Env: env, LogDir: a.logDir,
			LogName: pod.Namespace + "_" + pod.Name + ".log",
		})
		if err != nil {
			return
		}
		started := time.Now()
		probeDone := make(chan struct{})
		probeCtx, stopProbe := context.WithCancel(ctx)
		go func() {
			defer close(probeDone)
			a.probe(probeCtx, run, pod)
		}()
		select {
		case <-ctx.Done():
			stopProbe()
			<-probeDone
			proc.Stop()
			return
		case <-proc.Done():
			stopProbe()
			<-probeDone
		}
		// The container exited: not ready, restarted after a growing delay.
		restarts++
		_ = a.updateStatus(context.Background(), run, func(st *corev1.PodStatus) {
			setPodCondition(st, corev1.ContainersReady, false)
			setPodCondition(st, corev1.PodReady, false)
			if len(st.ContainerStatuses) > 0 {
				cs := &st.ContainerStatuses[0]
				cs.Ready, cs.RestartCount = false, restarts
				cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: strings.TrimSpace(proc.Tail(3))}}
			}
		})
		if time.Since(started) > 30*time.Second {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// probe runs the pod's readiness probe (an HTTP GET, or a TCP connect without one) and writes
// every change of readiness into the Pod's status.
func (a *NodeAgent) probe(ctx context.Context, run *podRun, pod *corev1.Pod) {
	path, port := "", run.port
	if p := pod.Spec.Containers[0].ReadinessProbe; p != nil && p.HTTPGet != nil {
		path = p.HTTPGet.Path
		if p.HTTPGet.Port.IntValue() > 0 {
			port = int32(p.HTTPGet.Port.IntValue())
		}
	}
	addr := net.JoinHostPort(run.ip, strconv.Itoa(int(port)))
	ready := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := false
		if path != "" {
			req, _ := newGet(ctx, "http://"+addr+path)
			if resp, err := httpClient.Do(req); err == nil {
				resp.Body.Close()
				ok = resp.StatusCode >= 200 && resp.StatusCode < 400
			}
		} else if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			ok = true
		}
		if ok != ready && ctx.Err() == nil {
			if err := a.updateStatus(ctx, run, func(st *corev1.PodStatus) {
				setPodCondition(st, corev1.ContainersReady, ok)
				setPodCondition(st, corev1.PodReady, ok)
				if len(st.ContainerStatuses) > 0 {
					st.ContainerStatuses[0].Ready = ok
					st.ContainerStatuses[0].Started = ptr.To(true)
					if ok {
						st.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
					}
				}
			}); err == nil {
				ready = ok
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// updateStatus changes the pod's status, retrying on conflicts; a pod that is gone is fine.
func (a *NodeAgent) updateStatus(ctx context.Context, run *podRun, mutate func(*corev1.PodStatus)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod := &corev1.Pod{}
		if err := a.c.Get(ctx, run.key, pod); err != nil {
			return err
		}
		if pod.UID != run.uid {
			return nil
		}
		mutate(&pod.Status)
		return a.c.Status().Update(ctx, pod)
	})
	return client.IgnoreNotFound(err)
}

func (a *NodeAgent) stopByKey(key types.NamespacedName) {
	a.mu.Lock()
	var uids []types.UID
	for uid, r := range a.pods {
		if r.key == key {
			uids = append(uids, uid)
		}
	}
	a.mu.Unlock()
	for _, uid := range uids {
		a.stopPod(uid)
	}
}

func (a *NodeAgent) stopPod(uid types.UID) {
	a.mu.Lock()
	run, ok := a.pods[uid]
	delete(a.pods, uid)
	a.mu.Unlock()
	if !ok {
		return
	}
	run.cancel()
	<-run.finished
	_ = a.writeFileSD()
}

func (a *NodeAgent) stopAll() {
	a.mu.Lock()
	uids := make([]types.UID, 0, len(a.pods))
	for uid := range a.pods {
		uids = append(uids, uid)
	}
	a.mu.Unlock()
	for _, uid := range uids {
		a.stopPod(uid)
	}
}

// writeFileSD rewrites the Prometheus target file atomically.
func (a *NodeAgent) writeFileSD() error {
	type group struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	a.mu.Lock()
	groups := make([]group, 0, len(a.pods))
	for _, r := range a.pods {
		groups = append(groups, group{
			Targets: []string{net.JoinHostPort(r.ip, strconv.Itoa(int(r.port)))},
			Labels:  map[string]string{"namespace": r.key.Namespace, "pod": r.key.Name},
		})
	}
	a.mu.Unlock()
	sort.Slice(groups, func(i, j int) bool { return groups[i].Targets[0] < groups[j].Targets[0] })
	b, err := json.Marshal(groups)
	if err != nil {
		return err
	}
	tmp := a.fileSD + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, a.fileSD)
}

// Running counts the pod processes the agent runs.
func (a *NodeAgent) Running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pods)
}

func setPodCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			if st.Conditions[i].Status != status {
				st.Conditions[i].Status = status
				st.Conditions[i].LastTransitionTime = metav1.Now()
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.Now()})
}

// imageTag is the version a demo image names: demoapp:1.2.0 -> 1.2.0.
func imageTag(image string) string {
	if i := strings.LastIndex(image, ":"); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i+1:]
	}
	return "latest"
}
