package cli

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// GetOptions are the inputs of `trafficctl get`: which Canaries, and how to print them. The
// table shows where each rollout stands at a glance; -o prints the objects themselves, for
// scripts and for `kubectl apply`.
type GetOptions struct {
	PrintFlags    *genericclioptions.PrintFlags
	AllNamespaces bool
	LabelSelector string
	NoHeaders     bool

	// Set by Complete.
	Name      string
	Namespace string
	factory   *Factory
	client    client.Client
	printer   printers.ResourcePrinter
	wide      bool
	now       func() time.Time
}

// newGetOptions are the defaults of `trafficctl get`.
func newGetOptions(f *Factory) *GetOptions {
	return &GetOptions{PrintFlags: newObjectPrintFlags(), factory: f, now: time.Now}
}

func newGetCommand(f *Factory) *cobra.Command {
	o := newGetOptions(f)
	cmd := &cobra.Command{
		Use:     "get [NAME]",
		Aliases: []string{"list"},
		Short:   "List Canaries and where their rollouts stand",
		Long: `List the Canaries of a namespace (or of all of them, with -A), with the phase of each
rollout, the canary's share of traffic, the step it stands at and its failed checks.

With -o wide the table adds the controller's last message and the revision being rolled out;
-o json|yaml|name|jsonpath=... prints the objects.`,
		Example: `  trafficctl get
  trafficctl get podinfo -o yaml
  trafficctl get -A -o wide`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeCanaryNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(f, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd)
		},
	}
	o.PrintFlags.AddFlags(cmd)
	// -o wide is the table's, not a printer's; say so in the flag's help.
	cmd.Flags().Lookup("output").Usage = "Output format. One of: (wide, json, yaml, name, jsonpath, go-template, ...)."
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "List the Canaries of every namespace.")
	cmd.Flags().StringVarP(&o.LabelSelector, "selector", "l", "", "Only the Canaries with these labels, such as team=shop.")
	cmd.Flags().BoolVar(&o.NoHeaders, "no-headers", false, "Print the table without its header row.")
	return cmd
}

// Complete reads the name, the namespace and the printer from the arguments and flags.
func (o *GetOptions) Complete(f *Factory, args []string) error {
	o.factory = f
	if len(args) == 1 {
		o.Name = args[0]
	}
	var err error
	if o.printer, err = objectPrinter(o.PrintFlags, "wide"); err != nil {
		return err
	}
	o.wide = *o.PrintFlags.OutputFormat == "wide"
	if o.Namespace, err = f.Namespace(); err != nil {
		return err
	}
	o.client, err = f.Client()
	return err
}

// Validate refuses combinations that cannot name a set of Canaries.
func (o *GetOptions) Validate() error {
	if o.Name != "" && o.AllNamespaces {
		return errors.New("a Canary cannot be retrieved by name across all namespaces; name its namespace with -n")
	}
	if o.Name != "" && o.LabelSelector != "" {
		return errors.New("give either a NAME or a --selector, not both")
	}
	return nil
}

// Run reads the Canaries and prints them.
func (o *GetOptions) Run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	var obj runtime.Object
	var items []v1alpha1.Canary
	if o.Name != "" {
		cn, err := o.factory.GetCanary(ctx, o.client, o.Namespace, o.Name)
		if err != nil {
			return err
		}
		obj, items = cn, []v1alpha1.Canary{*cn}
	} else {
		list := &v1alpha1.CanaryList{}
		opts := []client.ListOption{}
		if !o.AllNamespaces {
			opts = append(opts, client.InNamespace(o.Namespace))
		}
		if o.LabelSelector != "" {
			sel, err := metav1.ParseToLabelSelector(o.LabelSelector)
			if err != nil {
				return fmt.Errorf("--selector %q: %w", o.LabelSelector, err)
			}
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil {
				return fmt.Errorf("--selector %q: %w", o.LabelSelector, err)
			}
			opts = append(opts, client.MatchingLabelsSelector{Selector: s})
		}
		if err := o.client.List(ctx, list, opts...); err != nil {
			return friendly(err, "", "")
		}
		list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("CanaryList"))
		obj, items = list, list.Items
	}
	if o.printer != nil && *o.PrintFlags.OutputFormat == "name" {
		// The name printer takes one object at a time, as kubectl gives it.
		for i := range items {
			if err := printObject(o.factory.Streams.Out, o.printer, &items[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if o.printer != nil {
		return printObject(o.factory.Streams.Out, o.printer, obj)
	}
	if len(items) == 0 {
		where := "in namespace " + o.Namespace
		if o.AllNamespaces {
			where = "in any namespace"
		}
		_, err := fmt.Fprintf(o.factory.Streams.ErrOut, "No Canaries found %s.\n", where)
		return err
	}
	columns, rows := getColumns, getRows(items, o.now())
	if sharded(items) {
		columns, rows = withShard(columns, rows, items)
	}
	return printTable(o.factory.Streams.Out, columns, rows, printers.PrintOptions{
		Wide: o.wide, WithNamespace: o.AllNamespaces, NoHeaders: o.NoHeaders,
	})
}

// getColumns are the table's columns; the wide ones are what a user asks for next: why, and
// which revision.
var getColumns = []metav1.TableColumnDefinition{
	column("Name", false),
	column("Status", false),
	column("Weight", false),
	column("Step", false),
	column("Failed", false),
	column("Last Transition", false),
	column("Message", true),
	column("Revision", true),
}

func getRows(items []v1alpha1.Canary, now time.Time) []metav1.TableRow {
	rows := make([]metav1.TableRow, 0, len(items))
	for i := range items {
		cn := &items[i]
		st := cn.Status
		rows = append(rows, metav1.TableRow{
			Cells: []any{
				cn.Name,
				cmp.Or(string(st.Phase), "-"),
				fmt.Sprintf("%d%%", st.CanaryWeight),
				getStep(cn),
				strconv.Itoa(int(st.FailedChecks)),
				ageOf(st.LastTransitionTime, now),
				cmp.Or(readyMessageOf(cn), "-"),
				cmp.Or(st.LastAppliedSpec, "-"),
			},
			Object: runtime.RawExtension{Object: cn},
		})
	}
	return rows
}

// sharded reports whether any of items is labelled for a shard: then the table shows which shard
// acts on each.
func sharded(items []v1alpha1.Canary) bool {
	for i := range items {
		if _, ok := items[i].Labels[v1alpha1.LabelShard]; ok {
			return true
		}
	}
	return false
}

// withShard puts a Shard column after the name: the shard whose controller acts on the Canary,
// by its label (the default shard when it has none).
func withShard(columns []metav1.TableColumnDefinition, rows []metav1.TableRow, items []v1alpha1.Canary) ([]metav1.TableColumnDefinition, []metav1.TableRow) {
	columns = slices.Insert(slices.Clone(columns), 1, column("Shard", false))
	for i := range rows {
		shard := cmp.Or(items[i].Labels[v1alpha1.LabelShard], v1alpha1.DefaultShard)
		rows[i].Cells = slices.Insert(rows[i].Cells, 1, any(shard))
	}
	return columns, rows
}

// getStep is "1/2" while a rollout stands at a step, "-" otherwise.
func getStep(cn *v1alpha1.Canary) string {
	if cn.Status.Step < 1 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", cn.Status.Step, stepCountOf(cn))
}
