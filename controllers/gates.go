package controllers

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/hooks"
	"github.com/trafficctl/trafficctl/rollout"
)

// WebhookCaller calls one webhook and says what it answered, never failing: an unreachable
// webhook is an outcome like any other.
type WebhookCaller interface {
	Call(ctx context.Context, r hooks.Request) hooks.Result
}

// defaultWebhookTimeout bounds a webhook attempt whose Canary sets no timeout.
const defaultWebhookTimeout = 10 * time.Second

// maxGateRounds bounds how often one reconcile plans again with newly answered webhooks: the
// rollback and rollout webhooks, then a confirm-* gate.
const maxGateRounds = 4

// gateRecheck is how soon a Canary whose webhooks have not all answered is looked at again, should
// the wake-up of their answers be lost.
const gateRecheck = 30 * time.Second

// planWithGates plans, and when the planner asks for the answers of webhooks, gives it those in
// and starts the calls of the others, off the reconcile (gateCalls). It plans again with the
// answers it has until it asks for nothing more. While some answers are still on their way, the
// rollout stays exactly where it is (waitForAnswers): the answers belong to the moment the status
// records, and wake the Canary when they are in.
func (r *CanaryReconciler) planWithGates(snap rollout.Snapshot, target *appsv1.Deployment) (rollout.Snapshot, rollout.Plan) {
	plan := rollout.ComputePlan(snap)
	call := func(ctx context.Context, t v1alpha1.WebhookType) []v1alpha1.WebhookResult {
		return r.callWebhooks(ctx, snap, target, []v1alpha1.WebhookType{t})[t]
	}
	for round := 0; len(plan.CallGates) > 0 && round < maxGateRounds; round++ {
		answers, pending := r.gates.answers(snap, plan.CallGates, call)
		if pending {
			return snap, waitForAnswers(snap, plan.CallGates)
		}
		gates := make(map[v1alpha1.WebhookType][]v1alpha1.WebhookResult, len(snap.Gates)+len(answers))
		for t, rs := range snap.Gates {
			gates[t] = rs
		}
		for t, rs := range answers {
			gates[t] = rs
		}
		snap.Gates = gates
		plan = rollout.ComputePlan(snap)
	}
	return snap, plan
}

// waitForAnswers is the plan of a rollout whose webhooks have not all answered: nothing moves and
// nothing is written but the Ready condition, which names them.
func waitForAnswers(s rollout.Snapshot, types []v1alpha1.WebhookType) rollout.Plan {
	cn := s.Canary
	var names []string
	for _, t := range types {
		for _, h := range cn.WebhooksOf(t) {
			names = append(names, fmt.Sprintf("%q (%s)", h.Name, t))
		}
	}
	st := *cn.Status.DeepCopy()
	return rollout.Plan{
		Status:       st,
		Routing:      rollout.RoutingFor(cn, &st),
		Reason:       rollout.ReasonWaitingForApproval,
		Message:      fmt.Sprintf("Waiting for the answer of webhook %s.", joinAnd(names)),
		RequeueAfter: gateRecheck,
	}
}

// callWebhooks calls every webhook of the given types at once, so that one slow webhook costs
// its own timeout and not the sum of them all.
func (r *CanaryReconciler) callWebhooks(ctx context.Context, s rollout.Snapshot, target *appsv1.Deployment, types []v1alpha1.WebhookType) map[v1alpha1.WebhookType][]v1alpha1.WebhookResult {
	out := make(map[v1alpha1.WebhookType][]v1alpha1.WebhookResult, len(types))
	var wg sync.WaitGroup
	for _, t := range types {
		hs := s.Canary.WebhooksOf(t)
		results := make([]v1alpha1.WebhookResult, len(hs))
		out[t] = results
		for i, h := range hs {
			// Each call fills its own slot.
			wg.Go(func() {
				res := r.callWebhook(ctx, s.Canary, h, t, payloadFor(s.Canary, &s.Canary.Status, s.Target.Revision, target, t, s.Now))
				results[i] = webhookResult(h, t, res, r.Clock.Now())
			})
		}
	}
	wg.Wait()
	return out
}

