package charts_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/internal/testenv"
)

const (
	leaseGroup = "coordination.k8s.io"
	pollFor    = 20 * time.Second
	pollEvery  = 100 * time.Millisecond
)

// grants flattens rules into one "group resource[/name] verb" line per permission, sorted, so
// that two sets of rules compare equal exactly when they allow the same requests, however
// they are grouped.
func grants(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, url := range r.NonResourceURLs {
			for _, verb := range r.Verbs {
				out = append(out, fmt.Sprintf("url %s %s", url, verb))
			}
		}
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				for _, name := range names {
					what := res
					if name != "" {
						what += "/" + name
					}
					for _, verb := range r.Verbs {
						out = append(out, fmt.Sprintf("%q %s %s", group, what, verb))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// generatedGrants reads config/rbac/role.yaml, the ClusterRole controller-gen generates from
// the controllers' kubebuilder markers, and splits it into what the controller needs where it
// acts and what leader election needs in the release namespace (the Lease).
func generatedGrants(t *testing.T) (acting, leaderElection []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	require.NoError(t, err)
	var role rbacv1.ClusterRole
	require.NoError(t, yaml.UnmarshalStrict(data, &role))
	for _, g := range grants(role.Rules) {
		if strings.HasPrefix(g, fmt.Sprintf("%q ", leaseGroup)) {
			leaderElection = append(leaderElection, g)
		} else {
			acting = append(acting, g)
		}
	}
	require.NotEmpty(t, acting)
	require.NotEmpty(t, leaderElection, "config/rbac/role.yaml grants the leader election Lease")
	return acting, leaderElection
}

// boundTo is the rules of the (Cluster)Roles that bindings of a kind give the ServiceAccount
// in the rendered objects, by the namespace they apply to ("" for cluster-wide).
func boundTo(t *testing.T, objs []*unstructured.Unstructured, bindingKind, saName string) map[string][]string {
	t.Helper()
	roles := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		if u.GetKind() == "Role" || u.GetKind() == "ClusterRole" {
			roles[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = u
		}
	}
	out := map[string][]string{}
	for _, u := range ofKind(objs, bindingKind) {
		b := convert[rbacv1.RoleBinding](t, u)
		require.Contains(t, b.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: saName, Namespace: releaseNS}, "%s %s", bindingKind, b.Name)
		ns := b.Namespace
		if b.RoleRef.Kind == "ClusterRole" {
			ns = ""
		}
		role, ok := roles[b.RoleRef.Kind+"/"+ns+"/"+b.RoleRef.Name]
		require.True(t, ok, "%s %s binds %s %s, which the chart renders", bindingKind, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		out[b.Namespace] = append(out[b.Namespace], grants(convert[rbacv1.ClusterRole](t, role).Rules)...)
	}
	return out
}

func TestClusterWideRBACIsGenerated(t *testing.T) {
	acting, leaderElection := generatedGrants(t)
	objs := render(t)
	require.Len(t, ofKind(objs, "ClusterRole"), 1)
	assert.Equal(t, map[string][]string{"": acting}, boundTo(t, objs, "ClusterRoleBinding", release),
		"the ClusterRole grants config/rbac/role.yaml's rules but the Lease; copy them into templates/_helpers.tpl")
	assert.Equal(t, map[string][]string{releaseNS: leaderElection}, boundTo(t, objs, "RoleBinding", release),
		"the Lease is granted in the release namespace only")
}

func TestSingleNamespaceRBACIsNamespaced(t *testing.T) {
	acting, leaderElection := generatedGrants(t)
	objs := render(t, "--set", "watchNamespace="+watchNS)
	assert.Empty(t, ofKind(objs, "ClusterRole"))
	assert.Empty(t, ofKind(objs, "ClusterRoleBinding"))
	assert.Equal(t, map[string][]string{watchNS: acting, releaseNS: leaderElection}, boundTo(t, objs, "RoleBinding", release))
}

// writeKubeconfig writes a kubeconfig for the test apiserver's admin, for helm.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	return path
}

// chartCRDs is the chart's CRDs as the files in crds/ define them.
func chartCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	require.NoError(t, err)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, u := range decode(t, data) {
			out = append(out, convert[apiextensionsv1.CustomResourceDefinition](t, u))
		}
	}
	require.Len(t, out, 3)
	return out
}

