// Package config_test checks that what `kubectl apply -k config/` installs, and the samples,
// are accepted by a real kube-apiserver with the CRDs' own validation.
package config_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// objects decodes every object of a multi-document YAML file.
func objects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out
		} else {
			require.NoError(t, err, path)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// dryRunApply sends an object through server-side apply with dry run: schema, defaults, CEL
// rules and admission all run, nothing is stored.
func dryRunApply(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("config-test"), client.DryRunAll, client.ForceOwnership)
	require.NoError(t, err, "%s %s", u.GetKind(), u.GetName())
}

func TestInstallManifestsApply(t *testing.T) {
	var kustomization struct {
		Namespace string   `json:"namespace"`
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile("kustomization.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &kustomization))
	require.NotEmpty(t, kustomization.Resources)
	ensureNamespace(t, kustomization.Namespace)

	kinds := map[string]bool{}
	for _, res := range kustomization.Resources {
		for _, u := range objects(t, filepath.Clean(res)) {
			kinds[u.GetKind()] = true
			dryRunApply(t, u)
		}
	}
	for _, kind := range []string{"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Deployment", "Namespace"} {
		require.True(t, kinds[kind], "the install includes a %s", kind)
	}
}

func TestSamplesApply(t *testing.T) {
	ensureNamespace(t, "shop")
	samples, err := filepath.Glob("samples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, samples)
	for _, path := range samples {
		for _, u := range objects(t, path) {
			dryRunApply(t, u)
		}
	}
}
