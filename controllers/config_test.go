package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// withConfig has the target read ConfigMap podinfo-config through envFrom, and mount Secret
// podinfo-secret.
func withConfig(d *appsv1.Deployment) {
	spec := &d.Spec.Template.Spec
	spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}}}}
	spec.Volumes = []corev1.Volume{{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "podinfo-secret"}}}}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "secret", MountPath: "/etc/podinfo"}}
}

func (c *cluster) setConfig(name, key, value string) {
	c.t.Helper()
	require.NoError(c.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, cm); err != nil {
			return err
		}
		cm.Data[key] = value
		return k8s.Update(context.Background(), cm)
	}))
}

// primaryConfig is the ConfigMap the primary's template reads through envFrom, and its data.
func (c *cluster) primaryConfig() (string, map[string]string) {
	c.t.Helper()
	name := c.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name
	cm := &corev1.ConfigMap{}
	require.NoError(c.t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, cm))
	return name, cm.Data
}

// TestConfigChangesReachThePrimaryOnlyByPromotion: the primary runs on copies of the target's
// config as it was promoted; a change reaches the canary's pods, and the primary's only when it
// is promoted, while a rolled-back change never does.
func TestConfigChangesReachThePrimaryOnlyByPromotion(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config", Namespace: c.ns}, Data: map[string]string{"color": "blue"}})
	c.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-secret", Namespace: c.ns}, StringData: map[string]string{"token": "t1"}})
	c.createTarget("podinfo:1.0", withConfig)
	c.startController()
	cn := c.newCanary()
	c.create(cn)
	cn = c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	first, data := c.primaryConfig()
	assert.True(t, strings.HasPrefix(first, "podinfo-config-primary-"), "the primary reads its own copy: %s", first)
	assert.Equal(t, map[string]string{"color": "blue"}, data)
	copied := &corev1.ConfigMap{}
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: first}, copied))
	assert.True(t, *copied.Immutable, "a copy cannot be edited by hand")
	assert.True(t, ownedBy(copied, string(cn.UID)), "a copy goes with the Canary")
	secret := c.deployment("podinfo-primary").Spec.Template.Spec.Volumes[0].Secret.SecretName
	assert.True(t, strings.HasPrefix(secret, "podinfo-secret-primary-"), "Secrets are copied too: %s", secret)
	assert.Equal(t, "podinfo-config", c.deployment("podinfo").Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name, "the target keeps the originals")

	copied.Data["color"] = "red"
	err := k8s.Update(context.Background(), copied)
	require.Error(t, err, "an immutable copy refuses a hand edit")
	assert.Contains(t, err.Error(), "field is immutable")

	// A change that fails its checks never reaches the primary.
	c.setTraffic(failing, healthy)
	c.setConfig("podinfo-config", "color", "green")
	c.waitFor("rollback of the config change", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	name, data := c.primaryConfig()
	assert.Equal(t, first, name, "the primary still reads the copy it was promoted with")
	assert.Equal(t, map[string]string{"color": "blue"}, data)

	// One that passes reaches it by promotion, in a copy of its own, and the old copy goes.
	c.setTraffic(healthy, healthy)
	c.setConfig("podinfo-config", "color", "yellow")
	c.waitFor("promotion of the config change", rolloutTimeout, func(cn *v1alpha1.Canary) bool {
		return cn.Status.Phase == v1alpha1.PhaseSucceeded && cn.Status.History[0].Result == v1alpha1.PhaseSucceeded
	})
	name, data = c.primaryConfig()
	assert.NotEqual(t, first, name, "a new copy, so the primary's pods roll")
	assert.Equal(t, map[string]string{"color": "yellow"}, data)
	assert.Eventually(t, func() bool { return c.notFound(&corev1.ConfigMap{}, first) }, 20*time.Second, 100*time.Millisecond,
		"the copy of the earlier promotion goes once the primary rolled over")
}

// TestSharedConfigAndDeletedCopies: a ConfigMap annotated as shared is not copied; a copy deleted
// by hand is made again from its unchanged original, at once: the deletion wakes the Canary.
func TestSharedConfigAndDeletedCopies(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config", Namespace: c.ns}, Data: map[string]string{"color": "blue"}})
	c.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-secret", Namespace: c.ns, Annotations: map[string]string{"trafficctl.io/shared": "true"}}, StringData: map[string]string{"token": "t1"}})
	c.createTarget("podinfo:1.0", withConfig)
	c.startController()
	c.create(c.newCanary())
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	assert.Equal(t, "podinfo-secret", c.deployment("podinfo-primary").Spec.Template.Spec.Volumes[0].Secret.SecretName, "a shared Secret stays one")

	name, _ := c.primaryConfig()
	require.NoError(t, k8s.Delete(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns}}))
	assert.Eventually(t, func() bool { return !c.notFound(&corev1.ConfigMap{}, name) }, 20*time.Second, 100*time.Millisecond,
		"a deleted copy is made again while its original holds the same data, woken by the deletion (an idle Canary is resynced only every 10 minutes)")
}

// TestMissingConfigHoldsTheCanary: a ConfigMap the template names that does not exist holds the
// Canary with a condition naming it; once it exists, the Canary goes on.
func TestMissingConfigHoldsTheCanary(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-secret", Namespace: c.ns}, StringData: map[string]string{"token": "t1"}})
	c.createTarget("podinfo:1.0", withConfig)
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Interval = "2s" }))
	cn := c.waitFor("ConfigNotFound", 30*time.Second, func(cn *v1alpha1.Canary) bool {
		r := readyCondition(cn)
		return r != nil && r.Reason == rollout.ReasonConfigNotFound
	})
	assert.Contains(t, readyCondition(cn).Message, "ConfigMap podinfo-config, which the target's pod template uses, does not exist")
	assert.True(t, c.notFound(&appsv1.Deployment{}, "podinfo-primary"), "nothing is made without it")

	c.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config", Namespace: c.ns}, Data: map[string]string{"color": "blue"}})
	c.waitFor("initialization once it exists", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
}
