package rollout

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// gateState is what the webhooks of one type said in this reconcile.
type gateState int

const (
	// gateOpen: there are no such webhooks, or every one answered 2xx.
	gateOpen gateState = iota
	// gateShut: at least one refused or did not answer.
	gateShut
	// gateAsk: they have not been called yet; the plan asks the controller to call them.
	gateAsk
)

// gate reads the answers of the Canary's webhooks of type t, asking for them when they have not
// been called in this reconcile; why explains a shut gate, naming each webhook that held it.
func (p *planner) gate(t v1alpha1.WebhookType) (state gateState, why string) {
	results, ok := p.takeAnswers(t)
	if !ok {
		return gateAsk, ""
	}
	var held []string
	for _, r := range results {
		if r.Outcome != v1alpha1.WebhookApproved {
			held = append(held, UpperFirst(r.Message)+".")
		}
	}
	if len(held) > 0 {
		return gateShut, strings.Join(held, " ")
	}
	return gateOpen, ""
}

// approvedBy is the sentence naming the webhooks of type t that approved; empty when there are
// none.
func (p *planner) approvedBy(t v1alpha1.WebhookType) string {
	hooks := p.s.Canary.WebhooksOf(t)
	if len(hooks) == 0 {
		return ""
	}
	names := make([]string, 0, len(hooks))
	for _, h := range hooks {
		names = append(names, fmt.Sprintf("%q", h.Name))
	}
	return fmt.Sprintf(" Approved by %s webhook %s.", t, strings.Join(names, ", "))
}

// recordWebhooks keeps each webhook's latest answer in status.
func (p *planner) recordWebhooks(results []v1alpha1.WebhookResult) {
	st := p.st()
	for _, r := range results {
		replaced := false
		for i := range st.Webhooks {
			if st.Webhooks[i].Name == r.Name {
				st.Webhooks[i], replaced = r, true
			}
		}
		if !replaced {
			st.Webhooks = append(st.Webhooks, r)
		}
	}
}

// askWebhooks waits for the answers the plan asked for; the controller calls the webhooks and
// plans again at once.
func (p *planner) askWebhooks() {
	p.wait(ReasonWaitingForApproval, "Calling the webhooks.", 0)
}

// webhookDue reports whether a webhook gate that shut at the last look may be asked again: once
// a check interval has passed since then.
func (p *planner) webhookDue() bool {
	st := p.st()
	return st.LastCheckedAt == nil || !p.s.Now.Before(st.LastCheckedAt.Add(p.s.Canary.CheckInterval()))
}

func (p *planner) markChecked() {
	now := metav1.NewTime(p.s.Now)
	p.st().LastCheckedAt = &now
}

// preRollout runs the pre-rollout webhooks once the canary is ready, before it gets traffic:
// a refusal or no answer is a failed check, asked again every check interval. It reports
// whether the rollout may go on to its first step.
func (p *planner) preRollout() bool {
	if len(p.s.Canary.WebhooksOf(v1alpha1.WebhookPreRollout)) == 0 {
		return true
	}
	if !p.webhookDue() {
		reason, msg := readyCondition(p.s.Canary)
		p.wait(reason, msg, p.untilWebhookDue())
		return false
	}
	state, why := p.gate(v1alpha1.WebhookPreRollout)
	switch state {
	case gateAsk:
		p.askWebhooks()
		return false
	case gateOpen:
		p.recordWebhookDecisions(v1alpha1.WebhookPreRollout)
		return true
	}
	p.recordWebhookDecisions(v1alpha1.WebhookPreRollout)
	p.markChecked()
	st := p.st()
	st.FailedChecks++
	st.ConsecutiveFailedChecks++
	msg := fmt.Sprintf("Check %d of %d failed before the canary got traffic: %s", st.FailedChecks, p.s.Canary.FailureThreshold(), why)
	if p.failuresExhausted() {
		p.rollback(ReasonWebhookFailed, msg)
		return false
	}
	p.event(corev1.EventTypeWarning, ReasonWebhookFailed, msg)
	p.wait(ReasonWebhookFailed, msg, p.s.Canary.CheckInterval())
	return false
}

// failuresExhausted reports whether the failed checks counted so far roll the canary back.
func (p *planner) failuresExhausted() bool {
	st := p.st()
	a := p.s.Canary.Spec.Analysis
	return st.FailedChecks >= p.s.Canary.FailureThreshold() ||
		(a.ConsecutiveThreshold != nil && st.ConsecutiveFailedChecks >= *a.ConsecutiveThreshold)
}

// webhookDecisions turns the answers of pre-rollout or rollout webhooks into decisions, so
// they are judged and recorded like any check: a 2xx answer passes, anything else fails.
func webhookDecisions(results []v1alpha1.WebhookResult) []v1alpha1.Decision {
	out := make([]v1alpha1.Decision, 0, len(results))
	for _, r := range results {
		d := v1alpha1.Decision{Metric: r.Name, Judge: v1alpha1.JudgeWebhook, Verdict: v1alpha1.VerdictPass, Bound: "2xx", Message: UpperFirst(r.Message) + "."}
		if r.StatusCode > 0 {
			d.Value = fmt.Sprint(r.StatusCode)
		}
		if r.Outcome != v1alpha1.WebhookApproved {
			d.Verdict = v1alpha1.VerdictFail
		}
		out = append(out, d)
	}
	return out
}

// recordWebhookDecisions records the answers of webhooks judged outside the checks.
func (p *planner) recordWebhookDecisions(t v1alpha1.WebhookType) {
	st := p.st()
	now := metav1.NewTime(p.s.Now)
	ds := webhookDecisions(p.s.Gates[t])
	for i := range ds {
		ds[i].Step, ds[i].CanaryWeight, ds[i].Time = st.Step, st.CanaryWeight, now
	}
	p.recordDecisions(ds)
}

// recordDecisions puts the newest decisions first in status, keeping the latest maxDecisions.
func (p *planner) recordDecisions(ds []v1alpha1.Decision) {
	st := p.st()
	st.Decisions = append(ds, st.Decisions...)
	if len(st.Decisions) > maxDecisions {
		st.Decisions = st.Decisions[:maxDecisions]
	}
}

// takeAnswers takes the answers of the Canary's webhooks of type t into the plan: each webhook's
// latest answer goes into status.webhooks, and the answers are returned. When they have not been
// called in this reconcile it asks for them (Plan.CallGates) and ok is false. With no such
// webhooks it is nil, true.
func (p *planner) takeAnswers(t v1alpha1.WebhookType) (results []v1alpha1.WebhookResult, ok bool) {
	if len(p.s.Canary.WebhooksOf(t)) == 0 {
		return nil, true
	}
	results, called := p.s.Gates[t]
	if !called {
		p.plan.CallGates = append(p.plan.CallGates, t)
		return nil, false
	}
	p.recordWebhooks(results)
	return results, true
}

// rollbackAsked is the message of every rollback webhook that answered 2xx; empty when none did.
func rollbackAsked(results []v1alpha1.WebhookResult) string {
	var asked []string
	for _, r := range results {
		if r.Outcome == v1alpha1.WebhookApproved {
			asked = append(asked, UpperFirst(r.Message)+".")
		}
	}
	return strings.Join(asked, " ")
}
