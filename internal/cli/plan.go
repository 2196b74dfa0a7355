package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/providers/router/istio"
	"github.com/trafficctl/trafficctl/rollout"
)

// plan shows what the next rollout will write into the route, stage by stage, before it
// happens. The routing of each stage comes from the controller's own functions (Stages and
// RoutingFor), and the route object from the provider's own Router, writing into an in-memory
// client instead of the cluster: the same code that will write the real thing.

// planFieldManager is the field manager the routers write the in-memory route under.
const planFieldManager = "trafficctl"

// planRevision stands for the revision the next rollout rolls out, which sticky-session cookies
// carry; it is not known before the Deployment changes.
const planRevision = "next-revision"

func newPlanCommand(f *Factory) *cobra.Command {
	o := &PlanOptions{IOStreams: f.Streams}
	cmd := &cobra.Command{
		Use:   "plan (NAME | -f FILE [NAME])",
		Short: "Show the route objects the next rollout writes, step by step, as diffs",
		Long: `Show what the next rollout of a Canary writes into its route (the HTTPRoute, or the Istio
VirtualService), stage by stage: the route before the rollout in full, then a unified diff from
each stage to the next, headed by the traffic split of each: every step, the switch of a
blue/green rollout, and the promotion that sends all traffic back to the primary.

The objects are built by the same code the controller runs, without writing anything. With NAME
the Canary is read from the cluster, and a route you own (service.httpRouteRef or
service.virtualServiceRef) is read as it stands; with -f the Canary, and a route you own, come
from the file (NAME picks one of several Canaries).`,
		Example: `  # What podinfo's next rollout writes into its HTTPRoute
  trafficctl plan podinfo

  # The same for a Canary not applied yet
  trafficctl plan -f podinfo.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: runOptions(f, o),
	}
	cmd.Flags().StringVarP(&o.Filename, "filename", "f", "", "a file holding the Canary (and the route you own, if any), or - for standard input")
	return cmd
}

// PlanOptions are the options of `trafficctl plan`.
type PlanOptions struct {
	// Name of the Canary: read from the cluster, or picked from the file.
	Name string
	// Filename holds the Canary instead of the cluster; "-" is standard input.
	Filename string

	factory   *Factory
	namespace string
	client    client.Client
	genericiooptions.IOStreams
}

// Complete reads the namespace, and the client unless the Canary comes from a file.
func (o *PlanOptions) Complete(f *Factory, args []string) error {
	if len(args) > 0 {
		o.Name = args[0]
	}
	o.factory = f
	o.IOStreams = f.Streams
	var err error
	if o.namespace, err = f.Namespace(); err != nil {
		return err
	}
	if o.Filename == "" {
		if o.client, err = f.Client(); err != nil {
			return err
		}
	}
	return nil
}

// Validate rejects options that cannot work.
func (o *PlanOptions) Validate() error {
	if o.Name == "" && o.Filename == "" {
		return errors.New("plan needs the name of a Canary, or -f FILE")
	}
	return nil
}

// Run prints the plan of every Canary asked for.
func (o *PlanOptions) Run(ctx context.Context) error {
	targets, err := o.targets(ctx)
	if err != nil {
		return err
	}
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(o.Out)
		}
		if err := planWrite(ctx, o.Out, t.canary, t.route); err != nil {
			return fmt.Errorf("plan canary %s/%s: %w", t.canary.Namespace, t.canary.Name, err)
		}
	}
	return nil
}

// planTarget is a Canary to plan, and the route the user owns, as it stands, when it has one.
type planTarget struct {
	canary *v1alpha1.Canary
	route  *unstructured.Unstructured
}

// targets reads the Canaries to plan, from the cluster or from the file.
func (o *PlanOptions) targets(ctx context.Context) ([]planTarget, error) {
	if o.Filename == "" {
		cn, err := o.factory.GetCanary(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			return nil, err
		}
		t := planTarget{canary: cn}
		if cn.UserOwnsRoute() {
			gvk, err := planRouteGVK(cn)
			if err != nil {
				return nil, err
			}
			route := &unstructured.Unstructured{}
			route.SetGroupVersionKind(gvk)
			key := client.ObjectKey{Namespace: cn.Namespace, Name: cn.RouteName()}
			if err := o.client.Get(ctx, key, route); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("the %s %s the Canary names does not exist; the rollout cannot start until it does", gvk.Kind, key)
				}
				return nil, friendly(err, strings.ToLower(gvk.Kind), key.String())
			}
			t.route = route
		}
		return []planTarget{t}, nil
	}
	return o.fileTargets(ctx)
}

// fileTargets reads the Canaries of the file, checked and defaulted as the apiserver would.
func (o *PlanOptions) fileTargets(ctx context.Context) ([]planTarget, error) {
	kinds, err := lintLoadKinds()
	if err != nil {
		return nil, err
	}
	docs, problems := lintReadFile(o.Filename, o.In)
	var objs []*lintObject
	for _, d := range docs {
		obj := lintNewObject(ctx, kinds, d, o.namespace)
		objs = append(objs, obj)
		if obj.errors > 0 {
			problems = append(problems, obj.problems...)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(o.ErrOut, p.String())
		}
		return nil, fmt.Errorf("%s is not valid; the apiserver would refuse it as well (trafficctl lint -f %s says the same)", o.Filename, o.Filename)
	}

	var targets []planTarget
	for _, obj := range objs {
		if obj.kind == nil || obj.kind.gvk.Kind != "Canary" || (o.Name != "" && obj.defaulted.GetName() != o.Name) {
			continue
		}
		cn := &v1alpha1.Canary{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.defaulted.Object, cn); err != nil {
			return nil, fmt.Errorf("decode %s: %w", obj.name(), err)
		}
		t := planTarget{canary: cn}
		if cn.UserOwnsRoute() {
			gvk, err := planRouteGVK(cn)
			if err != nil {
				return nil, err
			}
			for _, r := range objs {
				u := r.defaulted
				if u != nil && u.GroupVersionKind().GroupKind() == gvk.GroupKind() && u.GetNamespace() == cn.Namespace && u.GetName() == cn.RouteName() {
					t.route = u
				}
			}
			if t.route == nil {
				return nil, fmt.Errorf("canary %s/%s rewrites the %s %s/%s you own, which is not in %s: add it to the file, or run `trafficctl plan %s` against the cluster",
					cn.Namespace, cn.Name, gvk.Kind, cn.Namespace, cn.RouteName(), o.Filename, cn.Name)
			}
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		if o.Name != "" {
			return nil, fmt.Errorf("%s holds no Canary named %s", o.Filename, o.Name)
		}
		return nil, fmt.Errorf("%s holds no Canary", o.Filename)
	}
	return targets, nil
}

// planRouteGVK is the kind of the route a Canary's provider writes.
func planRouteGVK(cn *v1alpha1.Canary) (schema.GroupVersionKind, error) {
	switch cn.Spec.Provider {
	case v1alpha1.ProviderGatewayAPI, "":
		return schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"), nil
	case v1alpha1.ProviderIstio:
		return istionetv1.SchemeGroupVersion.WithKind("VirtualService"), nil
	}
	return schema.GroupVersionKind{}, fmt.Errorf("provider %s has no route object to plan: it splits traffic with the apex Service's selector and the Deployments' replica counts", cn.Spec.Provider)
}

// planStage is one moment of a rollout: what the route carries then, and what to call it.
type planStage struct {
	label   string
	routing rollout.Routing
}

// planStages are the moments of the next rollout whose routing differs from the one before:
// the resting route, each analysis step (equal steps in a row, as blue/green and A/B run,
// counted as one), blue/green's (and sticky sessions') switch of all traffic to the canary
// before the primary is updated, and the promoted route.
func planStages(cn *v1alpha1.Canary) []planStage {
	at := func(phase v1alpha1.CanaryPhase, step, weight int32) rollout.Routing {
		return rollout.RoutingFor(cn, &v1alpha1.CanaryStatus{Phase: phase, Step: step, CanaryWeight: weight, LastAppliedSpec: planRevision})
	}
	stages := []planStage{{label: "step 0", routing: at(v1alpha1.PhaseInitialized, 0, 0)}}
	steps := rollout.Stages(cn)
	for i := 0; i < len(steps); {
		j := i
		r := at(v1alpha1.PhaseProgressing, int32(i+1), steps[i].Weight)
		for j+1 < len(steps) && at(v1alpha1.PhaseProgressing, int32(j+2), steps[j+1].Weight) == r {
			j++
		}
		label := fmt.Sprintf("step %d", i+1)
		if j > i {
			label = fmt.Sprintf("steps %d-%d", i+1, j+1)
		}
		stages = append(stages, planStage{label: label, routing: r})
		i = j + 1
	}
	last := int32(len(steps))
	if planSwitches(cn) {
		stages = append(stages, planStage{label: "switch", routing: at(v1alpha1.PhasePromoting, last, 100)})
	}
	stages = append(stages, planStage{label: "promoted", routing: at(v1alpha1.PhaseSucceeded, 0, 0)})
	return stages
}

// planSwitches mirrors the controller's rule for sending every user to the canary while the
// primary is updated: blue/green promises one switch, and sticky sessions must not meet both
// versions during the primary's rolling update.
func planSwitches(cn *v1alpha1.Canary) bool {
	s := rollout.StrategyOf(cn)
	return s == rollout.StrategyBlueGreen || (s == rollout.StrategyCanary && cn.Spec.Analysis.SessionAffinity != nil)
}

// planWrite prints one Canary's plan: the route at its first stage (or as it stands, for a route
// the user owns) in full, then a diff to each next stage.
func planWrite(ctx context.Context, out io.Writer, cn *v1alpha1.Canary, current *unstructured.Unstructured) error {
	gvk, err := planRouteGVK(cn)
	if err != nil {
		return err
	}
	stages := planStages(cn)
	type rendered struct{ header, yaml string }
	var docs []rendered
	if current != nil {
		text, err := planYAML(current)
		if err != nil {
			return err
		}
		docs = append(docs, rendered{header: "now: as it stands", yaml: text})
	}
	for _, s := range stages {
		obj, err := planRoute(ctx, cn, gvk, s.routing, current)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", s.label, s.routing, err)
		}
		text, err := planYAML(obj)
		if err != nil {
			return err
		}
		docs = append(docs, rendered{header: s.label + ": " + s.routing.String(), yaml: text})
	}

	fmt.Fprintf(out, "# Canary %s/%s (provider %s, strategy %s): %s %s/%s through %d stages\n",
		cn.Namespace, cn.Name, cn.Spec.Provider, rollout.StrategyOf(cn), gvk.Kind, cn.Namespace, cn.RouteName(), len(stages))
	fmt.Fprintf(out, "# %s\n%s", docs[0].header, docs[0].yaml)
	for i := 1; i < len(docs); i++ {
		diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A:        planLines(docs[i-1].yaml),
			B:        planLines(docs[i].yaml),
			FromFile: docs[i-1].header,
			ToFile:   docs[i].header,
			Context:  3,
		})
		if err != nil {
			return fmt.Errorf("diff: %w", err)
		}
		if diff == "" {
			diff = fmt.Sprintf("--- %s\n+++ %s\n(no change)\n", docs[i-1].header, docs[i].header)
		}
		fmt.Fprint(out, diff)
	}
	return nil
}

// planLines splits text into lines that keep their newline, as difflib wants them, without the
// empty line after the last newline that difflib.SplitLines adds.
func planLines(text string) []string {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// planRoute is the route object the Canary's router writes for routing, starting from current
// (a route the user owns) when given: the router writes into an in-memory client, fresh for each
// stage, and the object is read back from it.
func planRoute(ctx context.Context, cn *v1alpha1.Canary, gvk schema.GroupVersionKind, routing rollout.Routing, current *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	b := fake.NewClientBuilder().WithScheme(planScheme).WithRESTMapper(planRESTMapper(gvk))
	if current != nil {
		seed := current.DeepCopy()
		planClean(seed)
		b = b.WithObjects(seed)
	}
	c := b.Build()
	var err error
	switch gvk.Kind {
	case "VirtualService":
		err = istio.New(c, planFieldManager).Apply(ctx, cn, routing)
	default:
		err = gatewayapi.New(c, planFieldManager).Apply(ctx, cn, routing)
	}
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	if err := c.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.RouteName()}, obj); err != nil {
		return nil, fmt.Errorf("read back %s: %w", gvk.Kind, err)
	}
	return obj, nil
}

// planScheme knows none of the route kinds, so the in-memory client keeps routes as the routers
// write them, unstructured, as the apiserver keeps custom resources: a typed round trip would
// drop what Istio's types omit when empty, such as a weight of 0.
var planScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}()

// planRESTMapper maps the route kinds the routers write (a VirtualService comes with its
// DestinationRules) to their resources.
func planRESTMapper(route schema.GroupVersionKind) meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(route, meta.RESTScopeNamespace)
	m.Add(istionetv1.SchemeGroupVersion.WithKind("DestinationRule"), meta.RESTScopeNamespace)
	return m
}

// planClean drops what the apiserver keeps about an object rather than what it says.
func planClean(u *unstructured.Unstructured) {
	for _, f := range []string{"resourceVersion", "managedFields", "creationTimestamp", "generation", "uid", "selfLink"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(u.Object, "status")
	if a := u.GetAnnotations(); a != nil {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		if len(a) == 0 {
			a = nil
		}
		u.SetAnnotations(a)
	}
}

// planYAML renders an object for the plan, without what the apiserver keeps about it.
func planYAML(u *unstructured.Unstructured) (string, error) {
	c := u.DeepCopy()
	planClean(c)
	data, err := yaml.Marshal(c.Object)
	if err != nil {
		return "", fmt.Errorf("render %s %s: %w", c.GetKind(), c.GetName(), err)
	}
	return string(data), nil
}
