package controllers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/hooks"
	"github.com/trafficctl/trafficctl/providers/notify"
	"github.com/trafficctl/trafficctl/rollout"
)

// Deliverer queues a delivery off the reconcile path, so that a slow or broken receiver never
// holds a rollout or another Canary.
type Deliverer interface {
	Enqueue(j notify.Job) bool
}

// alertTarget is one alert of the Canary, resolved to the Notifier that delivers it.
type alertTarget struct {
	alert    v1alpha1.CanaryAlert
	provider string // namespace/name of the AlertProvider
	kind     v1alpha1.AlertProviderType
	notifier notify.Notifier
}

// resolveAlerts reads the AlertProviders the Canary's alerts name, and their Secrets. An alert
// that cannot be delivered is left out and described in problems, naming the provider and what
// is wrong with it, never a value from its Secret.
func (r *CanaryReconciler) resolveAlerts(ctx context.Context, cn *v1alpha1.Canary) (targets []alertTarget, problems []string) {
	for _, a := range cn.Spec.Analysis.Alerts {
		t, err := r.resolveAlert(ctx, cn, a)
		if err != nil {
			problems = append(problems, fmt.Sprintf("Alert %q: %s.", a.Name, err))
			continue
		}
		targets = append(targets, t)
	}
	return targets, problems
}

func (r *CanaryReconciler) resolveAlert(ctx context.Context, cn *v1alpha1.Canary, a v1alpha1.CanaryAlert) (alertTarget, error) {
	if err := r.checkNamespace(cn, "AlertProvider", a.ProviderRef.Namespace, a.ProviderRef.Name, "providerRef"); err != nil {
		return alertTarget{}, err
	}
	ns := cmp.Or(a.ProviderRef.Namespace, cn.Namespace)
	name := ns + "/" + a.ProviderRef.Name
	ap := &v1alpha1.AlertProvider{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: a.ProviderRef.Name}, ap); {
	case apierrors.IsNotFound(err):
		return alertTarget{}, fmt.Errorf("AlertProvider %s does not exist", name)
	case err != nil:
		return alertTarget{}, fmt.Errorf("reading AlertProvider %s: %w", name, err)
	}
	t := notify.Target{
		Type: string(ap.Spec.Type), Address: ap.Spec.Address, Proxy: ap.Spec.Proxy,
		Channel: ap.Spec.Channel, Username: ap.Spec.Username,
		HeadlineTemplate: ap.Spec.Headline, TextTemplate: ap.Spec.Text,
	}
	if ref := ap.Spec.SecretRef; ref != nil {
		sec := &corev1.Secret{}
		switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, sec); {
		case apierrors.IsNotFound(err):
			return alertTarget{}, fmt.Errorf("secret %s/%s, named by AlertProvider %s, does not exist", ns, ref.Name, name)
		case err != nil:
			return alertTarget{}, fmt.Errorf("reading secret %s/%s of AlertProvider %s: %w", ns, ref.Name, name, err)
		}
		if v := sec.Data["address"]; len(v) > 0 {
			t.Address = strings.TrimSpace(string(v))
		} else if t.Address == "" {
			return alertTarget{}, fmt.Errorf("secret %s/%s, named by AlertProvider %s, has no key address", ns, ref.Name, name)
		}
		if v := sec.Data["token"]; len(v) > 0 {
			t.Token = strings.TrimSpace(string(v))
		}
		if v := sec.Data["proxy"]; len(v) > 0 {
			t.Proxy = strings.TrimSpace(string(v))
		}
	}
	if err := r.URLPolicy.CheckURL(t.Address); err != nil {
		return alertTarget{}, fmt.Errorf("AlertProvider %s has an address the controller does not call: %w", name, err)
	}
	t.Dial = r.URLPolicy.Dialer().DialContext
	n, err := notify.New(t)
	if err != nil {
		return alertTarget{}, fmt.Errorf("AlertProvider %s: %w", name, err)
	}
	return alertTarget{alert: a, provider: name, kind: ap.Spec.Type, notifier: n}, nil
}