// crdClient talks to the test apiserver with a scheme that knows CustomResourceDefinitions,
// which the controller's does not.
func crdClient(t *testing.T) client.Client {
	t.Helper()
	scheme := testenv.Scheme()
	require.NoError(t, apiextensionsv1.AddToScheme(scheme))
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	require.NoError(t, err)
	return c
}

func TestHelmInstall(t *testing.T) {
	ctx := context.Background()
	kubeconfig := writeKubeconfig(t)
	// The test apiserver starts with config/crd's CRDs, which TestChartCRDsAreConfigCRDs shows
	// are the chart's, so helm leaves them be. (Deleting them first, to have helm create them,
	// races the apiserver's CRD storage: a CRD deleted a moment after it was created can stay
	// terminating for long.)
	crds, crdc := chartCRDs(t), crdClient(t)

	notes, err := helm(t, "install", release, chartDir, "--namespace", releaseNS, "--create-namespace", "--kubeconfig", kubeconfig, "--wait=false")
	require.NoError(t, err)
	installed := true
	t.Cleanup(func() {
		if installed {
			_, _ = helm(t, "uninstall", release, "--namespace", releaseNS, "--kubeconfig", kubeconfig)
		}
	})
	assert.Contains(t, notes, "kubectl get canaries -A")
	assert.Contains(t, notes, "trafficctl status NAME")

	var d appsv1.Deployment
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: release}, &d))
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(2), *d.Spec.Replicas)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--leader-elect")
	sa := d.Spec.Template.Spec.ServiceAccountName
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: sa}, &corev1.ServiceAccount{}))

	acting, leaderElection := generatedGrants(t)
	assert.Equal(t, acting, installedGrants(t, sa, ""), "the ClusterRole bound to the ServiceAccount grants config/rbac/role.yaml's rules but the Lease")
	assert.Equal(t, leaderElection, installedGrants(t, sa, releaseNS), "the Role bound in the release namespace grants the Lease")

	for _, want := range crds {
		var got apiextensionsv1.CustomResourceDefinition
		require.Eventually(t, func() bool {
			if err := crdc.Get(ctx, client.ObjectKey{Name: want.Name}, &got); err != nil {
				return false
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established {
					return c.Status == apiextensionsv1.ConditionTrue
				}
			}
			return false
		}, pollFor, pollEvery, "CRD %s is established", want.Name)
		assert.Equal(t, want.Spec.Names, got.Spec.Names)
	}

	checkAccess(t, sa)

	_, err = helm(t, "uninstall", release, "--namespace", releaseNS, "--kubeconfig", kubeconfig)
	require.NoError(t, err)
	installed = false
	err = env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: release}, &appsv1.Deployment{})
	assert.True(t, apierrors.IsNotFound(err), "the Deployment is gone: %v", err)
	err = env.Client.Get(ctx, client.ObjectKey{Name: release}, &rbacv1.ClusterRole{})
	assert.True(t, apierrors.IsNotFound(err), "the ClusterRole is gone: %v", err)
	for _, crd := range crds {
		assert.NoError(t, crdc.Get(ctx, client.ObjectKey{Name: crd.Name}, &apiextensionsv1.CustomResourceDefinition{}),
			"helm keeps the CRDs, and so the Canaries, on uninstall")
	}
}

// installedGrants is what the bindings stored in the apiserver give the ServiceAccount:
// cluster-wide when namespace is "", else in that namespace.
func installedGrants(t *testing.T, sa, namespace string) []string {
	t.Helper()
	ctx := context.Background()
	subject := rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: releaseNS}
	var rules []rbacv1.PolicyRule
	if namespace == "" {
		var bindings rbacv1.ClusterRoleBindingList
		require.NoError(t, env.Client.List(ctx, &bindings))
		for _, b := range bindings.Items {
			if slices.Contains(b.Subjects, subject) {
				var role rbacv1.ClusterRole
				require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Name: b.RoleRef.Name}, &role))
				rules = append(rules, role.Rules...)
			}
		}
	} else {
		var bindings rbacv1.RoleBindingList
		require.NoError(t, env.Client.List(ctx, &bindings, client.InNamespace(namespace)))
		for _, b := range bindings.Items {
			if slices.Contains(b.Subjects, subject) {
				require.Equal(t, "Role", b.RoleRef.Kind, "RoleBinding %s", b.Name)
				var role rbacv1.Role
				require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: b.RoleRef.Name}, &role))
				rules = append(rules, role.Rules...)
			}
		}
	}
	require.NotEmpty(t, rules, "something is bound to ServiceAccount %s/%s in %q", releaseNS, sa, namespace)
	return grants(rules)
}

