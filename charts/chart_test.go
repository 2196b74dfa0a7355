package charts_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/internal/testenv"
	"github.com/trafficctl/trafficctl/providers/netguard"
)

// renderings are the modes the chart is installed in.
var renderings = []struct {
	name string
	args []string
}{
	{"defaults", nil},
	{"single namespace", []string{"--set", "watchNamespace=" + watchNS}},
	{"everything enabled", []string{"--values", everything}},
}

func TestLint(t *testing.T) {
	for _, args := range [][]string{
		{"lint", chartDir},
		{"lint", "--strict", chartDir},
		{"lint", "--strict", chartDir, "--set", "watchNamespace=" + watchNS},
		{"lint", "--strict", chartDir, "--values", everything},
	} {
		out, err := helm(t, args...)
		require.NoError(t, err, out)
		require.Contains(t, out, "0 chart(s) failed")
	}
}

// TestRenderingsApply sends every object of each rendering through server-side apply with dry
// run: the apiserver's schemas, defaulting and admission all run, nothing is stored.
func TestRenderingsApply(t *testing.T) {
	ensureNamespace(t, releaseNS)
	ensureNamespace(t, watchNS)
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			kinds := map[string]bool{}
			for _, u := range render(t, r.args...) {
				kinds[u.GetKind()] = true
				if u.GetKind() == "ServiceMonitor" {
					// The test apiserver has no Prometheus Operator CRDs;
					// TestServiceMonitorSelectsMetricsService checks this one.
					continue
				}
				err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u),
					client.FieldOwner("chart-test"), client.DryRunAll, client.ForceOwnership)
				require.NoError(t, err, "%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
			}
			for _, kind := range []string{"CustomResourceDefinition", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "PodDisruptionBudget"} {
				assert.True(t, kinds[kind], "renders a %s", kind)
			}
			if r.name == "everything enabled" {
				assert.True(t, kinds["ServiceMonitor"], "renders a ServiceMonitor")
				assert.True(t, kinds["ConfigMap"], "renders the dashboards' ConfigMap")
			}
		})
	}
}

func TestChartCRDsAreConfigCRDs(t *testing.T) {
	generated, err := filepath.Glob("../config/crd/*.yaml")
	require.NoError(t, err)
	require.Len(t, generated, 3, "canaries, metrictemplates and alertproviders")
	shipped, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	require.NoError(t, err)
	base := func(paths []string) (out []string) {
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	require.Equal(t, base(generated), base(shipped), "run `make chart-crds`")
	for _, path := range generated {
		want, err := os.ReadFile(path)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(path)))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%s differs from config/crd's: run `make chart-crds`", filepath.Base(path))
	}
}

func appVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	require.NoError(t, err)
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	require.NoError(t, yaml.Unmarshal(data, &chart))
	require.Equal(t, chart.Version, chart.AppVersion, "the chart's first release matches the controller's")
	return chart.AppVersion
}

func TestDeploymentDefaults(t *testing.T) {
	objs := render(t)
	d := one[appsv1.Deployment](t, objs, "Deployment")
	assert.Equal(t, release, d.Name)
	assert.Equal(t, releaseNS, d.Namespace)
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(2), *d.Spec.Replicas)

	pod := d.Spec.Template.Spec
	assert.Equal(t, release, pod.ServiceAccountName)
	assert.Equal(t, &corev1.PodSecurityContext{
		RunAsNonRoot:   new(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}, pod.SecurityContext)
	assert.Empty(t, pod.NodeSelector)
	assert.Empty(t, pod.Tolerations)
	assert.Nil(t, pod.Affinity)
	assert.Empty(t, pod.PriorityClassName)

	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, "ghcr.io/trafficctl/trafficctl:"+appVersion(t), c.Image)
	assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)
	assert.Equal(t, []string{
		"controller",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--leader-elect",
		"--leader-election-namespace=" + releaseNS,
		"--prometheus-address=http://prometheus.monitoring:9090",
		"--query-timeout=10s",
		"--concurrent-canaries=4",
		"--zap-log-level=info",
		"--url-deny-cidrs=" + strings.Join(netguard.DefaultDeny, ","),
	}, c.Args, "the chart's default URL deny list is the controller's own")
	assert.Equal(t, []corev1.ContainerPort{
		{Name: "metrics", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "probes", ContainerPort: 8081, Protocol: corev1.ProtocolTCP},
	}, c.Ports)
	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.ReadinessProbe)
	assert.Equal(t, &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("probes")}, c.LivenessProbe.HTTPGet)
	assert.Equal(t, &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("probes")}, c.ReadinessProbe.HTTPGet)
	assert.Equal(t, corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}, c.Resources)
	assert.Equal(t, &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		ReadOnlyRootFilesystem:   new(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}, c.SecurityContext)

	svc := one[corev1.Service](t, objs, "Service")
	assert.Equal(t, release+"-metrics", svc.Name)
	assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)), "the metrics Service selects the controller's pods: %v", svc.Spec.Selector)
	assert.Equal(t, []corev1.ServicePort{{Name: "metrics", Port: 8080, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP}}, svc.Spec.Ports)

	pdb := one[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
	assert.Equal(t, new(intstr.FromInt32(1)), pdb.Spec.MinAvailable)
	assert.Equal(t, d.Spec.Selector, pdb.Spec.Selector)

	assert.Empty(t, ofKind(objs, "ServiceMonitor"), "off by default")
	assert.Empty(t, ofKind(objs, "ConfigMap"), "dashboards are off by default")
}

