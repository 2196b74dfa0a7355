package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/freeport"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/internal/testenv"
)

// Config is one run of the benchmark.
type Config struct {
	// Canaries is how many Canaries (each with its Deployment, its Service and a ConfigMap the
	// Deployment reads through envFrom) are created.
	Canaries int
	// Interval is every Canary's analysis.interval.
	Interval time.Duration
	// Idle is how long the idle window, in which nothing changes, is measured.
	Idle time.Duration
	// Wave is the share of targets whose template changes at once after the idle window, 0 for
	// no wave.
	Wave float64
	// Workers is the controller's --concurrent-canaries; its default when 0.
	Workers int
	// ControllerArgs are more flags for the controller, such as --pprof-bind-address.
	ControllerArgs []string
	// Binary is the controller binary; built into bin/trafficctl when empty.
	Binary string
	// Poke wakes every Canary once in the first interval of the idle window, paced evenly over
	// that interval as the per-interval tick of an older controller would, by an annotation on its
	// target that changes nothing it depends on: each is reconciled, must read only its cache and
	// write nothing, and the lateness of those reconciles is measured. Without it an idle Canary
	// is looked at only by the idle resync (every 10 minutes).
	Poke bool
	// Unrelated is how many Deployments, each with a headless Service, no Canary targets are
	// created beside the apps, as `kubectl apply` leaves them (its annotation and managedFields):
	// what caching the rest of a cluster costs the controller.
	Unrelated int
	// InitTimeout bounds the wait for every Canary to be initialised.
	InitTimeout time.Duration
	// Logf tells progress.
	Logf func(format string, args ...any)
}

// Result is what one run measured.
type Result struct {
	Config Config
	// Init is the time from the controller's start until every Canary was initialised.
	Init time.Duration
	// RSSMax is the controller's largest resident set; RSSIdle its mean in the idle window.
	RSSMax, RSSIdle int64
	// LiveHeap is the controller's heap right after a garbage collection at the end of the idle
	// window: what it keeps (its caches, mostly), which RSS hides behind what the Go runtime has
	// not given back.
	LiveHeap int64
	// CPUPerIdleMinute is the controller's CPU seconds per minute of the idle window.
	CPUPerIdleMinute float64
	// Idle counts the controller's API requests in the idle window.
	Idle calls
	// IdleLate is the workqueue wait of the idle window.
	IdleLate histogram
	// WaveCanaries changed at once; WaveDone is the time until all of them succeeded.
	WaveCanaries int
	WaveDone     time.Duration
	Wave         calls
	WaveLate     histogram
	// APIServerRSS and EtcdRSS are their largest resident sets over the run.
	APIServerRSS, EtcdRSS int64
}

// controllerUser is the user the controller binary runs as, so the audit log tells its requests
// from the harness's.
const controllerUser = "trafficctl-bench"

const namespace = "bench"

