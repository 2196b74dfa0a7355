package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// HistoryOptions are the inputs of `trafficctl history`: the rollouts a Canary went through,
// newest first, so "which release was rolled back, and why?" has an answer after the fact.
type HistoryOptions struct {
	// Output is "" or wide for the table, json or yaml for the records.
	Output string

	// Set by Complete.
	canaryRef
	now func() time.Time
}

func newHistoryCommand(f *Factory) *cobra.Command {
	o := &HistoryOptions{canaryRef: canaryRef{factory: f}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a Canary's rollouts, newest first, with how each ended",
		Long: `List the rollouts of a Canary, newest first: the revision and its images, whether it was
promoted or rolled back and why, how much traffic the canary reached, when it started and how
long it took. A rollout under way comes first, with its phase as its result.

The controller keeps the last 10 rollouts in status.history.`,
		Example: `  trafficctl history podinfo
  trafficctl history podinfo -o wide
  trafficctl history podinfo -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeCanaryNames(f),
		RunE:              runOptions(f, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format. One of: (wide, json, yaml).")
	return cmd
}

// Complete reads the name and the namespace.
func (o *HistoryOptions) Complete(f *Factory, args []string) error {
	return o.complete(f, args[0])
}

// Validate checks the output format.
func (o *HistoryOptions) Validate() error {
	if o.Output == "wide" {
		return nil
	}
	if err := validateStructuredFormat(o.Output); err != nil {
		return errors.New(strings.Replace(err.Error(), "use json or yaml", "use wide, json or yaml", 1))
	}
	return nil
}

// historyView is what -o json|yaml prints: the rollout under way, if any, and the ones that
// ended.
type historyView struct {
	Canary string `json:"canary"`
	// Current is the rollout under way, its result the phase it stands in; FinishedAt is unset.
	Current  *v1alpha1.RolloutRecord  `json:"current,omitempty"`
	Rollouts []v1alpha1.RolloutRecord `json:"rollouts"`
}

// Run reads the Canary and prints its rollouts.
func (o *HistoryOptions) Run(ctx context.Context) error {
	cn, err := o.get(ctx)
	if err != nil {
		return err
	}
	view := historyView{Canary: cn.Namespace + "/" + cn.Name, Current: o.current(ctx, cn), Rollouts: cn.Status.History}
	if view.Rollouts == nil {
		view.Rollouts = []v1alpha1.RolloutRecord{}
	}
	out := o.factory.Streams.Out
	if o.Output == "json" || o.Output == "yaml" {
		return printStructured(out, o.Output, view)
	}
	if view.Current == nil && len(view.Rollouts) == 0 {
		_, err := fmt.Fprintf(out, "%s: no rollouts yet; the primary runs the revision it started with (%s).\n", cn.Name, cmp.Or(cn.Status.LastPromotedSpec, "-"))
		return err
	}
	now := o.now()
	var rows []metav1.TableRow
	if view.Current != nil {
		rows = append(rows, historyRow(*view.Current, now, true))
	}
	for _, r := range view.Rollouts {
		rows = append(rows, historyRow(r, now, false))
	}
	return printTable(out, historyColumns, rows, printers.PrintOptions{Wide: o.Output == "wide"})
}

// current is the rollout under way as a record, its images read off the target Deployment
// (which runs the revision being rolled out); nil when no rollout is under way.
func (o *HistoryOptions) current(ctx context.Context, cn *v1alpha1.Canary) *v1alpha1.RolloutRecord {
	st := cn.Status
	if !rollout.InRollout(st.Phase) {
		return nil
	}
	rec := &v1alpha1.RolloutRecord{
		Revision: st.LastAppliedSpec, Result: st.Phase, WeightReached: st.MaxWeightReached, StartedAt: st.RolloutStartedAt,
	}
	if c := readyOf(cn); c != nil {
		rec.Reason, rec.Message = c.Reason, c.Message
	}
	d := &appsv1.Deployment{}
	if err := o.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name}, d); err == nil {
		for _, c := range d.Spec.Template.Spec.Containers {
			rec.Images = append(rec.Images, c.Name+"="+c.Image)
		}
	}
	return rec
}

var historyColumns = []metav1.TableColumnDefinition{
	column("Revision", false), column("Images", false), column("Result", false), column("Reason", false),
	column("Weight Reached", false), column("Started", false), column("Duration", false), column("Message", true),
}

func historyRow(r v1alpha1.RolloutRecord, now time.Time, running bool) metav1.TableRow {
	started := "-"
	if r.StartedAt != nil {
		started = agoOf(r.StartedAt, now)
	}
	took := "-"
	switch {
	case r.StartedAt == nil:
	case running:
		took = durationText(now.Sub(r.StartedAt.Time)) + " so far"
	case !r.FinishedAt.IsZero():
		took = durationText(r.FinishedAt.Sub(r.StartedAt.Time))
	}
	return metav1.TableRow{Cells: []any{
		cmp.Or(r.Revision, "-"), cmp.Or(strings.Join(r.Images, ","), "-"), string(r.Result), cmp.Or(r.Reason, "-"),
		fmt.Sprintf("%d%%", r.WeightReached), started, took, cmp.Or(r.Message, "-"),
	}}
}
