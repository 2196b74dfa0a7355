package charts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/trafficctl/trafficctl/internal/testenv"
)

const (
	chartDir  = "trafficctl"
	release   = "trafficctl"
	releaseNS = "trafficctl-system"
	// watchNS is the namespace of the single-namespace mode.
	watchNS = "shop"
	// everything is a values file that sets every value and enables every optional object.
	everything = "testdata/everything.yaml"

	helmTimeout = 2 * time.Minute
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// helmPath is the helm binary `make testenv` installs: $HELM, or bin/helm.
func helmPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("HELM")
	if path == "" {
		root, err := testenv.RepoRoot()
		require.NoError(t, err)
		path = filepath.Join(root, "bin", "helm")
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("no helm at %s (HELM=%q): run `make testenv`, which installs it into bin/, or run these tests with `make test`", path, os.Getenv("HELM"))
	}
	return path
}

// helm runs helm with a configuration of its own (no repositories, no plugins, no kubeconfig
// but the one given) and returns its standard output; an error carries its standard error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), helmTimeout)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, helmPath(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// render is `helm template` of the chart as release trafficctl in trafficctl-system, CRDs
// included, with extra arguments such as "--set", "watchNamespace=shop".
func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", release, chartDir, "--namespace", releaseNS, "--include-crds"}, args...)...)
	require.NoError(t, err)
	return decode(t, []byte(out))
}

// decode reads every object of a multi-document YAML stream.
func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// ofKind is the rendered objects of one kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// one is the single rendered object of a kind, converted to its Go type.
func one[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) *T {
	t.Helper()
	found := ofKind(objs, kind)
	require.Len(t, found, 1, "rendered %s objects", kind)
	return convert[T](t, found[0])
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true), "%s %s", u.GetKind(), u.GetName())
	return out
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}