// callWebhook makes one webhook's request, with its timeout, retries, format and signature.
func (r *CanaryReconciler) callWebhook(ctx context.Context, cn *v1alpha1.Canary, h v1alpha1.CanaryWebhook, t v1alpha1.WebhookType, payload hooks.Payload) hooks.Result {
	req, err := r.webhookRequest(ctx, cn, h, payload)
	if err != nil {
		return hooks.Result{Outcome: hooks.Failed, Message: fmt.Sprintf("webhook %q (%s) was not called: %v", h.Name, t, err)}
	}
	return r.Hooks.Call(ctx, req)
}

// webhookRequest is the request a webhook gets; an error when its signing key cannot be read.
func (r *CanaryReconciler) webhookRequest(ctx context.Context, cn *v1alpha1.Canary, h v1alpha1.CanaryWebhook, payload hooks.Payload) (hooks.Request, error) {
	timeout := defaultWebhookTimeout
	if d, err := time.ParseDuration(h.Timeout); err == nil && d > 0 {
		timeout = d
	}
	req := hooks.Request{Name: h.Name, URL: h.URL, Format: hooks.Format(h.Format), Timeout: timeout, Payload: payload}
	if h.Retries != nil {
		req.Retries = int(*h.Retries)
	}
	req.Payload.Metadata = h.Metadata
	if h.SecretRef != nil {
		key, err := r.secretKey(ctx, cn.Namespace, h.SecretRef.Name, cmp.Or(h.SecretRef.Key, "hmac-key"))
		if err != nil {
			return req, err
		}
		req.SigningKey = key
	}
	return req, nil
}

// secretKey reads one key of a Secret, uncached, with an error that names the Secret and the key
// but never shows a value.
func (r *CanaryReconciler) secretKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	sec := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("secret %s/%s does not exist", namespace, name)
	case err != nil:
		return nil, fmt.Errorf("reading secret %s/%s: %w", namespace, name, err)
	}
	v, ok := sec.Data[key]
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("secret %s/%s has no key %s", namespace, name, key)
	}
	return v, nil
}

func webhookResult(h v1alpha1.CanaryWebhook, t v1alpha1.WebhookType, res hooks.Result, at time.Time) v1alpha1.WebhookResult {
	return v1alpha1.WebhookResult{
		Name: h.Name, Type: t, Outcome: v1alpha1.WebhookOutcome(res.Outcome),
		StatusCode: int32(res.Status), Attempts: int32(res.Attempts), Message: res.Message, Time: metav1.NewTime(at),
	}
}

// payloadFor is what a webhook of type t is told about the Canary: its rollout as st records
// it, the canary's revision and images, and the last failed check.
func payloadFor(cn *v1alpha1.Canary, st *v1alpha1.CanaryStatus, revision string, target *appsv1.Deployment, t v1alpha1.WebhookType, now time.Time) hooks.Payload {
	p := hooks.Payload{
		Name: cn.Name, Namespace: cn.Namespace, Type: string(t), Phase: string(st.Phase), Revision: revision,
		CanaryWeight: st.CanaryWeight, PrimaryWeight: 100 - st.CanaryWeight,
		Step: st.Step, Steps: int32(len(rollout.Stages(cn))), Time: now,
	}
	if cn.Spec.Analysis.Iterations != nil {
		p.Iteration = st.Step
	}
	if target != nil {
		p.Images = images(target)
	}
	if d := lastFailure(st); d != nil {
		p.FailedCheck = &hooks.FailedCheck{Metric: d.Metric, Value: d.Value, Bound: d.Bound, Message: d.Message}
	}
	return p
}

// images maps each container of the Deployment's pod template to its image.
func images(d *appsv1.Deployment) map[string]string {
	out := make(map[string]string, len(d.Spec.Template.Spec.Containers))
	for _, c := range d.Spec.Template.Spec.Containers {
		out[c.Name] = c.Image
	}
	return out
}

// lastFailure is the newest failed check of the rollout; nil when none failed.
func lastFailure(st *v1alpha1.CanaryStatus) *v1alpha1.Decision {
	for i := range st.Decisions {
		if st.Decisions[i].Verdict == v1alpha1.VerdictFail {
			return &st.Decisions[i]
		}
	}
	return nil
}