func TestDeploymentFollowsValues(t *testing.T) {
	objs := render(t, "--values", everything)
	d := one[appsv1.Deployment](t, objs, "Deployment")
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(3), *d.Spec.Replicas)
	pod := d.Spec.Template.Spec
	assert.Equal(t, "trafficctl-controller", pod.ServiceAccountName)
	assert.Equal(t, []corev1.LocalObjectReference{{Name: "regcred"}}, pod.ImagePullSecrets)
	assert.Equal(t, "platform-critical", pod.PriorityClassName)
	assert.Equal(t, map[string]string{"kubernetes.io/os": "linux"}, pod.NodeSelector)
	assert.Equal(t, []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "platform", Effect: corev1.TaintEffectNoSchedule}}, pod.Tolerations)
	require.NotNil(t, pod.Affinity)
	assert.NotNil(t, pod.Affinity.PodAntiAffinity)
	assert.Equal(t, "delivery", d.Spec.Template.Annotations["example.com/team"])

	c := pod.Containers[0]
	assert.Equal(t, "registry.example.com/platform/trafficctl:0.1.0-rc.1", c.Image)
	assert.Equal(t, corev1.PullAlways, c.ImagePullPolicy)
	assert.Subset(t, c.Args, []string{
		"--prometheus-address=https://prometheus.example.com:9443/prom",
		"--query-timeout=1m30s",
		"--concurrent-canaries=8",
		"--zap-log-level=debug",
	})
	assert.Equal(t, resource.MustParse("512Mi"), c.Resources.Limits[corev1.ResourceMemory])

	sa := one[corev1.ServiceAccount](t, objs, "ServiceAccount")
	assert.Equal(t, "trafficctl-controller", sa.Name)
	assert.Equal(t, "arn:aws:iam::123456789012:role/trafficctl", sa.Annotations["eks.amazonaws.com/role-arn"])

	svc := one[corev1.Service](t, objs, "Service")
	assert.Equal(t, int32(9090), svc.Spec.Ports[0].Port)
	assert.Equal(t, intstr.FromString("metrics"), svc.Spec.Ports[0].TargetPort)
}

func TestSingleNamespaceMode(t *testing.T) {
	d := one[appsv1.Deployment](t, render(t, "--set", "watchNamespace="+watchNS), "Deployment")
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--watch-namespace="+watchNS)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--leader-election-namespace="+releaseNS,
		"the Lease stays in the release namespace")
	d = one[appsv1.Deployment](t, render(t), "Deployment")
	for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
		assert.NotContains(t, arg, "--watch-namespace", "cluster-wide by default")
	}
}

func TestPodDisruptionBudgetOnlyWithSpareReplicas(t *testing.T) {
	assert.Empty(t, ofKind(render(t, "--set", "replicas=1"), "PodDisruptionBudget"), "one replica: a PDB would block every drain")
	assert.Empty(t, ofKind(render(t, "--set", "podDisruptionBudget.enabled=false"), "PodDisruptionBudget"))
	assert.Len(t, ofKind(render(t, "--set", "replicas=3"), "PodDisruptionBudget"), 1)
}

func TestServiceMonitorSelectsMetricsService(t *testing.T) {
	objs := render(t, "--values", everything)
	svc := one[corev1.Service](t, objs, "Service")
	monitors := ofKind(objs, "ServiceMonitor")
	require.Len(t, monitors, 1)
	sm := monitors[0]
	assert.Equal(t, "monitoring.coreos.com/v1", sm.GetAPIVersion())
	assert.Equal(t, releaseNS, sm.GetNamespace())
	assert.Equal(t, "kube-prometheus-stack", sm.GetLabels()["release"], "serviceMonitor.labels")

	var spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port        string `json:"port"`
			Path        string `json:"path"`
			Interval    string `json:"interval"`
			HonorLabels bool   `json:"honorLabels"`
		} `json:"endpoints"`
	}
	data, err := yaml.Marshal(sm.Object["spec"])
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(data, &spec))
	require.NotEmpty(t, spec.Selector.MatchLabels)
	for k, v := range spec.Selector.MatchLabels {
		assert.Equal(t, v, svc.Labels[k], "the ServiceMonitor selects the metrics Service by %s", k)
	}
	assert.Equal(t, []string{releaseNS}, spec.NamespaceSelector.MatchNames)
	require.Len(t, spec.Endpoints, 1)
	assert.Equal(t, svc.Spec.Ports[0].Name, spec.Endpoints[0].Port)
	assert.Equal(t, "/metrics", spec.Endpoints[0].Path)
	assert.Equal(t, "15s", spec.Endpoints[0].Interval)
	assert.True(t, spec.Endpoints[0].HonorLabels, "the Canary series' namespace label is the Canary's, not the controller pod's")
}