// alertsDue reports whether the Canary's alerts must be resolved in this reconcile: when there
// is something to send, or when the AlertsReady condition does not describe the current spec.
func alertsDue(cn *v1alpha1.Canary, plan rollout.Plan) bool {
	if len(cn.Spec.Analysis.Alerts) == 0 {
		return false
	}
	c := meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionAlertsReady)
	return len(plan.Events) > 0 || c == nil || c.ObservedGeneration != cn.Generation
}

// setAlertsCondition records whether the alerts can be delivered; the rollout goes on either
// way.
func setAlertsCondition(st *v1alpha1.CanaryStatus, generation int64, targets []alertTarget, problems []string) {
	c := metav1.Condition{Type: rollout.ConditionAlertsReady, Status: metav1.ConditionTrue, Reason: rollout.ReasonAlertsConfigured, ObservedGeneration: generation}
	if len(problems) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, rollout.ReasonInvalidAlert, alertProblems(problems)
	} else {
		names := make([]string, 0, len(targets))
		for _, t := range targets {
			names = append(names, fmt.Sprintf("%s (%s, %s and above)", t.provider, t.kind, cmp.Or(string(t.alert.Severity), "info")))
		}
		c.Message = "Alerts go to AlertProvider " + strings.Join(names, ", ") + "."
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// alertProblems is the sentence that tells why alerts cannot be delivered; empty when they can.
func alertProblems(problems []string) string {
	if len(problems) == 0 {
		return ""
	}
	return strings.Join(problems, " ") + " The rollout goes on without these alerts."
}

// alertProblemKnown reports whether the AlertsReady condition already tells of msg, so that the
// event is recorded once, not at every reconcile.
func alertProblemKnown(st *v1alpha1.CanaryStatus, msg string) bool {
	c := meta.FindStatusCondition(st.Conditions, rollout.ConditionAlertsReady)
	return c != nil && c.Status == metav1.ConditionFalse && c.Message == msg
}

// eventSeverity is how much an event matters to the people alerted: a rollback is an error, any
// other warning a warn, the rest info.
func eventSeverity(e rollout.Event) notify.Severity {
	switch {
	case e.Type == corev1.EventTypeWarning && e.Reason == rollout.ReasonRolledBack:
		return notify.SeverityError
	case e.Type == corev1.EventTypeWarning:
		return notify.SeverityWarn
	}
	return notify.SeverityInfo
}

// headlines are the first line of an alert, by event reason.
var headlines = map[string]string{
	rollout.ReasonRolledBack:         "rolled back",
	rollout.ReasonSucceeded:          "promoted",
	rollout.ReasonPromoting:          "is being promoted",
	rollout.ReasonNewRevision:        "started a rollout",
	rollout.ReasonStepAdvanced:       "advanced a step",
	rollout.ReasonCheckFailed:        "failed a check",
	rollout.ReasonWaitingForApproval: "waits for approval",
	rollout.ReasonPaused:             "was paused",
	rollout.ReasonResumed:            "was resumed",
	rollout.ReasonPromotionRequested: "will be promoted by hand",
}

// alertMessage is what an alert says of one event: the event itself, and the facts someone
// paged at night needs first. A rollback names the failing check with its value and bound, the
// images, the weight the canary had reached and how long the rollout ran.
func alertMessage(cn *v1alpha1.Canary, before, after *v1alpha1.CanaryStatus, target *appsv1.Deployment, e rollout.Event, now time.Time) notify.Message {
	what, ok := headlines[e.Reason]
	if !ok {
		what = "reports " + e.Reason
	}
	m := notify.Message{
		Canary: cn.Name, Namespace: cn.Namespace, Severity: eventSeverity(e), Reason: e.Reason,
		Headline: fmt.Sprintf("%s/%s %s", cn.Namespace, cn.Name, what), Text: e.Message, Time: now,
	}
	add := func(name, value string) {
		if value != "" {
			m.Fields = append(m.Fields, notify.Field{Name: name, Value: value})
		}
	}
	add("Phase", string(after.Phase))
	add("Revision", after.LastAppliedSpec)
	if target != nil {
		imgs := images(target)
		for _, c := range slices.Sorted(maps.Keys(imgs)) {
			add("Image", fmt.Sprintf("%s: %s", c, imgs[c]))
		}
	}
	weight, step := after.CanaryWeight, after.Step
	if e.Reason == rollout.ReasonRolledBack {
		// The rollback sent the weight back to 0; what matters is how far the canary got.
		weight, step = before.CanaryWeight, before.Step
		add("Weight reached", fmt.Sprintf("%d%%", weight))
	} else {
		add("Weight", fmt.Sprintf("%d%%", weight))
	}
	if steps := len(rollout.Stages(cn)); step > 0 {
		add("Step", fmt.Sprintf("%d of %d", step, steps))
	}
	if after.RolloutStartedAt != nil {
		add("Duration", now.Sub(after.RolloutStartedAt.Time).Round(time.Second).String())
	}
	if e.Type == corev1.EventTypeWarning {
		if d := lastFailure(after); d != nil {
			add("Failing check", d.Metric)
			add("Value", cmp.Or(d.Value, "none"))
			add("Bound", d.Bound)
		}
	}
	return m
}

// deliver queues the plan's events for the alerts whose severity they reach, and for the event
// webhooks; and, when the rollout has just ended, the post-rollout webhooks. It returns at
// once: delivery is the Deliverer's.
func (r *CanaryReconciler) deliver(cn *v1alpha1.Canary, before *v1alpha1.CanaryStatus, target *appsv1.Deployment, plan rollout.Plan, targets []alertTarget, revision string) {
	if r.Deliveries == nil {
		return
	}
	now := r.Clock.Now()
	// The same event of the same moment of the same rollout is one delivery, however often a
	// reconcile is retried; the same words in another rollout or at another step are not.
	moment := revision
	if lt := plan.Status.LastTransitionTime; lt != nil {
		moment += "@" + lt.UTC().Format(time.RFC3339)
	}
	key := func(parts ...string) string {
		parts = append(parts, moment)
		sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		return string(cn.UID) + "/" + hex.EncodeToString(sum[:12])
	}
	canary := cn.Namespace + "/" + cn.Name
	for _, e := range plan.Events {
		m := alertMessage(cn, before, &plan.Status, target, e, now)
		for _, t := range targets {
			if m.Severity.Rank() < notify.Severity(cmp.Or(string(t.alert.Severity), "info")).Rank() {
				continue
			}
			n := t.notifier
			r.Deliveries.Enqueue(notify.Job{
				Key: key("alert", t.alert.Name, e.Reason, e.Message), Canary: canary,
				Provider: t.provider, Kind: string(t.kind),
				Send: func(ctx context.Context) error { return n.Notify(ctx, m) },
			})
		}
		for _, h := range cn.WebhooksOf(v1alpha1.WebhookEvent) {
			p := payloadFor(cn, &plan.Status, revision, target, v1alpha1.WebhookEvent, now)
			p.Event = &hooks.Event{Reason: e.Reason, Message: e.Message, Severity: string(m.Severity)}
			r.enqueueWebhook(cn, h, p, key("event", h.Name, e.Reason, e.Message))
		}
	}
	if plan.PostRollout {
		for _, h := range cn.WebhooksOf(v1alpha1.WebhookPostRollout) {
			p := payloadFor(cn, &plan.Status, revision, target, v1alpha1.WebhookPostRollout, now)
			r.enqueueWebhook(cn, h, p, key("post-rollout", h.Name, string(plan.Status.Phase)))
		}
	}
}

// enqueueWebhook queues a call whose answer changes nothing (event and post-rollout webhooks);
// the Deliverer retries it, so the call itself makes a single attempt.
func (r *CanaryReconciler) enqueueWebhook(cn *v1alpha1.Canary, h v1alpha1.CanaryWebhook, p hooks.Payload, key string) {
	r.Deliveries.Enqueue(notify.Job{
		Key: key, Canary: cn.Namespace + "/" + cn.Name, Provider: "webhook " + h.Name, Kind: string(cmp.Or(string(h.Type), string(v1alpha1.WebhookRollout))) + "-webhook",
		Send: func(ctx context.Context) error {
			req, err := r.webhookRequest(ctx, cn, h, p)
			if err != nil {
				return fmt.Errorf("webhook %q was not called: %w", h.Name, err)
			}
			req.Retries = 0
			if res := r.Hooks.Call(ctx, req); res.Outcome != hooks.Approved {
				return errors.New(res.Message)
			}
			return nil
		},
	})
}
