package controllers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// alertProvider creates an AlertProvider whose address is in a Secret, as it should be.
func (c *cluster) alertProvider(name string, typ v1alpha1.AlertProviderType, address string) {
	c.t.Helper()
	c.namedSecret(name+"-url", map[string]string{"address": address})
	c.create(&v1alpha1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec:       v1alpha1.AlertProviderSpec{Type: typ, SecretRef: &v1alpha1.LocalObjectReference{Name: name + "-url"}},
	})
}

func alert(name string, severity v1alpha1.AlertSeverity, provider string) v1alpha1.CanaryAlert {
	return v1alpha1.CanaryAlert{Name: name, Severity: severity, ProviderRef: v1alpha1.CrossNamespaceObjectReference{Name: provider}}
}

// slackMessage is the part of an incoming-webhook message the tests read.
type slackMessage struct {
	Text        string `json:"text"`
	Attachments []struct {
		Color  string `json:"color"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Text string `json:"text"`
			} `json:"text"`
			Fields []struct {
				Text string `json:"text"`
			} `json:"fields"`
		} `json:"blocks"`
	} `json:"attachments"`
}

func TestRollbackIsAlertedToSlackAndTeamsWithTheFailingCheck(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(failing, healthy)
	c.createTarget("podinfo:1.0")
	slackRx := newReceiver(t, http.StatusOK)
	teamsRx := newReceiver(t, http.StatusOK)
	brokenRx := newReceiver(t, http.StatusInternalServerError)
	// The paths stand for the credentials chat services put in their webhook URLs.
	slackURL := slackRx.URL("/services/T0001/B0001/xoxb-very-secret")
	teamsURL := teamsRx.URL("/workflows/abc/triggers/manual/paths/invoke?sig=teams-secret")
	c.alertProvider("slack", v1alpha1.AlertProviderSlack, slackURL)
	c.alertProvider("teams", v1alpha1.AlertProviderMSTeams, teamsURL)
	c.alertProvider("discord", v1alpha1.AlertProviderDiscord, brokenRx.URL("/api/webhooks/1/discord-secret"))
	c.alertProvider("not-a-url", v1alpha1.AlertProviderWebhook, "hooks.example.com/alerts?token=not-a-url-secret")
	c.create(&v1alpha1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "no-secret", Namespace: c.ns},
		Spec:       v1alpha1.AlertProviderSpec{Type: v1alpha1.AlertProviderSlack, SecretRef: &v1alpha1.LocalObjectReference{Name: "missing"}},
	})
	c.startController()
	c.create(c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Spec.Analysis.Alerts = []v1alpha1.CanaryAlert{
			alert("on-call", v1alpha1.AlertSeverityError, "slack"),
			alert("team", v1alpha1.AlertSeverityInfo, "teams"),
			alert("chat", v1alpha1.AlertSeverityError, "discord"),
			alert("broken", v1alpha1.AlertSeverityInfo, "no-secret"),
			alert("typo", v1alpha1.AlertSeverityInfo, "not-a-url"),
			alert("gone", v1alpha1.AlertSeverityInfo, "nowhere"),
		}
	}))
	cn := c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))
	alerts := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionAlertsReady)
	require.NotNil(t, alerts)
	assert.Equal(t, metav1.ConditionFalse, alerts.Status)
	assert.Equal(t, rollout.ReasonInvalidAlert, alerts.Reason)
	assert.Contains(t, alerts.Message, `Alert "broken": secret `+c.ns+`/missing, named by AlertProvider `+c.ns+`/no-secret, does not exist.`)
	assert.Contains(t, alerts.Message, `Alert "typo": AlertProvider `+c.ns+`/not-a-url: `)
	assert.Contains(t, alerts.Message, "not an http or https URL")
	assert.Contains(t, alerts.Message, `Alert "gone": AlertProvider `+c.ns+`/nowhere does not exist.`)
	assert.Contains(t, alerts.Message, "The rollout goes on without these alerts.")

	c.setImage("podinfo:2.0")
	cn = c.waitFor("rollback", rolloutTimeout, phaseIs(v1alpha1.PhaseFailed))
	require.NotNil(t, cn.Status.RolloutStartedAt)

	// Slack, error and above: the rollback only.
	got := slackRx.waitRequests(1, 20*time.Second)
	var msg slackMessage
	require.NoError(t, json.Unmarshal(got[0].Body, &msg), "%s", got[0].Body)
	assert.Equal(t, c.ns+"/podinfo rolled back", msg.Text)
	require.Len(t, msg.Attachments, 1)
	assert.Equal(t, "#a30200", msg.Attachments[0].Color, "a rollback is red")
	var texts []string
	for _, b := range msg.Attachments[0].Blocks {
		if b.Text != nil {
			texts = append(texts, b.Text.Text)
		}
		for _, f := range b.Fields {
			texts = append(texts, f.Text)
		}
	}
	all := strings.Join(texts, "\n")
	assert.Equal(t, "header", msg.Attachments[0].Blocks[0].Type)
	assert.Contains(t, all, "request-success-rate is 90, outside &gt;= 99", "the reason, as the event gives it")
	assert.Contains(t, all, "*Failing check*\nrequest-success-rate")
	assert.Contains(t, all, "*Value*\n90")
	assert.Contains(t, all, "*Bound*\n&gt;= 99")
	assert.Contains(t, all, "*Image*\napp: podinfo:2.0")
	assert.Contains(t, all, "*Weight reached*\n10%")
	assert.Contains(t, all, "*Duration*\n")

	// Teams, info and above: the rollout's start, its step, and its rollback, as Adaptive Cards.
	var cards []string
	require.Eventually(t, func() bool {
		cards = cards[:0]
		for _, q := range teamsRx.requests() {
			cards = append(cards, string(q.Body))
		}
		return strings.Contains(strings.Join(cards, "\n"), "rolled back")
	}, 20*time.Second, 100*time.Millisecond, "the rollback reaches Teams")
	assert.GreaterOrEqual(t, len(cards), 3, "Teams hears of the start, the step and the rollback: %v", cards)
	var card struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string `json:"type"`
				Version string `json:"version"`
				Body    []struct {
					Type  string `json:"type"`
					Text  string `json:"text"`
					Facts []struct {
						Title string `json:"title"`
						Value string `json:"value"`
					} `json:"facts"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	require.NoError(t, json.Unmarshal([]byte(cards[len(cards)-1]), &card))
	assert.Equal(t, "message", card.Type)
	require.Len(t, card.Attachments, 1)
	assert.Equal(t, "application/vnd.microsoft.card.adaptive", card.Attachments[0].ContentType)
	assert.Equal(t, "AdaptiveCard", card.Attachments[0].Content.Type)
	facts := map[string]string{}
	for _, b := range card.Attachments[0].Content.Body {
		for _, f := range b.Facts {
			facts[f.Title] = f.Value
		}
	}
	assert.Equal(t, "request-success-rate", facts["Failing check"])
	assert.Equal(t, "90", facts["Value"])

	// Discord keeps answering 500: the delivery gives up after its retries and says so.
	failed := waitEvents(t, c, rollout.ReasonAlertDeliveryFailed, 30*time.Second)
	assert.Contains(t, failed[0], "Delivery to "+c.ns+"/discord (discord) failed")
	assert.Contains(t, failed[0], "500")
	assert.GreaterOrEqual(t, len(brokenRx.requests()), 2, "it was retried")

	// No address, token or path of a Secret shows anywhere.
	status, err := json.Marshal(c.canary().Status)
	require.NoError(t, err)
	var list eventsv1.EventList
	require.NoError(t, k8s.List(context.Background(), &list, client.InNamespace(c.ns)))
	for _, secret := range []string{"xoxb-very-secret", "teams-secret", "discord-secret", "not-a-url-secret", slackRx.URL(""), teamsRx.URL("")} {
		assert.NotContains(t, string(status), secret)
		for _, e := range list.Items {
			assert.NotContains(t, e.Note, secret, "event %s", e.Reason)
		}
	}
	assert.Len(t, c.events(rollout.ReasonInvalidAlert), 1, "the broken alert is told once, not at every reconcile")
}

// waitEvents waits for at least one event with the reason, longer than eventsEventually does:
// a delivery gives up only after its retries.
func waitEvents(t *testing.T, c *cluster, reason string, timeout time.Duration) []string {
	t.Helper()
	var events []string
	require.Eventually(t, func() bool { events = c.events(reason); return len(events) > 0 }, timeout, 200*time.Millisecond, "no %s event", reason)
	return events
}

func TestHangingWebhookDoesNotDelayAnotherCanary(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.setTraffic(healthy, healthy)
	c.createTarget("podinfo:1.0")
	stuck := newReceiver(t, http.StatusOK)
	stuck.hangUp()
	slowHook := webhook("approve", v1alpha1.WebhookConfirmRollout, stuck)
	slowHook.Timeout, slowHook.Retries = "1m", nil
	// The second Canary's alerts go to a receiver that hangs too: delivery is off its path.
	c.alertProvider("hanging", v1alpha1.AlertProviderWebhook, stuck.URL("/alerts"))
	c.startController()
	c.create(c.newCanary(withWebhooks(slowHook)))
	c.waitFor("initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	other := c.newCanary(func(cn *v1alpha1.Canary) {
		cn.Name = "shop"
		cn.Spec.TargetRef.Name = "shop"
		cn.Spec.Service.Hostnames = []string{"shop.example.com"}
		cn.Spec.Analysis.Alerts = []v1alpha1.CanaryAlert{alert("all", v1alpha1.AlertSeverityInfo, "hanging")}
		// The exporter reports no traffic for it: its steps pass on time.
		cn.Spec.Analysis.Metrics = nil
	})
	c.createNamedTarget("shop", "shop:1.0")
	c.create(other)
	c.waitForNamed("shop", "initialization", 30*time.Second, phaseIs(v1alpha1.PhaseInitialized))

	c.setImage("podinfo:2.0")
	require.Eventually(t, func() bool { return stuck.holding() > 0 }, 20*time.Second, 50*time.Millisecond, "the first Canary's webhook is hanging")
	started := time.Now()
	c.setNamedImage("shop", "shop:2.0")
	c.waitForNamed("shop", "the second Canary's promotion", rolloutTimeout, phaseIs(v1alpha1.PhaseSucceeded))
	took := time.Since(started)
	t.Logf("the second Canary's rollout took %s while the first one's webhook hung", took)
	assert.Less(t, took, time.Minute, "it finished before the hanging webhook's timeout")
	assert.NotEqual(t, v1alpha1.PhaseSucceeded, c.canary().Status.Phase, "the first Canary is still waiting for its webhook")
}
