package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/analysis"
	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// StatusOptions are the inputs of `trafficctl status`: one Canary, printed once or followed
// until its rollout ends, like `kubectl rollout status`.
type StatusOptions struct {
	PrintFlags *genericclioptions.PrintFlags
	// Watch follows the rollout until it ends, reprinting the view whenever the status changes.
	Watch bool
	// Timeout bounds --watch; 0 waits for ever.
	Timeout time.Duration
	// WaitStart is how long --watch, started right after a change to the Deployment, takes a
	// rollout that already ended (the previous one) for one that has not begun: the Canary's
	// status alone cannot tell a pending revision, so a terminal phase whose last transition is
	// the one seen at the start only counts once WaitStart has passed.
	WaitStart time.Duration
	// PollInterval is how often --watch reads the Canary.
	PollInterval time.Duration
	// Clock times --timeout, --wait-start and the polls; tests inject their own.
	Clock clock.WithTicker

	// Set by Complete.
	canaryRef
	printer printers.ResourcePrinter
}

// newStatusOptions are the defaults of `trafficctl status`.
func newStatusOptions(f *Factory) *StatusOptions {
	return &StatusOptions{
		PrintFlags: newObjectPrintFlags(),
		Timeout:    10 * time.Minute, PollInterval: time.Second, Clock: clock.RealClock{}, canaryRef: canaryRef{factory: f},
	}
}

func newStatusCommand(f *Factory) *cobra.Command { return statusCommand(newStatusOptions(f)) }