func TestDashboardConfigMap(t *testing.T) {
	cm := one[corev1.ConfigMap](t, render(t, "--set", "dashboards.enabled=true"), "ConfigMap")
	assert.Equal(t, "1", cm.Labels["grafana_dashboard"], "the label the Grafana sidecar looks for")
	want, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "trafficctl.json"))
	require.NoError(t, err)
	assert.JSONEq(t, string(want), cm.Data["trafficctl.json"])
}

// TestControllerAcceptsArguments runs the controller binary with each rendering's arguments
// and --help: the flags are parsed (and --help then stops it), so an unknown flag or a value
// the flag does not accept fails here rather than in a crash-looping pod.
func TestControllerAcceptsArguments(t *testing.T) {
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "trafficctl")
	build := exec.Command("go", "build", "-o", bin, "./cmd/trafficctl")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	for _, r := range append(renderings, struct {
		name string
		args []string
	}{"error logs and a short query timeout", []string{"--set", "logLevel=error", "--set", "queryTimeout=500ms"}},
		struct {
			name string
			args []string
		}{"shards", []string{"--set", "shards={east,west}"}}) {
		t.Run(r.name, func(t *testing.T) {
			for _, u := range ofKind(render(t, r.args...), "Deployment") {
				args := convert[appsv1.Deployment](t, u).Spec.Template.Spec.Containers[0].Args
				require.Equal(t, "controller", args[0])
				out, err := exec.Command(bin, append(slices.Clone(args), "--help")...).CombinedOutput()
				require.NoError(t, err, "trafficctl %s:\n%s", strings.Join(args, " "), out)
			}
		})
	}
}

func TestSchemaRejectsWrongValues(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"replicas=two", "at '/replicas': got string, want integer"},
		{"replicas=0", "at '/replicas': minimum: got 0, want 1"},
		{"logLevel=loud", "at '/logLevel': value must be one of 'debug', 'info', 'error'"},
		{"prometheus.address=prometheus:9090", "at '/prometheus/address': 'prometheus:9090' does not match pattern"},
		{"queryTimeout=soon", "at '/queryTimeout': 'soon' does not match pattern"},
		{"concurrentCanaries=0", "at '/concurrentCanaries': minimum: got 0, want 1"},
		{"watchNamespace=Shop", "at '/watchNamespace': 'Shop' does not match pattern"},
		{"image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"},
		{"serviceMonitor.enabled=yes", "at '/serviceMonitor/enabled': got string, want boolean"},
		{"replica=3", "additional properties 'replica' not allowed"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := helm(t, "template", release, chartDir, "--set", tc.set)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "values don't meet the specifications of the schema")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Shards: one Deployment per shard, each with its own selector (no Deployment selects another's
// pods), the default one leaving the listed shards' Canaries alone, one PodDisruptionBudget each,
// and the metrics Service selecting the pods of every shard.
func TestShards(t *testing.T) {
	objs := render(t, "--set", "shards={east,west}")
	deployments := ofKind(objs, "Deployment")
	require.Len(t, deployments, 3)
	want := map[string]string{
		release:                 "--other-shards=east,west",
		release + "-shard-east": "--shard=east",
		release + "-shard-west": "--shard=west",
	}
	var selectors []labels.Selector
	var pods []labels.Set
	for _, u := range deployments {
		d := convert[appsv1.Deployment](t, u)
		flag, ok := want[d.Name]
		require.True(t, ok, "unexpected Deployment %s", d.Name)
		assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, flag, d.Name)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		require.NoError(t, err)
		selectors = append(selectors, sel)
		pods = append(pods, d.Spec.Template.Labels)
	}
	for i, sel := range selectors {
		for j, pod := range pods {
			assert.Equal(t, i == j, sel.Matches(pod), "selector of Deployment %d on the pods of Deployment %d", i, j)
		}
	}
	// The default shard's selector is the one of a chart without shards: an upgrade keeps it.
	def := one[appsv1.Deployment](t, render(t), "Deployment")
	for _, u := range deployments {
		if u.GetName() == release {
			assert.Equal(t, def.Spec.Selector, convert[appsv1.Deployment](t, u).Spec.Selector)
		}
	}
	svc := one[corev1.Service](t, objs, "Service")
	for _, pod := range pods {
		assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(pod), "the metrics Service selects %v", pod)
	}
	assert.Len(t, ofKind(objs, "PodDisruptionBudget"), 3)

	_, err := helm(t, "template", release, chartDir, "--set", "shards={default}")
	require.Error(t, err, "a shard named default")
}
