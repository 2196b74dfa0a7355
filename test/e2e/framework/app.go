package framework

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/test/e2e/load"
)

// Version is one release of the demo app: an image tag and the behaviour its pods get.
type Version struct {
	Tag       string
	ErrorRate float64
	Latency   time.Duration
	Crash     bool
}

func (v Version) env() []corev1.EnvVar {
	env := []corev1.EnvVar{{Name: "ERROR_RATE", Value: fmt.Sprint(v.ErrorRate)}, {Name: "LATENCY", Value: v.Latency.String()}}
	if v.Crash {
		env = append(env, corev1.EnvVar{Name: "CRASH", Value: "true"})
	}
	return env
}

// AppOptions describe one scenario: the first version, the Canary, the load.
type AppOptions struct {
	// Namespace is created for the app; it also names its host, <namespace>.example.com.
	Namespace string
	Initial   Version
	Replicas  int32
	// Canary adjusts the Canary before it is created.
	Canary func(*v1alpha1.Canary)
	// Rate is the load in requests per second; 0 for none.
	Rate int
	// PodLabels are added to the pod template beside the selector's label app: podinfo, such as
	// app.kubernetes.io/name, which provider kubernetes' replica ratio selects both Deployments by.
	PodLabels map[string]string
	// Objects are created in the namespace before the Deployment and the Canary, such as a route
	// the user owns. Each is updated with what the apiserver stored, so a test can later compare
	// the object with what it was before trafficctl saw it.
	Objects []client.Object
	// Deployment adjusts the Deployment before it is created, such as the config it reads.
	Deployment func(*appsv1.Deployment)
	// PrometheusURL is the Prometheus the controller asks; the environment's when empty.
	PrometheusURL string
}

// Host is the host name an app in namespace is called by.
func Host(namespace string) string { return namespace + ".example.com" }

// App is the demo app podinfo in its own namespace, its Canary, a trafficctl controller
// watching that namespace, and a load generator calling it through the data plane.
type App struct {
	env        *Env
	Namespace  string
	Host       string
	Controller *Controller
	Load       *load.Generator
	c          client.Client

	// loads are the generators StartLoad started, stopped with the app.
	loads []*load.Generator

	weights *testenv.WeightLog
}

// Name is the name of the Deployment, the Canary and the apex Service.
const Name = "podinfo"

// NewApp sets the scenario up and waits until the Canary is Initialized.
func (e *Env) NewApp(ctx context.Context, o AppOptions) (*App, error) {
	a := &App{env: e, Namespace: o.Namespace, Host: Host(o.Namespace), c: e.Cluster.Client()}
	if err := a.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.Namespace}}); err != nil {
		return nil, err
	}
	for _, obj := range o.Objects {
		obj.SetNamespace(o.Namespace)
		if err := a.c.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	var err error
	if a.weights, err = testenv.WatchCanaryWeights(e.Cluster.Config(), o.Namespace, Name+"-canary"); err != nil {
		return nil, err
	}
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 2
	}
	labels := map[string]string{"app": Name}
	podLabels := maps.Clone(o.PodLabels)
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	maps.Copy(podLabels, labels)
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: o.Namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "demoapp:" + o.Initial.Tag, Env: o.Initial.env(),
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9898)},
					}},
				}}},
			},
		},
	}
	if o.Deployment != nil {
		o.Deployment(deploy)
	}
	if err := a.c.Create(ctx, deploy); err != nil {
		return nil, err
	}
	cn := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: o.Namespace},
		Spec: v1alpha1.CanarySpec{
			TargetRef:               v1alpha1.TargetReference{Name: Name},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Service: v1alpha1.CanaryService{
				Port:       9898,
				ParentRefs: []v1alpha1.ParentReference{{Name: GatewayName, Namespace: ptr.To(GatewayNamespace)}},
				Hostnames:  []string{a.Host},
			},
			Analysis: v1alpha1.CanaryAnalysis{
				// Prometheus hands new targets to its scraper every 5s; a 10s interval gives every
				// check several scrapes of the canary's pods.
				Interval: "10s", Threshold: 2, StepWeights: []int32{20, 50},
				Metrics: []v1alpha1.CanaryMetric{
					{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(99.0)}},
					{Name: "request-duration", ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(100.0)}},
				},
			},
		},
	}
	if o.Canary != nil {
		o.Canary(cn)
	}
	if err := a.c.Create(ctx, cn); err != nil {
		return nil, err
	}
	a.Controller, err = StartController(ctx, ControllerOptions{
		Binary: e.Trafficctl, Kubeconfig: e.Cluster.Kubeconfig, Prometheus: cmp.Or(o.PrometheusURL, e.Prometheus.URL()),
		WatchNamespace: o.Namespace, LogDir: e.Dir, LogName: "trafficctl-" + o.Namespace + ".log",
	})
	if err != nil {
		return nil, err
	}
	if _, err := a.WaitPhase(ctx, 90*time.Second, v1alpha1.PhaseInitialized); err != nil {
		return nil, fmt.Errorf("initializing: %w", err)
	}
	if o.Rate > 0 {
		if a.Load, err = load.Start(ctx, load.Options{URL: e.DataPlane.URL(), Host: a.Host, Rate: o.Rate}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// StartLoad starts another group of users calling the app, such as an A/B cohort that sends a
// header or users who keep cookies; o.URL and o.Host default to the data plane and the app's
// host. The load stops with the app.
func (a *App) StartLoad(ctx context.Context, o load.Options) (*load.Generator, error) {
	if o.URL == "" {
		o.URL = a.env.DataPlane.URL()
	}
	if o.Host == "" {
		o.Host = a.Host
	}
	g, err := load.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	a.loads = append(a.loads, g)
	return g, nil
}

// Client is a direct client of the cluster, for the objects a scenario reads or changes itself.
func (a *App) Client() client.Client { return a.c }

// Release rolls out a new version by changing the Deployment's pod template, as a user or a
// GitOps tool would.
func (a *App) Release(ctx context.Context, v Version) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := a.c.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: Name}, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "demoapp:" + v.Tag
		d.Spec.Template.Spec.Containers[0].Env = v.env()
		return a.c.Update(ctx, d)
	})
}

