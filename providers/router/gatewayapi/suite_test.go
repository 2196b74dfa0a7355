package gatewayapi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// The suite runs against a real kube-apiserver and etcd, so the Gateway API CRDs' schema,
// defaults and CEL rules, and server-side apply's field ownership, are the real ones.
var (
	restConfig *rest.Config
	scheme     *runtime.Scheme
	k8sClient  client.Client
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: these tests need a real kube-apiserver and etcd; "+
			"run `make test`, which installs them into bin/ and sets it")
		return 1
	}
	gatewayAPIDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "find the sigs.k8s.io/gateway-api module for its CRDs: %v\n", err)
		return 1
	}

	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(strings.TrimSpace(string(gatewayAPIDir)), "config", "crd", "standard"),
			filepath.Join("..", "..", "..", "config", "crd"),
		},
		ErrorIfCRDPathMissing: true,
	}
	restConfig, err = env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()

	scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gatewayv1.Install, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintf(os.Stderr, "build scheme: %v\n", err)
			return 1
		}
	}
	k8sClient, err = client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "build client: %v\n", err)
		return 1
	}
	return m.Run()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace gives each test a namespace of its own.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gatewayapi-"}}
	require.NoError(t, k8sClient.Create(testContext(t), ns))
	return ns.Name
}

// newCanary creates Canary podinfo (port 9898) in ns, changed by mods, so routes can be owned by a
// real object with a UID.
func newCanary(t *testing.T, ns string, mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	t.Helper()
	cn := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetReference{Name: "podinfo"},
			Service: v1alpha1.CanaryService{
				Port:       9898,
				ParentRefs: []v1alpha1.ParentReference{{Name: "public-gw", Namespace: ptr.To("infra")}},
				Hostnames:  []string{"podinfo.example.com"},
			},
			Analysis: v1alpha1.CanaryAnalysis{StepWeights: []int32{10, 50}},
		},
	}
	for _, mod := range mods {
		mod(cn)
	}
	require.NoError(t, k8sClient.Create(testContext(t), cn))
	return cn
}

// withUserRoute points the Canary at the user's HTTPRoute name.
func withUserRoute(name string) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Service.ParentRefs = nil
		cn.Spec.Service.Hostnames = nil
		cn.Spec.Service.HTTPRouteRef = &v1alpha1.LocalObjectReference{Name: name}
	}
}

func getRoute(t *testing.T, ns, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	route := &gatewayv1.HTTPRoute{}
	require.NoError(t, k8sClient.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: name}, route))
	return route
}

// acceptRoute plays the gateway controller: every parent accepts the route's current generation.
func acceptRoute(t *testing.T, ns, name string) {
	t.Helper()
	route := getRoute(t, ns, name)
	route.Status.Parents = nil
	for _, ref := range route.Spec.ParentRefs {
		route.Status.Parents = append(route.Status.Parents, gatewayv1.RouteParentStatus{
			ParentRef:      ref,
			ControllerName: "example.com/gateway-controller",
			Conditions: []metav1.Condition{{
				Type:               string(gatewayv1.RouteConditionAccepted),
				Status:             metav1.ConditionTrue,
				ObservedGeneration: route.Generation,
				LastTransitionTime: metav1.Now(),
				Reason:             string(gatewayv1.RouteReasonAccepted),
				Message:            "Route is accepted.",
			}},
		})
	}
	require.NoError(t, k8sClient.Status().Update(testContext(t), route))
}
