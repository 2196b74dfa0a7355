package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router/gatewayapi"
	"github.com/trafficctl/trafficctl/providers/router/istio"
	"github.com/trafficctl/trafficctl/providers/router/kubernetes"
	"github.com/trafficctl/trafficctl/rollout"
)

// plan shows what the next rollout will write, stage by stage, before it happens. The routing of
// each stage comes from the rollout core (Stages, RoutingFor, SwitchesBeforePromotion,
// CanaryReplicas), and the objects from the provider's own builder, the one its Router writes
// with: the same code that will write the real thing, run without a cluster.

// planRevision stands for the revision the next rollout rolls out, which sticky-session cookies
// carry; it is not known before the Deployment changes.
const planRevision = "next-revision"

func newPlanCommand(f *Factory) *cobra.Command {
	o := &PlanOptions{IOStreams: f.Streams}
	cmd := &cobra.Command{
		Use:   "plan (NAME | -f FILE [NAME])",
		Short: "Show the objects the next rollout writes, step by step, as diffs",
		Long: `Show what the next rollout of a Canary writes, stage by stage: its route (the HTTPRoute, the
Istio VirtualService and its DestinationRules, or, with provider kubernetes, the apex Service's
selector and the canary's replicas), and the Services it splits between. The objects before the
rollout come in full, then a unified diff from each stage to the next, headed by the traffic split
of each: every step, the switch of a blue/green rollout, and the promotion that sends all traffic
back to the primary.

The objects are built by the same code the controller runs, without writing anything. With NAME
the Canary is read from the cluster, with its Deployments and a route you own
(service.httpRouteRef or service.virtualServiceRef) as they stand; with -f they come from the
file (NAME picks one of several Canaries). Without its target Deployment the Services are left
out, since their selectors are the Deployment's; provider kubernetes needs it.

Every Canary is planned; one that cannot be is reported on stderr and makes the exit status 1.`,
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

// Complete reads the namespace; the client is made in Run, once the options are known to be valid
// and only when the Canary comes from the cluster.
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
	return nil
}

// Validate rejects options that cannot work.
func (o *PlanOptions) Validate() error {
	if o.Name == "" && o.Filename == "" {
		return errors.New("plan needs the name of a Canary, or -f FILE")
	}
	return nil
}

// Run prints the plan of every Canary asked for. A Canary that cannot be planned is reported on
// stderr and the rest are planned all the same; the error then says how many failed.
func (o *PlanOptions) Run(ctx context.Context) error {
	targets, err := o.targets(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(o.Out)
		}
		if err := planWrite(o.Out, t); err != nil {
			failed++
			err = fmt.Errorf("plan canary %s/%s: %w", t.canary.Namespace, t.canary.Name, err)
			if len(targets) == 1 {
				return err
			}
			fmt.Fprintf(o.ErrOut, "error: %v\n", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d Canaries could not be planned", failed, len(targets))
	}
	return nil
}

// planTarget is a Canary to plan and what its objects are built from, as it stands.
type planTarget struct {
	canary *v1alpha1.Canary
	// route is the route the user owns (service.httpRouteRef or service.virtualServiceRef); nil
	// when trafficctl owns the route.
	route *unstructured.Unstructured
	// target and primary are the Deployments; nil when not known (a file without them). A primary
	// not there yet is made from the target, as the controller makes it.
	target, primary *appsv1.Deployment
	// services are the Services of the Canary's names as they stand, which decides whether one is
	// adopted or owned.
	services map[string]*corev1.Service
}

// targets reads the Canaries to plan, from the cluster or from the file.
func (o *PlanOptions) targets(ctx context.Context) ([]planTarget, error) {
	if o.Filename == "" {
		var err error
		if o.client, err = o.factory.Client(); err != nil {
			return nil, err
		}
		cn, err := o.factory.GetCanary(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			return nil, err
		}
		t, err := o.clusterTarget(ctx, cn)
		if err != nil {
			return nil, err
		}
		return []planTarget{t}, nil
	}
	return o.fileTargets(ctx)
}

// clusterTarget reads what cn's objects are built from out of the cluster.
func (o *PlanOptions) clusterTarget(ctx context.Context, cn *v1alpha1.Canary) (planTarget, error) {
	t := planTarget{canary: cn, services: map[string]*corev1.Service{}}
	if cn.UserOwnsRoute() {
		gvk, ok := planRouteGVK(cn)
		if !ok {
			return t, fmt.Errorf("provider %s has no route of its own for the Canary to name", cn.Spec.Provider)
		}
		route := &unstructured.Unstructured{}
		route.SetGroupVersionKind(gvk)
		key := client.ObjectKey{Namespace: cn.Namespace, Name: cn.RouteName()}
		if err := o.client.Get(ctx, key, route); err != nil {
			if apierrors.IsNotFound(err) {
				return t, fmt.Errorf("the %s %s the Canary names does not exist; the rollout cannot start until it does", gvk.Kind, key)
			}
			return t, friendly(err, strings.ToLower(gvk.Kind), key.String())
		}
		t.route = route
	}
	for _, d := range []struct {
		name string
		into **appsv1.Deployment
	}{{cn.Spec.TargetRef.Name, &t.target}, {cn.PrimaryDeploymentName(), &t.primary}} {
		dep := &appsv1.Deployment{}
		switch err := o.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: d.name}, dep); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return t, friendly(err, "deployment", cn.Namespace+"/"+d.name)
		default:
			*d.into = dep
		}
	}
	for _, name := range []string{cn.ApexServiceName(), cn.PrimaryServiceName(), cn.CanaryServiceName()} {
		svc := &corev1.Service{}
		switch err := o.client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: name}, svc); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return t, friendly(err, "service", cn.Namespace+"/"+name)
		default:
			t.services[name] = svc
		}
	}
	return t, nil
}