// Canary reads the Canary as stored.
func (a *App) Canary(ctx context.Context) (*v1alpha1.Canary, error) {
	cn := &v1alpha1.Canary{}
	return cn, a.c.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: Name}, cn)
}

// Deployment reads one of the app's Deployments.
func (a *App) Deployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	return d, a.c.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: name}, d)
}

// Wait polls the Canary until cond holds.
func (a *App) Wait(ctx context.Context, timeout time.Duration, what string, cond func(*v1alpha1.Canary) bool) (*v1alpha1.Canary, error) {
	var last *v1alpha1.Canary
	err := eventually(ctx, timeout, func() (bool, error) {
		cn, err := a.Canary(ctx)
		if err != nil {
			return false, err
		}
		last = cn
		return cond(cn), nil
	})
	if err != nil {
		return last, fmt.Errorf("waiting %s for %s: %w; %s", timeout, what, err, Describe(last))
	}
	return last, nil
}

// WaitPhase waits for one of the phases.
func (a *App) WaitPhase(ctx context.Context, timeout time.Duration, phases ...v1alpha1.CanaryPhase) (*v1alpha1.Canary, error) {
	return a.Wait(ctx, timeout, fmt.Sprint("phase ", phases), func(cn *v1alpha1.Canary) bool {
		return slices.Contains(phases, cn.Status.Phase)
	})
}

// Describe sums a Canary up in one line, for failures and progress.
func Describe(cn *v1alpha1.Canary) string {
	if cn == nil {
		return "no canary"
	}
	ready := ""
	if c := meta.FindStatusCondition(cn.Status.Conditions, "Ready"); c != nil {
		ready = c.Reason + ": " + c.Message
	}
	return fmt.Sprintf("phase=%s step=%d weight=%d failedChecks=%d ready=%q", cn.Status.Phase, cn.Status.Step, cn.Status.CanaryWeight, cn.Status.FailedChecks, ready)
}

// RouteWeights is every canary weight the app's route carried, in order, from a watch.
func (a *App) RouteWeights() []int32 { return a.weights.Weights() }

// WaitRouteWeights waits until the route has carried exactly the given canary weights. The
// controller writes the route just after the status that asks for it, so a test that saw a
// phase may have to wait a moment for the route.
func (a *App) WaitRouteWeights(ctx context.Context, want []int32, timeout time.Duration) []int32 {
	_ = eventually(ctx, timeout, func() (bool, error) { return slices.Equal(a.RouteWeights(), want), nil })
	return a.RouteWeights()
}

// Traffic measures what users saw over a period: the load generator's counts between now and
// after d.
func (a *App) Traffic(ctx context.Context, d time.Duration) (load.Counts, error) {
	before := a.Load.Counts()
	select {
	case <-ctx.Done():
		return load.Counts{}, ctx.Err()
	case <-time.After(d):
	}
	return a.Load.Counts().Sub(before), nil
}

// Settle starts a measured period after a change the test just saw: it waits until the data plane
// reports every route of the app loaded at its current generation (the status it writes once it
// serves it), gives a second to what has no route status (a Service's selector, Ready pods), then
// waits for every request the app's load sent before to be answered, so Counts read from then on
// hold only requests sent once the change was served.
func (a *App) Settle(ctx context.Context) error {
	if err := a.WaitRoutesLoaded(ctx, 30*time.Second); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	return a.Load.Barrier(ctx)
}

// ControllerLog is where the app's controller writes.
func (a *App) ControllerLog() string {
	return filepath.Join(a.env.Dir, "trafficctl-"+a.Namespace+".log")
}

// Stop stops the load, the controller and the route recorder; the namespace stays for
// inspection until the cluster goes.
func (a *App) Stop() {
	for _, g := range a.loads {
		g.Stop()
	}
	if a.Load != nil {
		a.Load.Stop()
	}
	if a.Controller != nil {
		a.Controller.Stop()
	}
	if a.weights != nil {
		a.weights.Stop()
	}
}