// statusCommand is the command for options o, which tests build with a short poll interval.
func statusCommand(o *StatusOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show where a Canary's rollout stands, or follow it to its end with --watch",
		Long: `Show where a Canary's rollout stands: its phase and step, the traffic split, its failed
checks, the controller's last message, the latest verdict of each check with the traffic it
rests on, and the answers of its webhooks.

With --watch, follow the rollout and print the view again whenever it changes, until it ends:
the command exits 0 when the revision is promoted (or the Canary initialized), and 1 when it
is rolled back or --timeout passes. Right after changing the Deployment the controller may not
have started the new rollout yet; --wait-start keeps the previous rollout's end from being
taken for this one's for that long.`,
		Example: `  trafficctl status podinfo
  kubectl set image deployment/podinfo app=podinfo:2.0 && trafficctl status podinfo --watch --wait-start 10s
  trafficctl status podinfo -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCanaryNames(o.factory),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(o.factory, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.PrintFlags.AddFlags(cmd)
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", o.Watch, "Follow the rollout until it ends; exit 1 if it is rolled back.")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "With --watch, give up after this long (0 waits for ever).")
	cmd.Flags().DurationVar(&o.WaitStart, "wait-start", o.WaitStart, "With --watch, do not take a rollout that had already ended at the start for the end during this long, so a new revision's rollout has time to begin.")
	return cmd
}

// Complete reads the name, the namespace and the printer.
func (o *StatusOptions) Complete(f *Factory, args []string) error {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	var err error
	if o.printer, err = objectPrinter(o.PrintFlags); err != nil {
		return err
	}
	return o.complete(f, args[0])
}

// Validate refuses flags that cannot apply.
func (o *StatusOptions) Validate() error {
	if o.Timeout < 0 || o.WaitStart < 0 {
		return errors.New("--timeout and --wait-start cannot be negative")
	}
	if !o.Watch && (o.WaitStart > 0) {
		return errors.New("--wait-start only applies with --watch")
	}
	return nil
}

// Run prints the Canary's status, and with --watch follows it until the rollout ends.
func (o *StatusOptions) Run(ctx context.Context) error {
	cn, err := o.get(ctx)
	if err != nil {
		return err
	}
	if !o.Watch {
		return o.print(cn, false)
	}
	return o.watch(ctx, cn)
}

func (o *StatusOptions) print(cn *v1alpha1.Canary, again bool) error {
	out := o.factory.Streams.Out
	if o.printer != nil {
		return printObject(out, o.printer, cn)
	}
	if again {
		if _, err := fmt.Fprintln(out); err != nil {
			return err
		}
	}
	return statusWrite(out, cn, o.Clock.Now())
}

// watch polls the Canary until its rollout ends, --timeout passes or ctx ends. A poll that
// fails for want of the cluster is tried again at the next tick: a rollout outlives a
// flaky connection.
func (o *StatusOptions) watch(ctx context.Context, cn *v1alpha1.Canary) error {
	start := o.Clock.Now()
	var seen *metav1.Time
	if cn.Status.LastTransitionTime != nil {
		seen = cn.Status.LastTransitionTime.DeepCopy()
	}
	ticker := o.Clock.NewTicker(o.PollInterval)
	defer ticker.Stop()
	var timeout <-chan time.Time
	if o.Timeout > 0 {
		t := o.Clock.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C()
	}
	var shown *v1alpha1.Canary
	var lastErr error
	for {
		if shown == nil || shown.Generation != cn.Generation || !equality.Semantic.DeepEqual(shown.Status, cn.Status) {
			if err := o.print(cn, shown != nil); err != nil {
				return err
			}
			shown = cn
		}
		if done, err := o.ended(cn, seen, o.Clock.Since(start)); done {
			if err == nil && o.printer == nil {
				_, err = fmt.Fprintf(o.factory.Streams.Out, "\n%s of %s: %s\n", statusEndWord(cn.Status.Phase), o.Name, cmp.Or(readyMessageOf(cn), "-"))
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			msg := fmt.Sprintf("timed out after %s waiting for %s to finish its rollout (%s)", durationText(o.Timeout), o.Name, statusWhere(cn))
			if lastErr != nil {
				msg += "; the last read of the Canary failed: " + lastErr.Error()
			}
			return errors.New(msg)
		case <-ticker.C():
		}
		next := &v1alpha1.Canary{}
		err := o.client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, next)
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("canary %s/%s was deleted while its rollout was being watched", o.Namespace, o.Name)
		case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
			return friendly(err, "canary", o.Namespace+"/"+o.Name)
		case err != nil:
			lastErr = friendly(err, "canary", o.Namespace+"/"+o.Name)
			continue
		}
		lastErr = nil
		cn = next
	}
}

// ended reports whether the rollout the watch follows has ended, and how: nil for a promotion
// (or an initialization), an error for a rollback. seen is the last transition at the start of
// the watch: a rollout that had ended by then is the previous one until WaitStart has passed.
func (o *StatusOptions) ended(cn *v1alpha1.Canary, seen *metav1.Time, elapsed time.Duration) (bool, error) {
	if cn.DeletionTimestamp != nil || cn.Status.Phase == v1alpha1.PhaseTerminating {
		return true, fmt.Errorf("canary %s/%s is being deleted", o.Namespace, o.Name)
	}
	if cn.Status.ObservedGeneration < cn.Generation {
		// The controller has not acted on the latest spec yet; what the status says is stale.
		return false, nil
	}
	lt := cn.Status.LastTransitionTime
	unchanged := (seen == nil && lt == nil) || (seen != nil && lt != nil && seen.Equal(lt))
	if unchanged && elapsed < o.WaitStart {
		return false, nil
	}
	switch cn.Status.Phase {
	case v1alpha1.PhaseSucceeded, v1alpha1.PhaseInitialized:
		return true, nil
	case v1alpha1.PhaseFailed:
		return true, fmt.Errorf("rollout of %s failed: %s", o.Name, cmp.Or(readyMessageOf(cn), "the controller gave no reason"))
	}
	return false, nil
}

func statusEndWord(phase v1alpha1.CanaryPhase) string {
	if phase == v1alpha1.PhaseInitialized {
		return "Initialization"
	}
	return "Rollout"
}

// statusWhere is where a rollout stands, for the timeout's message: "phase Progressing, step 1
// of 2".
func statusWhere(cn *v1alpha1.Canary) string {
	s := "phase " + cmp.Or(string(cn.Status.Phase), "unknown: the controller has not written a status")
	if cn.Status.Step > 0 {
		s += fmt.Sprintf(", step %d of %d", cn.Status.Step, stepCountOf(cn))
	}
	return s
}

// statusWrite prints the human view of a Canary's rollout.
func statusWrite(w io.Writer, cn *v1alpha1.Canary, now time.Time) error {
	st := cn.Status
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-17s%s\n", label+":", fmt.Sprintf(format, args...))
	}
	if st.Phase == "" {
		fmt.Fprintf(&b, "%s (namespace %s): no status yet; the trafficctl controller has not acted on it (is it running?)\n", cn.Name, cn.Namespace)
		_, err := io.WriteString(w, b.String())
		return err
	}
	head := string(st.Phase)
	if st.Step > 0 && st.Phase != v1alpha1.PhaseFinalising {
		head += fmt.Sprintf(", step %d of %d", st.Step, stepCountOf(cn))
	}
	fmt.Fprintf(&b, "%s (namespace %s): %s\n", cn.Name, cn.Namespace, head)
	line("Traffic", "%s", rollout.RoutingFor(cn, &st).String())
	line("Revision", "%s", statusRevision(st))
	line("Failed checks", "%d of %d (analysis.threshold)", st.FailedChecks, cn.FailureThreshold())
	if c := readyOf(cn); c != nil {
		line("Ready", "%s, %s: %s", c.Status, c.Reason, c.Message)
	}
	if st.RolloutStartedAt != nil {
		line("Rollout", "started %s; last transition %s", agoOf(st.RolloutStartedAt, now), agoOf(st.LastTransitionTime, now))
	}
	if cn.Spec.Suspend {
		line("Suspended", "spec.suspend is true: trafficctl leaves the traffic where it is")
	}
	if p := st.Paused; p != nil {
		line("Paused", "by %s %s; the traffic holds where it is until the rollout is resumed", cmp.Or(p.User, "someone"), agoOf(&p.HandledAt, now))
	}
	if p := st.PromotionRequested; p != nil {
		line("Promotion", "requested by %s %s; the canary is promoted, skipping the remaining steps, once it is ready", cmp.Or(p.User, "someone"), agoOf(&p.HandledAt, now))
	}

	if st.Phase == v1alpha1.PhaseInitializing || st.Phase == v1alpha1.PhaseInitialized {
		b.WriteString("\nNo rollout has run yet: the next change to Deployment " + cn.Spec.TargetRef.Name + " starts one.\n")
		return statusFlush(w, &b)
	}
	decisions := latestPerMetric(currentDecisions(cn))
	b.WriteString("\n")
	if len(decisions) == 0 {
		b.WriteString("Checks:          none has run in this rollout yet\n")
	} else {
		b.WriteString("Checks (the latest verdict of each in this rollout):\n")
		if err := statusFlush(w, &b); err != nil {
			return err
		}
		if err := printTable(w, statusCheckColumns, statusCheckRows(decisions, now), printers.PrintOptions{}); err != nil {
			return err
		}
	}
	line("Measured", "%s", statusMeasured(decisions))

	if len(st.Webhooks) > 0 {
		b.WriteString("\nWebhooks (the latest answer of each):\n")
		if err := statusFlush(w, &b); err != nil {
			return err
		}
		if err := printTable(w, statusWebhookColumns, statusWebhookRows(st.Webhooks, now), printers.PrintOptions{}); err != nil {
			return err
		}
	}
	return statusFlush(w, &b)
}

func statusFlush(w io.Writer, b *strings.Builder) error {
	_, err := io.WriteString(w, b.String())
	b.Reset()
	return err
}

// statusRevision says which revision is being rolled out against the one the primary runs.
func statusRevision(st v1alpha1.CanaryStatus) string {
	applied, promoted := cmp.Or(st.LastAppliedSpec, "-"), cmp.Or(st.LastPromotedSpec, "-")
	switch st.Phase {
	case v1alpha1.PhaseWaiting, v1alpha1.PhaseProgressing, v1alpha1.PhaseWaitingPromotion:
		return fmt.Sprintf("%s is being rolled out; the primary runs %s", applied, promoted)
	case v1alpha1.PhasePromoting:
		return fmt.Sprintf("%s is being promoted: the primary, which ran %s, is updated to it", applied, promoted)
	case v1alpha1.PhaseFinalising:
		return fmt.Sprintf("%s is promoted onto the primary; the traffic goes back to it", applied)
	case v1alpha1.PhaseFailed:
		return fmt.Sprintf("%s was rolled back; the primary runs %s", applied, promoted)
	}
	if applied == promoted {
		return promoted + ", on the primary"
	}
	return fmt.Sprintf("%s; the primary runs %s", applied, promoted)
}

var statusCheckColumns = []metav1.TableColumnDefinition{
	column("Metric", false), column("Judge", false), column("Value", false), column("Bound", false),
	column("Primary", false), column("Verdict", false), column("Sample", false), column("At", false),
}

func statusCheckRows(decisions []v1alpha1.Decision, now time.Time) []metav1.TableRow {
	rows := make([]metav1.TableRow, 0, len(decisions))
	for _, d := range decisions {
		verdict := string(d.Verdict)
		if d.Conclusive {
			verdict += " (conclusive)"
		}
		rows = append(rows, metav1.TableRow{Cells: []any{
			d.Metric, cmp.Or(string(d.Judge), "-"), cmp.Or(d.Value, "-"), cmp.Or(d.Bound, "-"), cmp.Or(d.PrimaryValue, "-"), verdict,
			cmp.Or(sampleText(d), "-"), fmt.Sprintf("step %d (%d%%), %s", d.Step, d.CanaryWeight, agoOf(&d.Time, now)),
		}})
	}
	return rows
}

// statusMeasured says how much traffic the latest verdicts rest on: a verdict over too few
// requests is a coin toss, and no traffic at all is the first thing to rule out when a step
// holds.
func statusMeasured(decisions []v1alpha1.Decision) string {
	if len(decisions) == 0 {
		return "nothing yet: no check of this rollout has run"
	}
	var parts []string
	for _, d := range decisions {
		if d.Metric == analysis.BuiltinRequestRate && d.Value != "" {
			parts = append(parts, fmt.Sprintf("%s %s requests/s on the canary", d.Metric, d.Value))
			if d.PrimaryValue != "" {
				parts[len(parts)-1] += fmt.Sprintf(", %s on the primary", d.PrimaryValue)
			}
		}
	}
	var largest v1alpha1.Decision
	for _, d := range decisions {
		if d.SampleSize > largest.SampleSize {
			largest = d
		}
	}
	if largest.SampleSize > 0 {
		parts = append(parts, fmt.Sprintf("%s in the latest check window (%s)", strings.TrimPrefix(sampleText(largest), "over "), largest.Metric))
	}
	if len(parts) == 0 {
		return "the checks did not count the canary's requests"
	}
	return strings.Join(parts, "; ")
}

var statusWebhookColumns = []metav1.TableColumnDefinition{
	column("Name", false), column("Type", false), column("Outcome", false), column("Code", false),
	column("Attempts", false), column("Age", false), column("Message", false),
}

func statusWebhookRows(hooks []v1alpha1.WebhookResult, now time.Time) []metav1.TableRow {
	rows := make([]metav1.TableRow, 0, len(hooks))
	for _, h := range hooks {
		code := "-"
		if h.StatusCode != 0 {
			code = fmt.Sprint(h.StatusCode)
		}
		rows = append(rows, metav1.TableRow{Cells: []any{
			h.Name, string(h.Type), string(h.Outcome), code, fmt.Sprint(h.Attempts), ageOf(&h.Time, now), cmp.Or(h.Message, "-"),
		}})
	}
	return rows
}