// fileTargets reads the Canaries of the file, checked and defaulted as the apiserver would, with
// the Deployments and routes of the file they name.
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
			problems = append(problems, lintSorted(obj.problems)...)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(o.ErrOut, p.String())
		}
		return nil, fmt.Errorf("%s is not valid; the apiserver would refuse it as well (trafficctl lint -f %s says the same)", o.Filename, o.Filename)
	}
	// find is the object of the file of kind gvk in namespace ns named name; nil when none is.
	find := func(gk schema.GroupKind, ns, name string) *unstructured.Unstructured {
		for _, r := range objs {
			u := r.defaulted
			if u != nil && u.GroupVersionKind().GroupKind() == gk && u.GetNamespace() == ns && u.GetName() == name {
				return u
			}
		}
		return nil
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
		t := planTarget{canary: cn, services: map[string]*corev1.Service{}}
		if cn.UserOwnsRoute() {
			if gvk, ok := planRouteGVK(cn); ok {
				if t.route = find(gvk.GroupKind(), cn.Namespace, cn.RouteName()); t.route == nil {
					return nil, fmt.Errorf("canary %s/%s rewrites the %s %s/%s you own, which is not in %s: add it to the file, or run `trafficctl plan %s` against the cluster",
						cn.Namespace, cn.Name, gvk.Kind, cn.Namespace, cn.RouteName(), o.Filename, cn.Name)
				}
			}
		}
		if u := find(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), cn.Namespace, cn.Spec.TargetRef.Name); u != nil {
			t.target = &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t.target); err != nil {
				return nil, fmt.Errorf("decode Deployment %s/%s: %w", cn.Namespace, cn.Spec.TargetRef.Name, err)
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

// planRouteGVK is the kind of the route object a Canary's provider writes; none for provider
// kubernetes, whose route is the apex Service.
func planRouteGVK(cn *v1alpha1.Canary) (schema.GroupVersionKind, bool) {
	switch cn.Spec.Provider {
	case v1alpha1.ProviderGatewayAPI, "":
		return schema.FromAPIVersionAndKind(gatewayv1.GroupVersion.String(), "HTTPRoute"), true
	case v1alpha1.ProviderIstio:
		return istionetv1.SchemeGroupVersion.WithKind("VirtualService"), true
	}
	return schema.GroupVersionKind{}, false
}

// planStage is one moment of a rollout: what the route carries then, and what to call it.
type planStage struct {
	label   string
	routing rollout.Routing
	// status is the rollout's status at that moment, as far as the objects depend on it.
	status v1alpha1.CanaryStatus
}

// planStages are the moments of the next rollout whose routing differs from the one before:
// the resting route, each analysis step (equal steps in a row, as blue/green and A/B run,
// counted as one), blue/green's (and sticky sessions') switch of all traffic to the canary
// before the primary is updated, and the promoted route. primary is the primary's replica count,
// which a replica-ratio canary's share follows.
func planStages(cn *v1alpha1.Canary, primary int32) []planStage {
	at := func(label string, phase v1alpha1.CanaryPhase, step, weight int32) planStage {
		if rollout.StrategyOf(cn) == rollout.StrategyReplicaRatio && weight > 0 {
			// Pods come whole: the share is what the canary's pods make beside the primary's.
			weight = rollout.RatioWeight(max(primary, 1), weight)
		}
		st := v1alpha1.CanaryStatus{Phase: phase, Step: step, CanaryWeight: weight, LastAppliedSpec: planRevision}
		return planStage{label: label, routing: rollout.RoutingFor(cn, &st), status: st}
	}
	stages := []planStage{at("step 0", v1alpha1.PhaseInitialized, 0, 0)}
	steps := rollout.Stages(cn)
	for i := 0; i < len(steps); {
		j := i
		first := at("", v1alpha1.PhaseProgressing, int32(i+1), steps[i].Weight)
		for j+1 < len(steps) && at("", v1alpha1.PhaseProgressing, int32(j+2), steps[j+1].Weight).routing == first.routing {
			j++
		}
		first.label = fmt.Sprintf("step %d", i+1)
		if j > i {
			first.label = fmt.Sprintf("steps %d-%d", i+1, j+1)
		}
		stages = append(stages, first)
		i = j + 1
	}
	last := int32(len(steps))
	if rollout.SwitchesBeforePromotion(cn) {
		stages = append(stages, at("switch", v1alpha1.PhasePromoting, last, 100))
	}
	return append(stages, at("promoted", v1alpha1.PhaseSucceeded, 0, 0))
}

// planPrimaryReplicas is the primary's replica count: as it stands, or as the controller creates
// it from the target (at least 1); 1 when neither is known.
func planPrimaryReplicas(t planTarget) int32 {
	for _, d := range []*appsv1.Deployment{t.primary, t.target} {
		if d != nil && d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
			return *d.Spec.Replicas
		}
	}
	return 1
}

