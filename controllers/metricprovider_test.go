package controllers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/testprom"
	"github.com/trafficctl/trafficctl/rollout"
)

const secretToken = "s3cr3t-t0ken-value"

// authMetric is a check whose MetricTemplate signs in with the Secret prom-auth and asks the
// suite's Prometheus for the canary's request rate.
func (c *cluster) authMetric(mods ...func(*v1alpha1.MetricProvider)) v1alpha1.CanaryMetric {
	provider := v1alpha1.MetricProvider{
		Type:      v1alpha1.MetricProviderPrometheus,
		SecretRef: &v1alpha1.LocalObjectReference{Name: "prom-auth"},
		Headers:   []v1alpha1.HTTPHeader{{Name: "X-Scope-OrgID", Value: "shop"}},
		Timeout:   "5s",
	}
	for _, m := range mods {
		m(&provider)
	}
	c.create(&v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "rps", Namespace: c.ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: provider,
			Query:    `sum(rate(http_requests_total{namespace="{{ .Namespace }}"}[{{ .Interval }}])) or vector(1)`,
		},
	})
	return v1alpha1.CanaryMetric{Name: "rps", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "rps"}, ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(0.5)}}
}

func (c *cluster) secret(data map[string]string) { c.namedSecret("prom-auth", data) }

// assertNoSecretShown checks that the token appears nowhere a user or a log collector looks.
func (c *cluster) assertNoSecretShown(cn *v1alpha1.Canary) {
	c.t.Helper()
	status, err := json.Marshal(cn.Status)
	require.NoError(c.t, err)
	assert.NotContains(c.t, string(status), secretToken, "the token is not in status")
	var list eventsv1.EventList
	require.NoError(c.t, k8s.List(context.Background(), &list, client.InNamespace(c.ns)))
	for _, e := range list.Items {
		assert.NotContains(c.t, e.Note, secretToken, "the token is not in event %s", e.Reason)
	}
}

// The suite's Prometheus sits behind a proxy that answers only the right bearer token, so a
// rollout that passes proves the token and the headers were sent.
func TestMetricTemplateSignsInWithItsSecret(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.secret(map[string]string{"token": secretToken})
	proxy := testprom.StartAuthProxy(t, prom.URL(), secretToken)
	c.startController()
	metric := c.authMetric(func(p *v1alpha1.MetricProvider) { p.Address = proxy.URL() })
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric} }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	require.NotEmpty(t, cn.Status.Decisions)
	assert.Equal(t, v1alpha1.VerdictPass, cn.Status.Decisions[0].Verdict, cn.Status.Decisions[0].Message)
	headers := proxy.Headers()
	require.NotEmpty(t, headers)
	assert.Equal(t, "shop", headers[0].Get("X-Scope-OrgID"), "the template's headers are sent")
	c.assertNoSecretShown(cn)
}

// A Prometheus of its own, over HTTPS with basic auth: the Secret's ca.crt is what lets the
// controller trust it, and its username and password what let it in.
func TestMetricTemplateTrustsItsCAAndSignsInWithBasicAuth(t *testing.T) {
	t.Parallel()
	cert := testprom.GenerateServerCert(t)
	secured := testprom.StartOptions(t, testprom.Options{Targets: []string{exporter.Addr()}, TLS: cert, BasicAuth: map[string]string{"shop": secretToken}})
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.secret(map[string]string{"username": "shop", "password": secretToken, "ca.crt": string(cert.CA)})
	c.startController()
	metric := c.authMetric(func(p *v1alpha1.MetricProvider) { p.Address = secured.URL() })
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric} }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	assert.Equal(t, v1alpha1.VerdictPass, cn.Status.Decisions[0].Verdict, cn.Status.Decisions[0].Message)
	assert.True(t, strings.HasPrefix(secured.URL(), "https://"))
	c.assertNoSecretShown(cn)
}

func TestMetricTemplateWithAWrongTokenHoldsTheStep(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.secret(map[string]string{"token": secretToken})
	proxy := testprom.StartAuthProxy(t, prom.URL(), "another-token")
	c.startController()
	metric := c.authMetric(func(p *v1alpha1.MetricProvider) { p.Address = proxy.URL() })
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric} }))
	analysisHolds(t, c, rollout.ReasonAnalysisUnavailable, v1alpha1.VerdictError, "refused the credentials (401 Unauthorized)")
	c.assertNoSecretShown(c.canary())
}

func TestMetricTemplateSecretProblemsHoldTheStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    map[string]string // nil: no Secret at all
		message string
	}{
		{"missing Secret", nil, "Secret NS/prom-auth (provider.secretRef of MetricTemplate NS/rps) does not exist"},
		{"no credentials", map[string]string{"ca.crt": "x"}, "has neither key token nor keys username and password"},
		{"username without password", map[string]string{"username": "shop"}, "has key username but no key password"},
		{"two ways of signing in", map[string]string{"token": secretToken, "username": "shop", "password": "x"}, "has both key token and key username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			c.createTarget("podinfo:1.0")
			if tt.data != nil {
				c.secret(tt.data)
			}
			c.startController()
			metric := c.authMetric()
			c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric} }))
			message := replaceNS(tt.message, c.ns)
			analysisHolds(t, c, rollout.ReasonAnalysisUnavailable, v1alpha1.VerdictError, message)
			c.assertNoSecretShown(c.canary())
		})
	}
}

func TestInsecureMetricProviderWarns(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	c.secret(map[string]string{"username": "shop", "password": secretToken})
	c.startController()
	metric := c.authMetric(func(p *v1alpha1.MetricProvider) { p.InsecureSkipVerify = true })
	c.create(c.newCanary(func(cn *v1alpha1.Canary) { cn.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{metric} }))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	cn := c.waitFor("promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	warnings := c.eventsEventually(rollout.ReasonInsecureMetricProvider, 1)
	require.NotEmpty(t, warnings)
	assert.Contains(t, warnings[0], "without verifying its TLS certificate")
	c.assertNoSecretShown(cn)
}

// replaceNS puts the test's namespace where a message template says NS.
func replaceNS(message, ns string) string { return strings.ReplaceAll(message, "NS", ns) }