// Run runs the benchmark: a local kube-apiserver with an audit log, the stand-in, cfg.Canaries
// Canaries, and the controller binary; then it measures initialisation, an idle window and a
// wave.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	cfg = withDefaults(cfg)
	res.Config = cfg
	logf := cfg.Logf
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := startTempCluster(ctx, "trafficctl-bench-")
	if err != nil {
		return res, err
	}
	defer func() {
		cancel()
		if serr := cl.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	c := cl.client
	logf("creating %d Canaries with their Deployments and ConfigMaps", cfg.Canaries)
	if err := parallel(ctx, cfg.Canaries, 32, func(i int) error { return createApp(ctx, c, i, cfg.Interval) }); err != nil {
		return res, err
	}
	if cfg.Unrelated > 0 {
		logf("creating %d unrelated Deployments and Services", cfg.Unrelated)
		if err := parallel(ctx, cfg.Unrelated, 32, func(i int) error { return createUnrelated(ctx, c, i) }); err != nil {
			return res, err
		}
	}

	bin, err := controllerBinary(cfg.Binary)
	if err != nil {
		return res, err
	}
	var args []string
	if cfg.Workers > 0 {
		args = append(args, "--concurrent-canaries", strconv.Itoa(cfg.Workers))
	}
	args = append(args, cfg.ControllerArgs...)
	pprofAddr := pprofAddress(args)
	if pprofAddr == "" {
		if pprofAddr, err = freeport.Address(); err != nil {
			return res, err
		}
		args = append(args, "--pprof-bind-address="+pprofAddr)
	}
	start := time.Now()
	proc, err := cl.startController(ctx, bin, controllerUser, "controller", args...)
	if err != nil {
		return res, err
	}
	defer func() {
		cancel()
		<-proc.exited
	}()
	cmd, logPath, metricsURL := proc.cmd, proc.log, proc.metrics
	audit := cl.audit

	apiserver := findProcess("kube-apiserver", "--audit-log-path="+audit.path)
	etcd := findProcess("etcd", strings.TrimPrefix(flagOf(apiserver, "etcd-servers"), "http://"))
	mem := newSampler(cmd.Process.Pid, apiserver, etcd)
	go mem.run(ctx)

	logf("controller started (pid %d); waiting for every Canary to be initialised", cmd.Process.Pid)
	if err := waitPhase(ctx, cl.cache, nil, cfg.InitTimeout, proc, func(p v1alpha1.CanaryPhase) bool {
		return p == v1alpha1.PhaseInitialized || p == v1alpha1.PhaseSucceeded
	}, logf); err != nil {
		return res, fmt.Errorf("%w (controller log: %s)", err, tail(logPath))
	}
	res.Init = time.Since(start)
	logf("all %d initialised in %s; settling for one interval", cfg.Canaries, res.Init.Round(time.Second))
	if err := sleep(ctx, cfg.Interval+cfg.Interval/10+2*time.Second); err != nil {
		return res, err
	}

	logf("idle window of %s", cfg.Idle)
	window := func(d time.Duration, during func() error) (calls, histogram, float64, error) {
		from, err := audit.size()
		if err != nil {
			return calls{}, histogram{}, 0, err
		}
		h0, err := scrapeLateness(metricsURL)
		if err != nil {
			return calls{}, histogram{}, 0, err
		}
		cpu0, _ := cpuSeconds(cmd.Process.Pid)
		mem.mark()
		if during != nil {
			if err := during(); err != nil {
				return calls{}, histogram{}, 0, err
			}
		} else if err := sleep(ctx, d); err != nil {
			return calls{}, histogram{}, 0, err
		}
		cpu1, _ := cpuSeconds(cmd.Process.Pid)
		h1, err := scrapeLateness(metricsURL)
		if err != nil {
			return calls{}, histogram{}, 0, err
		}
		to, err := audit.size()
		if err != nil {
			return calls{}, histogram{}, 0, err
		}
		n, err := audit.count(from, to)
		return n, h1.since(h0), cpu1 - cpu0, err
	}
	var cpu float64
	var poke func() error
	if cfg.Poke {
		poke = func() error {
			start := time.Now()
			pace := min(cfg.Interval, cfg.Idle) / time.Duration(cfg.Canaries)
			err := parallel(ctx, cfg.Canaries, 32, func(i int) error {
				if err := sleep(ctx, time.Until(start.Add(time.Duration(i)*pace))); err != nil {
					return err
				}
				return annotate(ctx, c, i)
			})
			if err != nil {
				return err
			}
			return sleep(ctx, time.Until(start.Add(cfg.Idle)))
		}
	}
	res.Idle, res.IdleLate, cpu, err = window(cfg.Idle, poke)
	if err != nil {
		return res, err
	}
	res.RSSIdle = mem.meanSinceMark()
	res.CPUPerIdleMinute = cpu / cfg.Idle.Minutes()
	if res.LiveHeap, err = liveHeap("http://" + pprofAddr); err != nil {
		return res, err
	}

	if cfg.Wave > 0 {
		n := int(math.Ceil(cfg.Wave * float64(cfg.Canaries)))
		res.WaveCanaries = n
		names := map[string]bool{}
		for i := range n {
			names[appName(i)] = true
		}
		logf("wave: %d targets change at once", n)
		var waveStart time.Time
		res.Wave, res.WaveLate, _, err = window(0, func() error {
			waveStart = time.Now()
			if err := parallel(ctx, n, 32, func(i int) error { return changeTemplate(ctx, c, i) }); err != nil {
				return err
			}
			// A changed target passes through Progressing before it succeeds again: wait for the
			// rollout to have started, then for it to end.
			if err := waitPhase(ctx, cl.cache, names, cfg.InitTimeout, proc, func(p v1alpha1.CanaryPhase) bool {
				return p != v1alpha1.PhaseInitialized && p != v1alpha1.PhaseSucceeded
			}, logf); err != nil {
				return err
			}
			if err := waitPhase(ctx, cl.cache, names, cfg.InitTimeout, proc, func(p v1alpha1.CanaryPhase) bool { return p == v1alpha1.PhaseSucceeded }, logf); err != nil {
				return err
			}
			res.WaveDone = time.Since(waveStart)
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("%w (controller log: %s)", err, tail(logPath))
		}
	}
	res.RSSMax, res.APIServerRSS, res.EtcdRSS = mem.max()
	return res, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Canaries <= 0 {
		cfg.Canaries = 1000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 5 * time.Minute
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 30 * time.Minute
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return cfg
}

func appName(i int) string { return fmt.Sprintf("app-%05d", i) }

// createApp creates app i: a ConfigMap, a Deployment reading it through envFrom, its Service,
// and a Canary rolling the Deployment out in one 50% step.
func createApp(ctx context.Context, c client.Client, i int, interval time.Duration, mods ...gen.CanaryMod) error {
	name := appName(i)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-config", Namespace: namespace}, Data: map[string]string{"GREETING": "hello"}}
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/app:1",
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}},
				}}},
			},
		},
	}
	// The app's own Service, as apps have before they get a Canary: trafficctl adopts it as the
	// apex Service.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}}},
	}
	cn := gen.Canary(namespace, append([]gen.CanaryMod{func(cn *v1alpha1.Canary) {
		cn.Name = name
		cn.Spec.TargetRef.Name = name
		cn.Spec.Service.Hostnames = []string{name + ".example.com"}
		cn.Spec.Analysis.Interval = interval.String()
		cn.Spec.Analysis.StepWeights = []int32{50}
	}}, mods...)...)
	for _, obj := range []client.Object{cm, d, svc, cn} {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
	}
	return nil
}

