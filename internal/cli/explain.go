package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// ExplainOptions are the inputs of `trafficctl explain`: one Canary, whose last decision is put
// in sentences from the records the controller keeps in its status (the Ready condition, the
// decisions of the checks, the webhooks' answers and the manual actions), so nobody has to read
// the controller's logs to learn why a release was rolled back or what a step waits for.
type ExplainOptions struct {
	// Set by Complete.
	canaryRef
	now func() time.Time
}

func newExplainCommand(f *Factory) *cobra.Command {
	o := &ExplainOptions{canaryRef: canaryRef{factory: f}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "explain NAME",
		Short: "Explain, in sentences, why a Canary's rollout stands where it does",
		Long: `Explain why a Canary's rollout stands where it does: why it was rolled back (which check
failed, what it measured against what bound, over how many requests, with which query, and how
many failed checks the threshold allows), what a step waits for, and who steered it by hand.`,
		Example:           `  trafficctl explain podinfo`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCanaryNames(f),
		RunE:              runOptions(f, o),
	}
	return cmd
}

// Complete reads the name and the namespace.
func (o *ExplainOptions) Complete(f *Factory, args []string) error {
	return o.complete(f, args[0])
}

// Validate has nothing to check beyond the one argument cobra enforces; it is here so every
// verb reads the same.
func (o *ExplainOptions) Validate() error { return nil }

// Run reads the Canary and explains it.
func (o *ExplainOptions) Run(ctx context.Context) error {
	cn, err := o.get(ctx)
	if err != nil {
		return err
	}
	_, err = io.WriteString(o.factory.Streams.Out, explainText(cn, o.now()))
	return err
}

// explainer builds the explanation of one Canary, paragraph by paragraph.
type explainer struct {
	cn  *v1alpha1.Canary
	now time.Time
	b   strings.Builder
}

// explainText is the explanation of cn at now.
func explainText(cn *v1alpha1.Canary, now time.Time) string {
	e := &explainer{cn: cn, now: now}
	if cn.Status.Phase == "" {
		e.sayf("%s has no status yet: the trafficctl controller has not acted on it. Check that the controller runs and watches namespace %s.\n", cn.Name, cn.Namespace)
		return e.b.String()
	}
	e.summary()
	e.why()
	e.latestChecks()
	e.manualActions()
	return e.b.String()
}

// sayf adds a sentence (or a few) to the current paragraph.
func (e *explainer) sayf(format string, args ...any) {
	if e.b.Len() > 0 && !strings.HasSuffix(e.b.String(), "\n") {
		e.b.WriteString(" ")
	}
	fmt.Fprintf(&e.b, format, args...)
}

// paragraph ends the current paragraph: whatever ended it before, one blank line follows.
func (e *explainer) paragraph() {
	text := strings.TrimRight(e.b.String(), "\n")
	if text == "" {
		return
	}
	e.b.Reset()
	e.b.WriteString(text)
	e.b.WriteString("\n\n")
}

// bullet adds one line of a list.
func (e *explainer) bullet(format string, args ...any) {
	e.b.WriteString("  - ")
	fmt.Fprintf(&e.b, format, args...)
	e.b.WriteString("\n")
}

func (e *explainer) st() *v1alpha1.CanaryStatus { return &e.cn.Status }

func (e *explainer) revision() string { return cmp.Or(e.st().LastAppliedSpec, "(unknown)") }

func (e *explainer) steps() string {
	return fmt.Sprintf("step %d of %d", e.st().Step, stepCountOf(e.cn))
}