// planObjects are the objects a stage writes, in the order the plan shows them: the route (the
// HTTPRoute, the VirtualService and its DestinationRules, or the apex Service of provider
// kubernetes), then the Services it splits between, and, for a replica-ratio canary, the canary's
// replica count. The Services are left out when the target's selector is not known, and note
// says so.
func planObjects(t planTarget, s planStage) (objs []*unstructured.Unstructured, note string, err error) {
	cn := t.canary
	switch cn.Spec.Provider {
	case v1alpha1.ProviderKubernetes:
		if t.target == nil {
			return nil, "", fmt.Errorf("provider kubernetes points Service %s/%s at the pods of Deployment %s/%s by their labels: add the Deployment to the file, or run `trafficctl plan %s` against the cluster",
				cn.Namespace, cn.ApexServiceName(), cn.Namespace, cn.Spec.TargetRef.Name, cn.Name)
		}
		svc, err := kubernetes.Build(cn, s.routing, t.target, planPrimary(t), t.services[cn.ApexServiceName()])
		if err != nil {
			return nil, "", err
		}
		u, err := planUnstructured(svc)
		if err != nil {
			return nil, "", err
		}
		objs = append(objs, u)
	case v1alpha1.ProviderIstio:
		built, err := istio.Build(cn, s.routing, t.route)
		if err != nil {
			return nil, "", err
		}
		// The VirtualService, which changes from stage to stage, first.
		objs = append(objs, built[len(built)-1])
		objs = append(objs, built[:len(built)-1]...)
	default:
		route, err := gatewayapi.Build(cn, s.routing, t.route)
		if err != nil {
			return nil, "", err
		}
		objs = append(objs, route)
	}

	if t.target == nil || t.target.Spec.Selector == nil {
		note = fmt.Sprintf("the Services %s and %s select the pods of Deployment %s/%s by its spec.selector, which is not in the file; they are left out",
			cn.PrimaryServiceName(), cn.CanaryServiceName(), cn.Namespace, cn.Spec.TargetRef.Name)
	} else {
		for _, svc := range rollout.Services(cn, t.target.Spec.Selector.MatchLabels) {
			u, err := planUnstructured(kubernetes.Service(cn, svc.Name, svc.Selector, kubernetes.Adopted(cn, t.services[svc.Name])))
			if err != nil {
				return nil, "", err
			}
			objs = append(objs, u)
		}
	}
	if rollout.StrategyOf(cn) == rollout.StrategyReplicaRatio {
		// What the controller writes of the target: its replica count, a merge patch.
		replicas := rollout.CanaryReplicas(cn, s.status.Phase, s.status.Step, s.status.CanaryWeight, planPrimaryReplicas(t))
		scale := &unstructured.Unstructured{}
		scale.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
		scale.SetNamespace(cn.Namespace)
		scale.SetName(cn.Spec.TargetRef.Name)
		if err := unstructured.SetNestedField(scale.Object, int64(replicas), "spec", "replicas"); err != nil {
			return nil, "", err
		}
		objs = append(objs, scale)
	}
	return objs, note, nil
}