// createUnrelated creates unrelated Deployment i and its headless Service (no ClusterIP to
// allocate) the way `kubectl apply` does: its manifest in the last-applied annotation, and the
// managedFields of its field manager.
func createUnrelated(ctx context.Context, c client.Client, i int) error {
	name := fmt.Sprintf("other-%05d", i)
	labels := map[string]string{"app": name, "team": "unrelated"}
	env := make([]corev1.EnvVar, 0, 10)
	for j := range 10 {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", j), Value: fmt.Sprintf("value-%d-%d", i, j)})
	}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/other:1", Env: env,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
					},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}}},
					LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
				}}},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")}}},
	}
	for _, obj := range []client.Object{d, svc} {
		manifest, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		obj.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(manifest) + "\n"})
		if err := c.Create(ctx, obj, client.FieldOwner("kubectl-client-side-apply")); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
	}
	return nil
}

// annotate gives app i's Deployment an annotation of its own, outside its pod template: a watch
// event for its Canary, and nothing it depends on.
func annotate(ctx context.Context, c client.Client, i int) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: appName(i), Namespace: namespace}}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{"bench/poke":%q}}}`, time.Now().Format(time.RFC3339Nano)))
	return c.Patch(ctx, d, patch)
}

// changeTemplate gives app i's pod template a new annotation: a new revision to roll out.
func changeTemplate(ctx context.Context, c client.Client, i int) error {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: appName(i), Namespace: namespace}}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"template":{"metadata":{"annotations":{"bench/wave":%q}}}}}`, time.Now().Format(time.RFC3339Nano)))
	return c.Patch(ctx, d, patch)
}

// waitPhase polls until every Canary (of names, or all) is in a phase done accepts.
func waitPhase(ctx context.Context, c client.Reader, names map[string]bool, timeout time.Duration, proc *process, done func(v1alpha1.CanaryPhase) bool, logf func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		var list v1alpha1.CanaryList
		if err := c.List(ctx, &list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		left, total := 0, 0
		for _, cn := range list.Items {
			if names != nil && !names[cn.Name] {
				continue
			}
			total++
			if !done(cn.Status.Phase) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Since(lastLog) > 30*time.Second {
			logf("%d of %d Canaries still to go", left, total)
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d of %d Canaries still to go", timeout, left, total)
		}
		select {
		case <-proc.exited:
			return fmt.Errorf("the controller exited: %w", proc.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// parallel runs f(0..n-1) on workers goroutines, returning the first error.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
loop:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	return first
}

// controllerBinary is path, or the controller built into bin/trafficctl.
func controllerBinary(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(root, "bin", "trafficctl")
	build := exec.Command("go", "build", "-o", out, "./cmd/trafficctl")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the controller: %w: %s", err, b)
	}
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 3000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// sampler samples the resident sets of the controller, the apiserver and etcd every second.
type sampler struct {
	pids [3]int

	mu     sync.Mutex
	maxes  [3]int64
	sum    int64
	n      int64
	marked bool
}

func newSampler(controller, apiserver, etcd int) *sampler {
	return &sampler{pids: [3]int{controller, apiserver, etcd}}
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *sampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pid := range s.pids {
		if pid == 0 {
			continue
		}
		rss, err := rssBytes(pid)
		if err != nil {
			continue
		}
		s.maxes[i] = max(s.maxes[i], rss)
		if i == 0 && s.marked {
			s.sum += rss
			s.n++
		}
	}
}

// mark starts a window whose mean meanSinceMark gives.
func (s *sampler) mark() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marked, s.sum, s.n = true, 0, 0
}

func (s *sampler) meanSinceMark() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		return 0
	}
	return s.sum / s.n
}

func (s *sampler) max() (controller, apiserver, etcd int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxes[0], s.maxes[1], s.maxes[2]
}