// summary says where the rollout stands, and what the controller last said about it.
func (e *explainer) summary() {
	st, cn := e.st(), e.cn
	name := fmt.Sprintf("%s (namespace %s)", cn.Name, cn.Namespace)
	switch st.Phase {
	case v1alpha1.PhaseInitializing:
		e.sayf("%s is being set up: trafficctl creates the primary Deployment, the Services and the route before any rollout.", name)
	case v1alpha1.PhaseInitialized:
		e.sayf("%s is initialized: the primary runs revision %s and serves all traffic, and the next change to Deployment %s starts a rollout.", name, cmp.Or(st.LastPromotedSpec, "(unknown)"), cn.Spec.TargetRef.Name)
	case v1alpha1.PhaseWaiting:
		e.sayf("%s holds the rollout of revision %s before it starts: its confirm-rollout webhooks have not approved it yet.", name, e.revision())
	case v1alpha1.PhaseProgressing:
		if st.Step > 0 {
			e.sayf("%s is rolling out revision %s and stands at %s, with %s.", name, e.revision(), e.steps(), rollout.RoutingFor(cn, st))
		} else {
			e.sayf("%s is rolling out revision %s and has not reached its first step yet.", name, e.revision())
		}
	case v1alpha1.PhaseWaitingPromotion:
		e.sayf("%s has passed every step of revision %s and waits for its confirm-promotion webhooks to approve the promotion; the checks go on meanwhile.", name, e.revision())
	case v1alpha1.PhasePromoting:
		e.sayf("%s is promoting revision %s: the primary Deployment is being updated to it.", name, e.revision())
	case v1alpha1.PhaseFinalising:
		e.sayf("%s has promoted revision %s and is sending all traffic back to the primary, which now runs it.", name, e.revision())
	case v1alpha1.PhaseSucceeded:
		e.sayf("%s promoted revision %s %s: it passed every step and serves all traffic.", name, e.revision(), agoOf(st.LastTransitionTime, e.now))
	case v1alpha1.PhaseFailed:
		e.sayf("%s rolled back revision %s %s: the primary, which runs revision %s, serves all traffic again.", name, e.revision(), agoOf(st.LastTransitionTime, e.now), cmp.Or(st.LastPromotedSpec, "(unknown)"))
	case v1alpha1.PhaseTerminating:
		e.sayf("%s is being deleted: trafficctl puts the traffic back on the target Deployment first.", name)
	default:
		e.sayf("%s is in phase %s.", name, st.Phase)
	}
	if c := readyOf(cn); c != nil {
		e.sayf("The controller's last word (Ready is %s, reason %s): %s", c.Status, c.Reason, c.Message)
	}
	if cn.Spec.Suspend {
		e.sayf("The Canary is suspended (spec.suspend): trafficctl does not act on it, and the traffic stays where it is until it is resumed.")
	}
	if p := st.Paused; p != nil {
		e.sayf("%s paused the rollout %s: no check, no step and no promotion happens until someone resumes it (trafficctl resume %s).", cmp.Or(p.User, "Someone"), agoOf(&p.HandledAt, e.now), cn.Name)
	}
	if p := st.PromotionRequested; p != nil {
		e.sayf("%s asked %s to promote it without the remaining steps; it is promoted as soon as the canary is ready.", cmp.Or(p.User, "Someone"), agoOf(&p.HandledAt, e.now))
	}
	e.paragraph()
}

func (e *explainer) readyReason() string {
	if c := readyOf(e.cn); c != nil {
		return c.Reason
	}
	return ""
}

// why explains the decision behind the phase: a rollback's cause, or what a step waits for.
func (e *explainer) why() {
	st := e.st()
	switch st.Phase {
	case v1alpha1.PhaseFailed:
		e.whyRolledBack()
	case v1alpha1.PhaseProgressing, v1alpha1.PhaseWaitingPromotion, v1alpha1.PhaseWaiting:
		e.whyWaiting()
	case v1alpha1.PhaseSucceeded:
		if rec := e.lastRecord(); rec != nil && rec.StartedAt != nil {
			e.sayf("The rollout took %s and reached %d%% canary traffic before the promotion.", durationText(rec.FinishedAt.Sub(rec.StartedAt.Time)), rec.WeightReached)
			e.paragraph()
		}
	}
}

func (e *explainer) lastRecord() *v1alpha1.RolloutRecord {
	if len(e.st().History) == 0 {
		return nil
	}
	return &e.st().History[0]
}

