package istio_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/gen"
	"github.com/trafficctl/trafficctl/internal/testenv"
)

// The suite runs against a real kube-apiserver and etcd, so the Istio CRDs' schema and CEL rules,
// and server-side apply's field ownership, are the real ones.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace gives each test a namespace of its own.
func newNamespace(t *testing.T) string { return env.Namespace(t) }

// newCanary creates Canary podinfo (provider istio, port 9898) in ns, changed by mods, so the
// objects trafficctl writes can be owned by a real object with a UID.
func newCanary(t *testing.T, ns string, mods ...func(*v1alpha1.Canary)) *v1alpha1.Canary {
	t.Helper()
	cn := gen.Canary(ns, append([]gen.CanaryMod{gen.Provider(v1alpha1.ProviderIstio)}, mods...)...)
	require.NoError(t, env.Client.Create(testContext(t), cn))
	return cn
}

// withUserRoute points the Canary at the user's VirtualService name.
func withUserRoute(name string) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Service.VirtualServiceRef = &v1alpha1.LocalObjectReference{Name: name}
	}
}

// withTrafficPolicy sets service.trafficPolicy to the JSON policy.
func withTrafficPolicy(policy string) func(*v1alpha1.Canary) {
	return func(cn *v1alpha1.Canary) {
		cn.Spec.Service.TrafficPolicy = &runtime.RawExtension{Raw: []byte(policy)}
	}
}

// get reads kind (VirtualService or DestinationRule) ns/name as stored, unknown fields included.
func get(t *testing.T, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("networking.istio.io/v1")
	obj.SetKind(kind)
	require.NoError(t, env.Client.Get(testContext(t), client.ObjectKey{Namespace: ns, Name: name}, obj))
	return obj
}

func getVS(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	return get(t, "VirtualService", ns, name)
}

// fromYAML is the object written in manifest, in namespace ns.
func fromYAML(t *testing.T, ns, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(manifest), &obj.Object))
	obj.SetNamespace(ns)
	return obj
}

// spec is obj's spec, or a field under it.
func spec(t *testing.T, obj *unstructured.Unstructured, fields ...string) any {
	t.Helper()
	v, found, err := unstructured.NestedFieldCopy(obj.Object, append([]string{"spec"}, fields...)...)
	require.NoError(t, err)
	require.True(t, found, "%s has spec %v", obj.GetName(), fields)
	return v
}

// setStatus plays istiod's status writer: it replaces the VirtualService's status.
func setStatus(t *testing.T, ns, name string, status map[string]any) {
	t.Helper()
	vs := getVS(t, ns, name)
	vs.Object["status"] = status
	require.NoError(t, env.Client.Status().Update(testContext(t), vs))
}

// assertFieldsOwned checks the fields manager owns through server-side apply or update: owned
// must appear in its managed fields, notOwned must not.
func assertFieldsOwned(t *testing.T, obj *unstructured.Unstructured, manager string, owned, notOwned []string) {
	t.Helper()
	var fields strings.Builder
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager == manager && entry.FieldsV1 != nil {
			fields.Write(entry.FieldsV1.GetRawBytes())
		}
	}
	for _, f := range owned {
		assert.Contains(t, fields.String(), f, "%s owns %s", manager, f)
	}
	for _, f := range notOwned {
		assert.NotContains(t, fields.String(), f, "%s does not own %s", manager, f)
	}
}
