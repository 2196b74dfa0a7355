package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/internal/apis"
	"github.com/trafficctl/trafficctl/rollout"
)

// This file is the CLI's output layer for the read-only verbs (get, status, history, explain,
// version): tables through cli-runtime's table printer, objects through its JSON and YAML
// printers, and the small wordings (ages, durations, steps) the verbs share, so they say the
// same thing the same way.

// canaryGVK is set on the Canaries the verbs print: the typed client leaves TypeMeta empty, and
// a YAML document without apiVersion and kind does not apply back.
var canaryGVK = v1alpha1.GroupVersion.WithKind("Canary")

// newObjectPrintFlags are the -o flags of a verb that prints Canaries as objects: json, yaml,
// name, jsonpath and go-template, as kubectl has them.
func newObjectPrintFlags() *genericclioptions.PrintFlags {
	return genericclioptions.NewPrintFlags("").WithTypeSetter(apis.NewScheme())
}

// objectPrinter is the printer of -o, or nil when -o asks for the verb's own human output (""
// or one of human).
func objectPrinter(pf *genericclioptions.PrintFlags, human ...string) (printers.ResourcePrinter, error) {
	format := ""
	if pf.OutputFormat != nil {
		format = *pf.OutputFormat
	}
	if format == "" {
		return nil, nil
	}
	for _, h := range human {
		if format == h {
			return nil, nil
		}
	}
	p, err := pf.ToPrinter()
	if err != nil {
		if genericclioptions.IsNoCompatiblePrinterError(err) {
			allowed := append(append([]string{}, human...), pf.AllowedFormats()...)
			return nil, fmt.Errorf("unknown output format %q: use one of %s", format, strings.Join(allowed, ", "))
		}
		return nil, err
	}
	return p, nil
}

// printObject prints Canaries with p, typed so the output applies back.
func printObject(w io.Writer, p printers.ResourcePrinter, obj runtime.Object) error {
	obj = obj.DeepCopyObject()
	if meta.IsListType(obj) {
		if err := meta.EachListItem(obj, func(item runtime.Object) error {
			if cn, ok := item.(*v1alpha1.Canary); ok {
				cn.SetGroupVersionKind(canaryGVK)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return p.PrintObj(obj, w)
}

// printStructured prints a verb's own view as json or yaml, for the verbs whose -o output is
// not a Kubernetes object (history, version).
func printStructured(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q: use json or yaml", format)
}

// validateStructuredFormat checks the -o of a verb that prints with printStructured.
func validateStructuredFormat(format string) error {
	switch format {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use json or yaml", format)
}

// printTable prints rows under columns the way kubectl prints its tables: upper-case headers,
// aligned columns, priority-1 columns only with options.Wide, a NAMESPACE column with
// options.WithNamespace (read from each row's object).
func printTable(w io.Writer, columns []metav1.TableColumnDefinition, rows []metav1.TableRow, options printers.PrintOptions) error {
	table := &metav1.Table{ColumnDefinitions: columns, Rows: rows}
	return printers.NewTablePrinter(options).PrintObj(table, w)
}

// column is a table column; wide ones show with -o wide only.
func column(name string, wide bool) metav1.TableColumnDefinition {
	c := metav1.TableColumnDefinition{Name: name, Type: "string"}
	if wide {
		c.Priority = 1
	}
	return c
}

// ageOf is how long ago t was, as kubectl prints ages ("5m", "2d3h"); "-" when unset.
func ageOf(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// agoOf is ageOf in a sentence: "5m ago".
func agoOf(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "at an unknown time"
	}
	if now.Sub(t.Time) < time.Second {
		return "just now"
	}
	return ageOf(t, now) + " ago"
}

// durationText prints a duration as a user writes it: 10m rather than 10m0s.
func durationText(d time.Duration) string {
	s := d.Round(time.Second).String()
	if d > 0 && d < time.Second {
		s = d.String()
	}
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// readyOf is the Canary's Ready condition, nil before the controller has written one.
func readyOf(cn *v1alpha1.Canary) *metav1.Condition {
	return meta.FindStatusCondition(cn.Status.Conditions, rollout.ConditionReady)
}

// readyMessageOf is the Ready condition's message, where the controller says what it is doing.
func readyMessageOf(cn *v1alpha1.Canary) string {
	if c := readyOf(cn); c != nil {
		return c.Message
	}
	return ""
}

// stepCountOf is how many analysis steps a rollout of the Canary has.
func stepCountOf(cn *v1alpha1.Canary) int {
	return len(rollout.Stages(cn))
}

// currentDecisions are the decisions of the current (or last) rollout, newest first: those
// made since it started.
func currentDecisions(cn *v1alpha1.Canary) []v1alpha1.Decision {
	started := cn.Status.RolloutStartedAt
	var out []v1alpha1.Decision
	for _, d := range cn.Status.Decisions {
		if started != nil && d.Time.Before(started) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// latestPerMetric is each check's newest decision, in the order the checks last ran.
func latestPerMetric(decisions []v1alpha1.Decision) []v1alpha1.Decision {
	seen := map[string]bool{}
	var out []v1alpha1.Decision
	for _, d := range decisions {
		if seen[d.Metric] {
			continue
		}
		seen[d.Metric] = true
		out = append(out, d)
	}
	return out
}

// sampleText says what a verdict rests on: "over 300 canary requests".
func sampleText(d v1alpha1.Decision) string {
	if d.SampleSize <= 0 {
		return ""
	}
	unit := "requests"
	if d.Judge == v1alpha1.JudgeMannWhitney {
		unit = "series points"
	}
	s := fmt.Sprintf("over %d canary %s", d.SampleSize, unit)
	if d.PrimarySampleSize > 0 {
		s += fmt.Sprintf(" (%d of the primary)", d.PrimarySampleSize)
	}
	return s
}

// completeCanaryNames completes a verb's NAME argument with the Canaries of the namespace.
func completeCanaryNames(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := f.Client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ns, err := f.Namespace()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		defer cancel()
		var list v1alpha1.CanaryList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, cn := range list.Items {
			if strings.HasPrefix(cn.Name, toComplete) {
				names = append(names, cn.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