func (e *explainer) whyRolledBack() {
	st, cn := e.st(), e.cn
	threshold := cn.FailureThreshold()
	switch reason := e.readyReason(); reason {
	case rollout.ReasonCheckFailed:
		if conclusive := e.failing(func(d v1alpha1.Decision) bool { return d.Conclusive }); len(conclusive) > 0 {
			e.sayf("A sequential check was conclusive: its evidence that the canary is worse than the primary crossed the bar, so trafficctl rolled back at once, without waiting for %d failed checks (analysis.threshold).", threshold)
			e.paragraph()
			for _, d := range conclusive {
				e.explainDecision(d)
			}
			return
		}
		failing := e.failing(nil)
		at := ""
		if len(failing) > 0 {
			at = fmt.Sprintf(", the last at step %d (%d%% canary traffic)", failing[0].Step, failing[0].CanaryWeight)
		}
		if n := cn.Spec.Analysis.ConsecutiveThreshold; n != nil && st.ConsecutiveFailedChecks >= *n && strings.Contains(readyMessageOf(cn), "in a row") {
			e.sayf("%d checks failed in a row%s; that reached the consecutive threshold of %d (analysis.consecutiveThreshold), so trafficctl rolled the canary back.", st.ConsecutiveFailedChecks, at, *n)
		} else {
			e.sayf("The checks failed %d %s in this rollout%s; that reached the failure threshold of %d (analysis.threshold), so trafficctl rolled the canary back.", st.FailedChecks, explainPlural(st.FailedChecks, "time", "times"), at, threshold)
		}
		e.paragraph()
		for _, d := range failing {
			e.explainDecision(d)
		}
	case rollout.ReasonWebhookFailed:
		e.sayf("A pre-rollout webhook failed %d times, which reached the failure threshold of %d (analysis.threshold), before the canary got any traffic.", st.FailedChecks, threshold)
		e.webhooksAnswering(func(w v1alpha1.WebhookResult) bool { return w.Outcome != v1alpha1.WebhookApproved })
	case rollout.ReasonRollbackWebhook:
		e.sayf("A rollback webhook asked for the rollback; trafficctl asks those webhooks at every check and rolls back as soon as one answers yes.")
		e.webhooksAnswering(func(w v1alpha1.WebhookResult) bool { return w.Type == v1alpha1.WebhookRollback })
	case rollout.ReasonAborted:
		if a := e.lastAction(v1alpha1.ActionAbort); a != nil {
			e.sayf("%s aborted it by hand %s: %s", cmp.Or(a.User, "Someone"), agoOf(&a.HandledAt, e.now), a.Message)
		} else {
			e.sayf("Someone aborted it by hand (trafficctl abort).")
		}
	case rollout.ReasonProgressDeadline:
		e.sayf("The rollout ran out of time: the canary Deployment or the route was not ready within the progress deadline of %s (spec.progressDeadlineSeconds). Look at the canary's pods (kubectl describe deployment %s) and at the route's status.", durationText(cn.ProgressDeadline()), cn.Spec.TargetRef.Name)
	case rollout.ReasonNoData:
		e.sayf("The checks had no data for the whole progress deadline of %s (onNoData: wait holds a step while there is none). Check that the canary receives traffic and that the queries select its pods.", durationText(cn.ProgressDeadline()))
		e.paragraph()
		for _, d := range latestPerMetric(currentDecisions(cn)) {
			if d.Verdict == v1alpha1.VerdictNoData {
				e.explainDecision(d)
			}
		}
	default:
		e.sayf("The reason the controller gives is %s.", cmp.Or(reason, "unknown"))
	}
	e.paragraph()
	e.sayf("To roll the same revision out again, run trafficctl retry %s; to roll out another, change Deployment %s.", cn.Name, cn.Spec.TargetRef.Name)
	e.paragraph()
}

