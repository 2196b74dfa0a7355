package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/test/e2e/framework"
)

// hookReceiver is a local HTTP server standing in for an approval service or Slack: it answers
// with the status it is told and keeps the bodies it got.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	bodies []string
}

func newHookReceiver(t *testing.T, status int) *hookReceiver {
	r := &hookReceiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		status := r.status
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// TestApprovalManualPromotionAndRollbackAlert runs the built controller against real traffic: a
// release held at WaitingPromotion by its approval webhook is promoted by hand, and a faulty
// release rolls back with a Slack message naming the failing check.
func TestApprovalManualPromotionAndRollbackAlert(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	approval := newHookReceiver(t, http.StatusForbidden)
	slack := newHookReceiver(t, http.StatusOK)
	ns := "gates"
	app := newApp(t, ctx, framework.AppOptions{
		Namespace: ns,
		Objects: []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slack-url", Namespace: ns}, StringData: map[string]string{"address": slack.srv.URL + "/services/T0/B0/secret"}},
			&v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: ns}, Spec: v1alpha1.AlertProviderSpec{Type: v1alpha1.AlertProviderSlack, SecretRef: &v1alpha1.LocalObjectReference{Name: "slack-url"}}},
		},
		Canary: func(cn *v1alpha1.Canary) {
			cn.Spec.Analysis.Webhooks = []v1alpha1.CanaryWebhook{{Name: "release-manager", Type: v1alpha1.WebhookConfirmPromotion, URL: approval.srv.URL + "/approve", Timeout: "2s"}}
			cn.Spec.Analysis.Alerts = []v1alpha1.CanaryAlert{{Name: "on-call", Severity: v1alpha1.AlertSeverityError, ProviderRef: v1alpha1.CrossNamespaceObjectReference{Name: "slack"}}}
		},
	})

	require.NoError(t, app.Release(ctx, v2))
	held, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseWaitingPromotion, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseWaitingPromotion, held.Status.Phase, framework.Describe(held))
	mid, err := app.Traffic(ctx, 2*time.Second)
	require.NoError(t, err)
	assert.InDelta(t, 0.5, mid.Share("2.0.0"), 0.2, "users stay split at the last step while the promotion waits: %v", mid.ByVersion)
	assert.NotEmpty(t, approval.got(), "the approval webhook was asked")

	// Promote by hand, as `trafficctl promote` does: an annotation, which GitOps leaves alone.
	cn, err := app.Canary(ctx)
	require.NoError(t, err)
	patch := client.MergeFrom(cn.DeepCopy())
	raw, err := json.Marshal(v1alpha1.ManualRequest{Action: v1alpha1.ActionPromote, ID: "e2e-promote", User: "release-manager@example.com"})
	require.NoError(t, err)
	cn.Annotations = map[string]string{v1alpha1.RequestAnnotation: string(raw)}
	require.NoError(t, app.Client().Patch(ctx, cn, patch))
	done, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseSucceeded, done.Status.Phase, framework.Describe(done))
	require.NotEmpty(t, done.Status.ManualActions)
	assert.Equal(t, "release-manager@example.com", done.Status.ManualActions[0].User)
	assertOnlyVersion(t, ctx, app, "2.0.0")
	assert.Empty(t, slack.got(), "a promotion is not an error: the on-call channel hears nothing")

	require.NoError(t, app.Release(ctx, framework.Version{Tag: "3.0.0", ErrorRate: 0.1}))
	_, err = app.Wait(ctx, rolloutTimeout, "the faulty release's rollout to start", func(cn *v1alpha1.Canary) bool {
		return cn.Status.LastAppliedSpec != done.Status.LastAppliedSpec
	})
	require.NoError(t, err)
	failed, err := app.WaitPhase(ctx, rolloutTimeout, v1alpha1.PhaseFailed, v1alpha1.PhaseSucceeded)
	require.NoError(t, err)
	require.Equal(t, v1alpha1.PhaseFailed, failed.Status.Phase, framework.Describe(failed))
	assertOnlyVersion(t, ctx, app, "2.0.0")
	require.Eventually(t, func() bool { return len(slack.got()) > 0 }, 30*time.Second, 100*time.Millisecond, "the rollback reaches Slack")
	msg := slack.got()[0]
	t.Logf("Slack received: %s", msg)
	assert.Contains(t, msg, ns+"/podinfo rolled back")
	assert.Contains(t, msg, "request-success-rate")
	assert.Contains(t, msg, "demoapp:3.0.0")
	d := failedDecision(failed)
	require.NotNil(t, d)
	assert.Contains(t, msg, "*Value*\\n"+d.Value, "the failing value, as the decision recorded it")
	assert.True(t, strings.Contains(msg, "#a30200"), "coloured as an error")

	// The Secret's address, which carries Slack's credentials, is in no log line.
	log, err := os.ReadFile(app.ControllerLog())
	require.NoError(t, err)
	assert.NotContains(t, string(log), "T0/B0/secret")
	assert.NotContains(t, string(log), slack.srv.URL)
}