// planPrimary is the primary Deployment as it stands, or as the controller will create it from
// the target.
func planPrimary(t planTarget) *appsv1.Deployment {
	if t.primary != nil {
		return t.primary
	}
	p := &appsv1.Deployment{}
	p.Namespace, p.Name = t.canary.Namespace, t.canary.PrimaryDeploymentName()
	if sel := t.target.Spec.Selector; sel != nil {
		p.Spec.Selector = &metav1.LabelSelector{MatchLabels: rollout.PrimaryLabels(sel.MatchLabels)}
	}
	p.Spec.Template = rollout.PrimaryTemplate(t.target, nil)
	return p
}

// planUnstructured is an apply configuration or typed object in the form the plan prints.
func planUnstructured(obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("render %T: %w", obj, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// planWrite prints one Canary's plan: the objects at its first stage (and the route as it stands,
// for a route the user owns) in full, then a diff to each next stage.
func planWrite(out io.Writer, t planTarget) error {
	cn := t.canary
	stages := planStages(cn, planPrimaryReplicas(t))
	type rendered struct{ header, yaml string }
	var docs []rendered
	if t.route != nil {
		text, err := planYAML([]*unstructured.Unstructured{t.route})
		if err != nil {
			return err
		}
		docs = append(docs, rendered{header: "now: as it stands", yaml: text})
	}
	var note string
	for _, s := range stages {
		objs, n, err := planObjects(t, s)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", s.label, s.routing, err)
		}
		note = n
		text, err := planYAML(objs)
		if err != nil {
			return err
		}
		docs = append(docs, rendered{header: s.label + ": " + s.routing.String(), yaml: text})
	}

	kind, name := "Service", cn.ApexServiceName()
	if gvk, ok := planRouteGVK(cn); ok {
		kind, name = gvk.Kind, cn.RouteName()
	}
	fmt.Fprintf(out, "# Canary %s/%s (provider %s, strategy %s): %s %s/%s through %d stages\n",
		cn.Namespace, cn.Name, cmp.Or(string(cn.Spec.Provider), string(v1alpha1.ProviderGatewayAPI)), rollout.StrategyOf(cn), kind, cn.Namespace, name, len(stages))
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
	if note != "" {
		fmt.Fprintf(out, "# Note: %s.\n", note)
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

// planYAML renders objects for the plan, without what the apiserver keeps about them, as one
// multi-document YAML.
func planYAML(objs []*unstructured.Unstructured) (string, error) {
	var b strings.Builder
	for i, u := range objs {
		c := u.DeepCopy()
		planClean(c)
		data, err := yaml.Marshal(c.Object)
		if err != nil {
			return "", fmt.Errorf("render %s %s: %w", c.GetKind(), c.GetName(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	return b.String(), nil
}