// failing are the verdicts that counted against the canary at the rollout's last look: each
// check's latest decision that failed (or counted as failed under onError or onNoData), and
// that keep holds.
func (e *explainer) failing(keep func(v1alpha1.Decision) bool) []v1alpha1.Decision {
	var out []v1alpha1.Decision
	for _, d := range latestPerMetric(currentDecisions(e.cn)) {
		failed := d.Verdict == v1alpha1.VerdictFail || strings.Contains(d.Message, "counts as a failed check")
		if failed && (keep == nil || keep(d)) {
			out = append(out, d)
		}
	}
	return out
}

// explainDecision puts one verdict in sentences: what was measured, against what, over how much
// traffic, and with which query.
func (e *explainer) explainDecision(d v1alpha1.Decision) {
	when := fmt.Sprintf("at step %d (%d%% canary traffic) %s", d.Step, d.CanaryWeight, agoOf(&d.Time, e.now))
	switch {
	case d.Judge == v1alpha1.JudgeWebhook:
		e.sayf("Webhook %s %s %s: %s", d.Metric, explainVerdict(d.Verdict), when, d.Message)
	case d.Value == "":
		e.sayf("%s %s %s: %s", d.Metric, explainVerdict(d.Verdict), when, d.Message)
	default:
		measured := "the canary measured " + d.Value
		if d.PrimaryValue != "" {
			measured += " against the primary's " + d.PrimaryValue
		}
		e.sayf("%s %s: %s where the %s judge wants %s, %s.", d.Metric, explainVerdict(d.Verdict), measured,
			cmp.Or(string(d.Judge), "check's"), cmp.Or(d.Bound, "a bound it did not record"), when)
	}
	if s := sampleText(d); s != "" {
		e.sayf("The verdict rests on %s.", strings.TrimPrefix(s, "over "))
	}
	if ev := d.Evidence; ev != nil {
		e.sayf("Over the whole rollout the sequential check saw %d canary requests (%d bad) and %d of the primary (%d bad). %s",
			ev.CanaryRequests, ev.CanaryBad, ev.PrimaryRequests, ev.PrimaryBad, d.Message)
	}
	if d.Query != "" {
		e.b.WriteString("\n")
		e.bullet("canary query: %s", d.Query)
	}
	if d.PrimaryQuery != "" {
		if d.Query == "" {
			e.b.WriteString("\n")
		}
		e.bullet("primary query: %s", d.PrimaryQuery)
	}
	e.paragraph()
}

func (e *explainer) webhooksAnswering(keep func(v1alpha1.WebhookResult) bool) {
	var hooks []v1alpha1.WebhookResult
	for _, w := range e.st().Webhooks {
		if keep(w) {
			hooks = append(hooks, w)
		}
	}
	if len(hooks) == 0 {
		return
	}
	e.paragraph()
	e.b.WriteString("The webhooks' answers:\n")
	for _, w := range hooks {
		code := "no answer"
		if w.StatusCode != 0 {
			code = fmt.Sprintf("HTTP %d", w.StatusCode)
		}
		e.bullet("%s (%s): %s, %s after %d attempts, %s: %s", w.Name, w.Type, w.Outcome, code, w.Attempts, agoOf(&w.Time, e.now), cmp.Or(w.Message, "no message"))
	}
	e.b.WriteString("\n")
}