// checkAccess asks the apiserver's RBAC authorizer, through SubjectAccessReviews, what the
// controller's ServiceAccount may do.
func checkAccess(t *testing.T, sa string) {
	t.Helper()
	type request struct {
		verb, group, resource, subresource, namespace string
	}
	allowed := []request{
		{"patch", "trafficctl.io", "canaries", "status", watchNS},
		{"update", "trafficctl.io", "canaries", "finalizers", watchNS},
		{"watch", "trafficctl.io", "canaries", "", watchNS},
		{"get", "", "secrets", "", watchNS},
		{"watch", "", "secrets", "", watchNS}, // the primary's copies are cached, selected by label
		{"delete", "", "secrets", "", watchNS},
		{"patch", "apps", "deployments", "", watchNS},
		{"create", "events.k8s.io", "events", "", watchNS},
		{"update", "coordination.k8s.io", "leases", "", releaseNS},
	}
	denied := []request{
		{"delete", "apps", "deployments", "", watchNS},
		{"update", "", "secrets", "", watchNS}, // a copy is never changed, only made anew
		{"patch", "", "secrets", "", watchNS},
		{"delete", "trafficctl.io", "canaries", "", watchNS},
		{"create", "", "pods", "", watchNS},
		{"update", "trafficctl.io", "metrictemplates", "", watchNS},
		{"update", "coordination.k8s.io", "leases", "", watchNS},
	}
	may := func(r request) (bool, error) {
		return mayDo(sa, r.verb, r.group, r.resource, r.subresource, r.namespace)
	}
	// The authorizer sees new bindings a moment after they are stored: wait for what must be
	// allowed, then what must be denied is denied for good.
	for _, r := range allowed {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			ok, err := may(r)
			require.NoError(c, err)
			assert.True(c, ok)
		}, pollFor, pollEvery, "the controller may %s %+v", r.verb, r)
	}
	for _, r := range denied {
		ok, err := may(r)
		require.NoError(t, err)
		assert.False(t, ok, "the controller may not %s %+v", r.verb, r)
	}
}

// mayDo asks the apiserver's RBAC authorizer, through a SubjectAccessReview, whether the
// controller's ServiceAccount sa may do verb on resource in namespace ("" for cluster-wide).
func mayDo(sa, verb, group, resource, subresource, namespace string) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   fmt.Sprintf("system:serviceaccount:%s:%s", releaseNS, sa),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: subresource,
		},
	}}
	if err := env.Client.Create(context.Background(), sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// TestHelmInstallOneNamespace installs the chart watching one namespace: the controller may read
// Secrets and write its objects there, and nowhere else, nor cluster-wide.
func TestHelmInstallOneNamespace(t *testing.T) {
	kubeconfig := writeKubeconfig(t)
	ensureNamespace(t, watchNS)
	const name = "trafficctl-shop"
	_, err := helm(t, "install", name, chartDir, "--namespace", releaseNS, "--create-namespace", "--kubeconfig", kubeconfig,
		"--wait=false", "--skip-crds", "--set", "watchNamespace="+watchNS)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = helm(t, "uninstall", name, "--namespace", releaseNS, "--kubeconfig", kubeconfig) })
	var d appsv1.Deployment
	require.NoError(t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: releaseNS, Name: name}, &d))
	sa := d.Spec.Template.Spec.ServiceAccountName

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, verb := range []string{"get", "list", "watch"} {
			ok, err := mayDo(sa, verb, "", "secrets", "", watchNS)
			require.NoError(c, err)
			assert.True(c, ok, "%s secrets in %s", verb, watchNS)
		}
	}, pollFor, pollEvery, "the Role in %s is seen by the authorizer", watchNS)
	for _, ns := range []string{"", "default", releaseNS} {
		for _, r := range [][3]string{{"get", "", "secrets"}, {"list", "", "secrets"}, {"list", "", "configmaps"}, {"patch", "apps", "deployments"}, {"list", "trafficctl.io", "canaries"}} {
			ok, err := mayDo(sa, r[0], r[1], r[2], "", ns)
			require.NoError(t, err)
			assert.False(t, ok, "the controller watching %s may not %s %s/%s in %q", watchNS, r[0], r[1], r[2], ns)
		}
	}
}
