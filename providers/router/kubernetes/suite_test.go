package kubernetes_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/providers/router/kubernetes"
)

// The suite runs against a real kube-apiserver and etcd, so the Canary CRD's validation and
// server-side apply's field ownership of Services are the real ones. No kube-controller-manager
// runs: tests play the Deployment controller by writing Deployment status themselves.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newRouter returns a Router writing straight to the apiserver, and the number of applies it has
// sent so far. The apiserver keeps the resourceVersion on an apply that changes nothing, so only
// the count tells a skipped write from a redundant one.
func newRouter(t *testing.T) (*kubernetes.Router, *int) {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: testenv.Scheme()})
	require.NoError(t, err)
	applies := new(int)
	counting := interceptor.NewClient(c, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			*applies++
			return c.Apply(ctx, obj, opts...)
		},
	})
	return kubernetes.New(counting, fieldManager), applies
}

// newNamespace gives each test a namespace of its own.
func newNamespace(t *testing.T) string { return env.Namespace(t) }

// newCanary creates Canary podinfo (provider kubernetes, port 9898, blue/green over 3
// iterations) in ns, changed by mods, so Services can be owned by a real object with a UID.
func newCanary(t *testing.T, ns string, mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	t.Helper()
	cn := gen.Canary(ns, append([]gen.CanaryMod{gen.Provider(v1alpha1.ProviderKubernetes), gen.BlueGreen(3)}, mods...)...)
	require.NoError(t, env.Client.Create(testContext(t), cn))
	return cn
}

// weighted turns the Canary into a weighted canary, which provider kubernetes runs as a replica
// ratio.
func weighted(cn *v1alpha1.Canary) {
	cn.Spec.Analysis.Iterations = nil
	cn.Spec.Analysis.StepWeights = []int32{10, 50}
}

// newDeployments creates the target podinfo (selector app=podinfo) with replicas and pod
// template labels extra besides its selector, and its primary podinfo-primary the way the
// controller builds it: the same template with every selector value suffixed "-primary".
func newDeployments(t *testing.T, ns string, targetReplicas, primaryReplicas int32, extra map[string]string) {
	t.Helper()
	labels := map[string]string{"app": "podinfo"}
	primaryLabels := map[string]string{"app": "podinfo-primary"}
	for k, v := range extra {
		labels[k], primaryLabels[k] = v, v
	}
	createDeployment(t, ns, "podinfo", targetReplicas, map[string]string{"app": "podinfo"}, labels)
	createDeployment(t, ns, "podinfo-primary", primaryReplicas, map[string]string{"app": "podinfo-primary"}, primaryLabels)
}

func createDeployment(t *testing.T, ns, name string, replicas int32, selector, labels map[string]string) {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "podinfo",
					Image: "ghcr.io/stefanprodan/podinfo:6.7.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
				}}},
			},
		},
	}
	require.NoError(t, env.Client.Create(testContext(t), d))
}

func getDeployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	require.NoError(t, env.Client.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: name}, d))
	return d
}

// setAvailable plays the Deployment controller: it has observed the current generation, all
// spec.replicas run the current template, and available of them are available.
func setAvailable(t *testing.T, ns, name string, available int32) {
	t.Helper()
	d := getDeployment(t, ns, name)
	want := ptr.Deref(d.Spec.Replicas, 1)
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            want,
		UpdatedReplicas:     want,
		ReadyReplicas:       available,
		AvailableReplicas:   available,
		UnavailableReplicas: want - available,
	}
	require.NoError(t, env.Client.Status().Update(testContext(t), d))
}

// scale sets a Deployment's spec.replicas, as the controller does to set the canary's share.
func scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	d := getDeployment(t, ns, name)
	d.Spec.Replicas = ptr.To(replicas)
	require.NoError(t, env.Client.Update(testContext(t), d))
}

func getService(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	require.NoError(t, env.Client.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: name}, svc))
	return svc
}