// whyWaiting says what the current step waits for.
func (e *explainer) whyWaiting() {
	st, cn := e.st(), e.cn
	threshold := cn.FailureThreshold()
	switch e.readyReason() {
	case rollout.ReasonWaitingForCanary, rollout.ReasonNewRevision:
		e.sayf("It waits for the canary Deployment %s to become ready; if it is not ready within the progress deadline of %s, the rollout is rolled back.", cn.Spec.TargetRef.Name, durationText(cn.ProgressDeadline()))
	case rollout.ReasonWaitingForRoute:
		e.sayf("It waits for the route to accept %s: a step's analysis only starts once the route carries its weights, and a route that does not accept them within %s rolls the rollout back.", rollout.RoutingFor(cn, st), durationText(cn.ProgressDeadline()))
	case rollout.ReasonAnalysing:
		e.sayf("The checks of %s pass so far. A step lasts %s (analysis.interval) from the moment the route accepted its weights, with checks every %s; then the rollout moves to the next step, or promotes after the last.", e.steps(), durationText(cn.AnalysisInterval()), durationText(cn.CheckInterval()))
	case rollout.ReasonCheckFailed:
		left := threshold - st.FailedChecks
		e.sayf("A check failed: %d of the %d failed checks the threshold allows (analysis.threshold) are used, so the step holds and checks again every %s; %d more failed %s the canary back.",
			st.FailedChecks, threshold, durationText(cn.CheckInterval()), left, explainPlural(left, "check rolls", "checks roll"))
		e.paragraph()
		for _, d := range e.failing(nil) {
			e.explainDecision(d)
		}
	case rollout.ReasonAnalysisUnavailable:
		e.sayf("The metrics provider could not answer, so the step holds without counting a failed check (onError: wait); it goes on once the provider answers again.")
	case rollout.ReasonNoData:
		e.sayf("The checks have no data yet, so the step holds (onNoData: wait); if there is still none after the progress deadline of %s, the canary is rolled back. Check that the canary receives traffic.", durationText(cn.ProgressDeadline()))
	case rollout.ReasonWaitingForApproval:
		e.sayf("It waits for a webhook's approval; the checks go on meanwhile.")
		e.webhooksAnswering(func(w v1alpha1.WebhookResult) bool { return w.Outcome != v1alpha1.WebhookApproved })
	case rollout.ReasonPaused:
		// Said in the summary.
	default:
		return
	}
	e.paragraph()
}

// explainVerdict is a verdict as a verb.
func explainVerdict(v v1alpha1.Verdict) string {
	switch v {
	case v1alpha1.VerdictPass:
		return "passed"
	case v1alpha1.VerdictFail:
		return "failed"
	case v1alpha1.VerdictNoData:
		return "had no data"
	case v1alpha1.VerdictError:
		return "could not be evaluated"
	}
	return "came back " + string(v)
}

func explainPlural(n int32, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// latestChecks lists each check's latest verdict in the rollout.
func (e *explainer) latestChecks() {
	decisions := latestPerMetric(currentDecisions(e.cn))
	if len(decisions) == 0 {
		if rollout.InRollout(e.st().Phase) || e.st().Phase == v1alpha1.PhaseFailed {
			e.sayf("No check has run in this rollout yet.")
			e.paragraph()
		}
		return
	}
	e.b.WriteString("The latest verdict of each check in this rollout:\n")
	for _, d := range decisions {
		e.bullet("%s: %s at step %d (%d%% canary traffic), %s. %s", d.Metric, d.Verdict, d.Step, d.CanaryWeight, agoOf(&d.Time, e.now), d.Message)
	}
	e.b.WriteString("\n")
}

// manualActions lists the latest requests made by hand, so a rollout steered by someone says
// who.
func (e *explainer) manualActions() {
	actions := e.st().ManualActions
	if len(actions) == 0 {
		e.sayf("Nobody has steered this Canary by hand.")
		e.b.WriteString("\n")
		return
	}
	e.b.WriteString("The latest manual actions, newest first:\n")
	for i, a := range actions {
		if i == 3 {
			e.bullet("and %d earlier (see status.manualActions)", len(actions)-3)
			break
		}
		e.bullet("%s asked to %s %s; %s: %s", cmp.Or(a.User, "someone"), a.Action, agoOf(&a.HandledAt, e.now), strings.ToLower(string(a.Outcome)), cmp.Or(a.Message, "no message"))
	}
}

// lastAction is the newest manual action of a kind.
func (e *explainer) lastAction(action v1alpha1.RequestActionType) *v1alpha1.ManualAction {
	for i := range e.st().ManualActions {
		if e.st().ManualActions[i].Action == action {
			return &e.st().ManualActions[i]
		}
	}
	return nil
}
