package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiextensionsvalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/config"
	"github.com/trafficctl/trafficctl/rollout"
)

// lint checks manifests before they reach a cluster, with the apiserver's own code: the CRDs
// this binary was built with (embedded from config/crd), their OpenAPI schemas, defaults and CEL
// rules, evaluated by k8s.io/apiextensions-apiserver as kube-apiserver evaluates them. Problems
// a schema cannot see, references between objects, are checked against the files given, or the
// cluster with --cluster.

// lintFieldManager is the field manager of --cluster's dry-run applies.
const lintFieldManager = "trafficctl-lint"

func newLintCommand(f *Factory) *cobra.Command {
	o := &LintOptions{IOStreams: f.Streams}
	cmd := &cobra.Command{
		Use:   "lint -f FILE [-f FILE ...]",
		Short: "Check Canary, MetricTemplate and AlertProvider manifests before applying them",
		Long: `Check manifests offline against the CRDs' schemas and CEL rules, exactly as the apiserver would,
and check their references: a Canary's target Deployment, its metrics' MetricTemplates, its
alerts' AlertProviders and its webhooks' Secrets, and the Secrets of AlertProviders and
MetricTemplates.

Files may hold many YAML documents (or a List); other kinds are skipped, but Deployments and
Secrets among them satisfy references. A reference to an object not in the files is a warning;
with --cluster it is looked up in the cluster of the kubeconfig, and every object is also created
with a server-side dry run, so admission and the installed CRDs have their say too.

Every problem is one line: FILE: Kind namespace/name: field.path: message. The exit status is
non-zero when any problem is an error.`,
		Example: `  # Check a Canary and what it references
  trafficctl lint -f podinfo.yaml -f templates.yaml

  # Check against the cluster too (references and a server-side dry run)
  trafficctl lint -f podinfo.yaml --cluster

  # Check what a tool renders
  kustomize build overlays/prod | trafficctl lint -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(f); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringArrayVarP(&o.Filenames, "filename", "f", nil, "a file of manifests to check, or - for standard input; repeatable")
	// Not --server, which is the global flag of the cluster's address.
	cmd.Flags().BoolVar(&o.Cluster, "cluster", false, "look references up in the cluster and create every object with a server-side dry run")
	return cmd
}

// LintOptions are the options of `trafficctl lint`.
type LintOptions struct {
	// Filenames are the files to check; "-" is standard input.
	Filenames []string
	// Cluster checks against the cluster too.
	Cluster bool

	namespace string
	client    client.Client
	genericiooptions.IOStreams
}

// Complete reads the namespace objects without one belong to, and, with --cluster, the client.
func (o *LintOptions) Complete(f *Factory) error {
	o.IOStreams = f.Streams
	var err error
	if o.namespace, err = f.Namespace(); err != nil {
		return err
	}
	if o.Cluster {
		if o.client, err = f.Client(); err != nil {
			return err
		}
	}
	return nil
}

// Validate rejects options that cannot work.
func (o *LintOptions) Validate() error {
	if len(o.Filenames) == 0 {
		return errors.New("lint needs at least one file: -f FILE (or -f - for standard input)")
	}
	return nil
}

// Run checks the files and prints every problem.
func (o *LintOptions) Run(ctx context.Context) error {
	kinds, err := lintLoadKinds()
	if err != nil {
		return err
	}
	var objs []*lintObject
	var problems []lintProblem
	for _, name := range o.Filenames {
		docs, perr := lintReadFile(name, o.In)
		problems = append(problems, perr...)
		for _, d := range docs {
			objs = append(objs, lintNewObject(ctx, kinds, d, o.namespace))
		}
	}
	lintCheckReferences(ctx, objs, o.client)
	lintCheckRules(ctx, objs, o.client)
	if o.Cluster {
		for _, obj := range objs {
			obj.dryRun(ctx, o.client)
		}
	}

	checked, warnings := 0, 0
	for _, obj := range objs {
		if obj.checked {
			checked++
		}
		problems = append(problems, lintSorted(obj.problems)...)
	}
	if len(objs) == 0 && len(problems) == 0 {
		names := make([]string, len(o.Filenames))
		for i, n := range o.Filenames {
			names[i] = n
			if n == "-" {
				names[i] = "<stdin>"
			}
		}
		return fmt.Errorf("%s %s no objects to check", strings.Join(names, ", "), lintPlural(len(names), "holds", "hold"))
	}
	errs := 0
	for _, p := range problems {
		fmt.Fprintln(o.Out, p.String())
		if p.warning {
			warnings++
		} else {
			errs++
		}
	}
	if errs > 0 {
		return fmt.Errorf("%d %s in %s", errs, lintPlural(errs, "error", "errors"), strings.Join(o.Filenames, ", "))
	}
	summary := fmt.Sprintf("%d %s valid", checked, lintPlural(checked, "object", "objects"))
	if warnings > 0 {
		summary += fmt.Sprintf(" (%d %s)", warnings, lintPlural(warnings, "warning", "warnings"))
	}
	fmt.Fprintln(o.Out, summary)
	return nil
}

// lintSorted orders one object's problems as the report prints them: errors first, each in field
// order, so the report reads the same every time (the validators report in map order).
func lintSorted(problems []lintProblem) []lintProblem {
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.warning != b.warning {
			return !a.warning
		}
		if a.path != b.path {
			return a.path < b.path
		}
		return a.message < b.message
	})
	return problems
}

// lintProblem is one line of lint's report.
type lintProblem struct {
	file string
	// object names the object, "Kind namespace/name"; for a document that could not be read,
	// where it starts, "line 12".
	object  string
	path    string
	message string
	warning bool
}

func (p lintProblem) String() string {
	parts := []string{p.file}
	if p.object != "" {
		parts = append(parts, p.object)
	}
	if p.path != "" {
		parts = append(parts, p.path)
	}
	msg := p.message
	if p.warning {
		msg = "warning: " + msg
	}
	return strings.Join(append(parts, msg), ": ")
}

// lintDoc is one object read from a file.
type lintDoc struct {
	file string
	// line is where the object's document starts.
	line int
	obj  map[string]any
}

// lintReadFile splits a file into its YAML (or JSON) documents and decodes each; a List's items
// are objects of their own. A document that is not YAML is a problem naming its line.
func lintReadFile(name string, stdin io.Reader) ([]lintDoc, []lintProblem) {
	var data []byte
	var err error
	display := name
	if name == "-" {
		display = "<stdin>"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, []lintProblem{{file: display, message: withoutPath(err).Error()}}
	}
	var docs []lintDoc
	var problems []lintProblem
	for _, chunk := range lintSplitDocuments(data) {
		j, err := yaml.YAMLToJSON(chunk.data)
		if err != nil {
			problems = append(problems, lintProblem{file: display, message: lintYAMLError(err, chunk.line)})
			continue
		}
		var v any
		if err := k8sjson.Unmarshal(j, &v); err != nil {
			problems = append(problems, lintProblem{file: display, object: fmt.Sprintf("line %d", chunk.line), message: err.Error()})
			continue
		}
		switch obj := v.(type) {
		case nil:
			// An empty document, or one of comments only.
		case map[string]any:
			if items, ok := obj["items"].([]any); ok && strings.HasSuffix(lintString(obj, "kind"), "List") {
				for _, item := range items {
					if m, ok := item.(map[string]any); ok {
						docs = append(docs, lintDoc{file: display, line: chunk.line, obj: m})
					}
				}
				continue
			}
			docs = append(docs, lintDoc{file: display, line: chunk.line, obj: obj})
		default:
			problems = append(problems, lintProblem{file: display, object: fmt.Sprintf("line %d", chunk.line), message: "the document is not an object with apiVersion, kind and metadata"})
		}
	}
	return docs, problems
}

// lintChunk is one YAML document of a file and the line it starts on.
type lintChunk struct {
	data []byte
	line int
}

// lintSeparator is a YAML document marker, optionally followed by a comment.
var lintSeparator = regexp.MustCompile(`^---\s*(#.*)?$`)

// lintSplitDocuments splits a multi-document YAML file at its --- markers, keeping where each
// document starts so an error can name the line in the file.
func lintSplitDocuments(data []byte) []lintChunk {
	var chunks []lintChunk
	var cur bytes.Buffer
	start := 1
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		n++
		line := sc.Text()
		if lintSeparator.MatchString(line) {
			chunks = append(chunks, lintChunk{data: bytes.Clone(cur.Bytes()), line: start})
			cur.Reset()
			start = n + 1
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	return append(chunks, lintChunk{data: cur.Bytes(), line: start})
}

// lintYAMLLine finds the line number in a YAML parser's message.
var lintYAMLLine = regexp.MustCompile(`^(?:error converting YAML to JSON: )?yaml: line (\d+): `)

// lintYAMLError is a YAML parser's error with the line counted from the top of the file.
func lintYAMLError(err error, docLine int) string {
	msg := err.Error()
	if m := lintYAMLLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("line %d: %s", docLine+n-1, msg[len(m[0]):])
	}
	return fmt.Sprintf("line %d: %s", docLine, strings.TrimPrefix(msg, "error converting YAML to JSON: "))
}

// lintKind is what the apiserver knows of one of trafficctl's kinds: the schema of its served
// version, structural for pruning, defaulting and CEL, and as a validator for the rest.
type lintKind struct {
	gvk        schema.GroupVersionKind
	namespaced bool
	// status is true when the kind has a status subresource, whose content a create ignores.
	status     bool
	validator  apiextensionsvalidation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

// lintLoadKinds reads the embedded CRDs once: compiling their CEL rules takes a moment.
var lintLoadKinds = sync.OnceValues(func() (map[schema.GroupKind]*lintKind, error) {
	kinds := map[schema.GroupKind]*lintKind{}
	entries, err := fs.ReadDir(config.CRDs, "crd")
	if err != nil {
		return nil, fmt.Errorf("read embedded CRDs: %w", err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(config.CRDs, "crd/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded CRD %s: %w", e.Name(), err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			return nil, fmt.Errorf("decode embedded CRD %s: %w", e.Name(), err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema == nil {
				continue
			}
			k, err := lintNewKind(crd, v)
			if err != nil {
				return nil, fmt.Errorf("embedded CRD %s, version %s: %w", crd.Name, v.Name, err)
			}
			kinds[k.gvk.GroupKind()] = k
		}
	}
	return kinds, nil
})

// lintNewKind builds the validators of one version as the apiextensions-apiserver builds them
// for serving it: internal types, a structural schema with pruned defaults, a schema validator
// and a CEL validator.
func lintNewKind(crd *apiextensionsv1.CustomResourceDefinition, v apiextensionsv1.CustomResourceDefinitionVersion) (*lintKind, error) {
	internal := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v.Schema, internal, nil); err != nil {
		return nil, fmt.Errorf("convert schema: %w", err)
	}
	validator, _, err := apiextensionsvalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("schema validator: %w", err)
	}
	s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("structural schema: %w", err)
	}
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, fmt.Errorf("prune defaults: %w", err)
	}
	return &lintKind{
		gvk:        schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind},
		namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		status:     v.Subresources != nil && v.Subresources.Status != nil,
		validator:  validator,
		structural: s,
		cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
	}, nil
}

// lintObject is one object of the files, with what is wrong with it.
type lintObject struct {
	doc lintDoc
	// checked is true for an object of trafficctl's group, or one without a kind: lint answers
	// for it. Other kinds are kept for the references only.
	checked bool
	// kind is the object's kind when its schema applies; nil otherwise.
	kind *lintKind
	// original is the object as written, for --server; defaulted is it as the apiserver would
	// store it (pruned and defaulted), for the reference checks and `plan -f`.
	original, defaulted *unstructured.Unstructured
	problems            []lintProblem
	// errors counts the problems that are errors.
	errors int
}

// name is how the report names the object: "Canary shop/podinfo".
func (o *lintObject) name() string {
	u := o.original
	name := cmp.Or(u.GetName(), "(no name)")
	if u.GetNamespace() != "" {
		name = u.GetNamespace() + "/" + name
	}
	return cmp.Or(u.GetKind(), "(no kind)") + " " + name
}

func (o *lintObject) add(path, message string, warning bool) {
	for _, p := range o.problems {
		if p.path == path && lintSame(p.message, message) {
			return
		}
	}
	o.problems = append(o.problems, lintProblem{file: o.doc.file, object: o.name(), path: path, message: message, warning: warning})
	if !warning {
		o.errors++
	}
}

func (o *lintObject) addFieldErrors(errs field.ErrorList) {
	for _, e := range errs {
		body := e.ErrorBody()
		if e.Type == field.ErrorTypeInvalid && (e.BadValue == nil || body == e.Type.String()+": "+e.Detail) {
			// A CEL rule's error carries no value: its message says it all.
			body = e.Detail
		}
		path := e.Field
		if path == "<nil>" {
			path = "" // the object as a whole
		}
		o.add(path, lintMessage(body), false)
	}
}

// lintTypeName is how a CEL rule's error names the value it judged: only by its type, which
// says nothing the message does not.
var lintTypeName = regexp.MustCompile(`^Invalid value: "(?:object|array|string|integer|number|boolean)": `)

// lintMessage is an apiserver error message without the type name a CEL rule puts in front of
// its own message, so offline and server errors read (and de-duplicate) alike.
func lintMessage(body string) string { return lintTypeName.ReplaceAllString(body, "") }

// lintSame reports whether two messages about one field say the same, one perhaps in the
// apiserver's words ("Invalid value: ...") and the other in lint's.
func lintSame(a, b string) bool {
	return strings.TrimPrefix(lintMessage(a), "Invalid value: ") == strings.TrimPrefix(lintMessage(b), "Invalid value: ")
}

// lintNewObject checks one object against its kind's schema, the way a create would: unknown
// fields are pruned (and reported, as with kubectl's strict field validation), defaults are
// applied, then metadata, schema, list-type and CEL validation run. Objects of other kinds are
// kept, unchecked, for the references.
func lintNewObject(ctx context.Context, kinds map[schema.GroupKind]*lintKind, d lintDoc, namespace string) *lintObject {
	u := &unstructured.Unstructured{Object: d.obj}
	o := &lintObject{doc: d, original: u}
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	switch {
	case u.GetAPIVersion() == "" || u.GetKind() == "":
		o.checked = true
		o.add("", "the object needs apiVersion and kind", false)
		return o
	case err != nil:
		o.checked = true
		o.add("apiVersion", err.Error(), false)
		return o
	}
	k, ours := kinds[schema.GroupKind{Group: gv.Group, Kind: u.GetKind()}]
	if ours && k.namespaced && u.GetNamespace() == "" {
		u.SetNamespace(namespace)
	}
	if !ours {
		if gv.Group == v1alpha1.GroupVersion.Group {
			o.checked = true
			o.add("kind", fmt.Sprintf("%s has no kind %s; it serves %s", gv.Group, u.GetKind(), lintKindNames(kinds)), false)
			return o
		}
		if u.GetNamespace() == "" {
			u.SetNamespace(namespace)
		}
		o.defaulted = u
		return o
	}
	o.checked = true
	if gv.Version != k.gvk.Version {
		o.add("apiVersion", fmt.Sprintf("Unsupported value: %q: supported values: %q", u.GetAPIVersion(), k.gvk.GroupVersion().String()), false)
		return o
	}
	o.kind = k

	obj := runtime.DeepCopyJSON(u.Object)
	if k.status {
		delete(obj, "status")
	}
	meta, _, metaUnknown, err := schemaobjectmeta.GetObjectMetaWithOptions(obj, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		o.add("metadata", err.Error(), false)
		return o
	}
	unknown := append(metaUnknown, structuralpruning.PruneWithOptions(obj, k.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
	for _, path := range unknown {
		o.add(path, "unknown field", false)
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, k.structural)
	structuraldefaulting.Default(obj, k.structural)
	o.defaulted = &unstructured.Unstructured{Object: obj}

	var errs field.ErrorList
	if meta == nil {
		errs = append(errs, field.Required(field.NewPath("metadata"), ""))
	} else {
		errs = append(errs, apimachineryvalidation.ValidateObjectMeta(meta, k.namespaced, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	}
	errs = append(errs, apiextensionsvalidation.ValidateCustomResource(nil, obj, k.validator)...)
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, obj, k.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, k.structural, obj)...)
	celSkipped := false
	if k.cel != nil {
		if lintBlocking(errs) {
			// As the apiserver does: CEL rules on values of the wrong type or shape would only
			// add noise.
			celSkipped = true
		} else {
			celErrs, _ := k.cel.Validate(ctx, nil, k.structural, obj, nil, celconfig.RuntimeCELCostBudget)
			errs = append(errs, celErrs...)
		}
	}
	o.addFieldErrors(errs)
	if celSkipped {
		// The apiserver's own words, but a note on what was not checked, not a problem itself.
		o.add("", "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation", true)
	}
	return o
}

// lintBlocking reports whether errs hold an error after which the apiserver skips CEL rules.
func lintBlocking(errs field.ErrorList) bool {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}

func lintKindNames(kinds map[schema.GroupKind]*lintKind) string {
	var names []string
	for gk := range kinds {
		names = append(names, gk.Kind)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// lintRef is a reference from one object to another, and how the referrer needs it.
type lintRef struct {
	path string
	gvk  schema.GroupVersionKind
	key  client.ObjectKey
	// secretKey, for a Secret, is a key it must hold; "" when any will do.
	secretKey string
	// why explains secretKey.
	why string
}

var (
	lintDeploymentGVK     = appsv1.SchemeGroupVersion.WithKind("Deployment")
	lintSecretGVK         = corev1.SchemeGroupVersion.WithKind("Secret")
	lintMetricTemplateGVK = v1alpha1.GroupVersion.WithKind("MetricTemplate")
	lintAlertProviderGVK  = v1alpha1.GroupVersion.WithKind("AlertProvider")
)

// lintRefsOf lists what an object refers to, read from its defaulted form; nothing when it does
// not decode, which its own errors already say.
func lintRefsOf(o *lintObject) []lintRef {
	if o.kind == nil || o.defaulted == nil {
		return nil
	}
	ns := o.defaulted.GetNamespace()
	var refs []lintRef
	switch o.kind.gvk.Kind {
	case "Canary":
		cn := &v1alpha1.Canary{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(o.defaulted.Object, cn) != nil {
			return nil
		}
		if cn.Spec.TargetRef.Name != "" {
			refs = append(refs, lintRef{path: "spec.targetRef", gvk: lintDeploymentGVK, key: client.ObjectKey{Namespace: ns, Name: cn.Spec.TargetRef.Name}})
		}
		for i, m := range cn.Spec.Analysis.Metrics {
			if m.TemplateRef != nil && m.TemplateRef.Name != "" {
				refs = append(refs, lintRef{path: fmt.Sprintf("spec.analysis.metrics[%d].templateRef", i), gvk: lintMetricTemplateGVK,
					key: client.ObjectKey{Namespace: cmp.Or(m.TemplateRef.Namespace, ns), Name: m.TemplateRef.Name}})
			}
		}
		for i, a := range cn.Spec.Analysis.Alerts {
			if a.ProviderRef.Name != "" {
				refs = append(refs, lintRef{path: fmt.Sprintf("spec.analysis.alerts[%d].providerRef", i), gvk: lintAlertProviderGVK,
					key: client.ObjectKey{Namespace: cmp.Or(a.ProviderRef.Namespace, ns), Name: a.ProviderRef.Name}})
			}
		}
		for i, w := range cn.Spec.Analysis.Webhooks {
			if w.SecretRef != nil && w.SecretRef.Name != "" {
				refs = append(refs, lintRef{path: fmt.Sprintf("spec.analysis.webhooks[%d].secretRef", i), gvk: lintSecretGVK,
					key: client.ObjectKey{Namespace: ns, Name: w.SecretRef.Name}, secretKey: cmp.Or(w.SecretRef.Key, "hmac-key"), why: "the HMAC key"})
			}
		}
	case "AlertProvider":
		ap := &v1alpha1.AlertProvider{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(o.defaulted.Object, ap) != nil {
			return nil
		}
		if ap.Spec.SecretRef != nil && ap.Spec.SecretRef.Name != "" {
			ref := lintRef{path: "spec.secretRef", gvk: lintSecretGVK, key: client.ObjectKey{Namespace: ns, Name: ap.Spec.SecretRef.Name}}
			if ap.Spec.Address == "" {
				ref.secretKey, ref.why = "address", "the webhook URL, as spec.address is not set"
			}
			refs = append(refs, ref)
		}
	case "MetricTemplate":
		mt := &v1alpha1.MetricTemplate{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(o.defaulted.Object, mt) != nil {
			return nil
		}
		if mt.Spec.Provider.SecretRef != nil && mt.Spec.Provider.SecretRef.Name != "" {
			refs = append(refs, lintRef{path: "spec.provider.secretRef", gvk: lintSecretGVK, key: client.ObjectKey{Namespace: ns, Name: mt.Spec.Provider.SecretRef.Name}})
		}
	}
	return refs
}

// lintCheckReferences checks every reference against the objects of the files, then, when c is
// not nil, against the cluster. Not finding one offline is a warning, since it may well be in
// the cluster already; not finding it in the cluster either is an error.
func lintCheckReferences(ctx context.Context, objs []*lintObject, c client.Client) {
	type key struct {
		gk  schema.GroupKind
		obj client.ObjectKey
	}
	inFiles := map[key]*lintObject{}
	for _, o := range objs {
		if o.defaulted == nil {
			continue
		}
		k := key{o.defaulted.GroupVersionKind().GroupKind(), client.ObjectKeyFromObject(o.defaulted)}
		if _, dup := inFiles[k]; dup && o.kind != nil {
			o.add("metadata.name", fmt.Sprintf("another %s of the files has the same name; the later one replaces the earlier", k.gk.Kind), true)
		}
		inFiles[k] = o
	}
	for _, o := range objs {
		for _, ref := range lintRefsOf(o) {
			what := fmt.Sprintf("%s %s", ref.gvk.Kind, ref.key)
			if target, ok := inFiles[key{ref.gvk.GroupKind(), ref.key}]; ok {
				if ref.secretKey != "" && !lintSecretHasKey(target.defaulted.Object, ref.secretKey) {
					o.add(ref.path, fmt.Sprintf("%s has no key %s (%s)", what, ref.secretKey, ref.why), false)
				}
				continue
			}
			if c == nil {
				o.add(ref.path, fmt.Sprintf("%s is not in the given files; it must exist in the cluster (check with --cluster)", what), true)
				continue
			}
			lintCheckInCluster(ctx, c, o, ref, what)
		}
	}
}

// lintCheckRules runs on each valid Canary the checks the controller makes before and during a
// rollout, with the rollout core's own functions: analysis.match's regular expressions compile
// (RE2), and every check's queries, built-in or from a MetricTemplate of the files (or, with
// --cluster, of the cluster), render with the Canary's templateVariables for both sides and parse
// as PromQL.
func lintCheckRules(ctx context.Context, objs []*lintObject, c client.Client) {
	templates := map[client.ObjectKey]*v1alpha1.MetricTemplate{}
	for _, o := range objs {
		if o.kind == nil || o.kind.gvk.Kind != "MetricTemplate" || o.errors > 0 {
			continue
		}
		mt := &v1alpha1.MetricTemplate{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(o.defaulted.Object, mt) == nil {
			templates[client.ObjectKeyFromObject(mt)] = mt
		}
	}
	for _, o := range objs {
		if o.kind == nil || o.kind.gvk.Kind != "Canary" || o.errors > 0 {
			continue
		}
		cn := &v1alpha1.Canary{}
		if runtime.DefaultUnstructuredConverter.FromUnstructured(o.defaulted.Object, cn) != nil {
			continue
		}
		if err := rollout.ValidateMatch(cn.Spec.Analysis.Match); err != nil {
			o.add("spec.analysis.match", err.Error(), false)
		}
		for i, m := range cn.Spec.Analysis.Metrics {
			var mt *v1alpha1.MetricTemplate
			if ref := m.TemplateRef; ref != nil {
				key := client.ObjectKey{Namespace: cmp.Or(ref.Namespace, cn.Namespace), Name: ref.Name}
				if mt = templates[key]; mt == nil && c != nil {
					fetched := &v1alpha1.MetricTemplate{}
					if c.Get(ctx, key, fetched) == nil {
						mt = fetched
					}
				}
				if mt == nil {
					continue // the reference check says where it is missing
				}
			}
			if err := rollout.ValidateQueries(cn, m, mt); err != nil {
				o.add(fmt.Sprintf("spec.analysis.metrics[%d]", i), fmt.Sprintf("check %s cannot run: %v", m.Name, err), false)
			}
		}
	}
}

// lintCheckInCluster looks one reference up in the cluster.
func lintCheckInCluster(ctx context.Context, c client.Client, o *lintObject, ref lintRef, what string) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ref.gvk)
	err := c.Get(ctx, ref.key, u)
	switch {
	case apierrors.IsNotFound(err):
		o.add(ref.path, fmt.Sprintf("%s is neither in the given files nor in the cluster", what), false)
	case apierrors.IsForbidden(err):
		o.add(ref.path, fmt.Sprintf("cannot check %s: %v", what, friendly(err, "", "")), true)
	case err != nil:
		o.add(ref.path, fmt.Sprintf("cannot check %s: %v", what, friendly(err, "", "")), true)
	case ref.secretKey != "" && !lintSecretHasKey(u.Object, ref.secretKey):
		o.add(ref.path, fmt.Sprintf("%s in the cluster has no key %s (%s)", what, ref.secretKey, ref.why), false)
	}
}

// lintSecretHasKey reports whether a Secret, as written or as read, holds key.
func lintSecretHasKey(secret map[string]any, key string) bool {
	for _, field := range []string{"data", "stringData"} {
		if m, ok := secret[field].(map[string]any); ok {
			if _, ok := m[key]; ok {
				return true
			}
		}
	}
	return false
}

// dryRun creates the object, as written, with a server-side dry run and strict field
// validation, or applies it when it exists already, and reports what the apiserver refuses
// (what the offline checks found already is not repeated).
func (o *lintObject) dryRun(ctx context.Context, c client.Client) {
	if o.kind == nil {
		return
	}
	obj := o.original.DeepCopy()
	err := c.Create(ctx, obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
	if apierrors.IsAlreadyExists(err) {
		obj = o.original.DeepCopy()
		err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.DryRunAll, client.FieldOwner(lintFieldManager), client.ForceOwnership)
	}
	if err == nil {
		return
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		o.add("", "the apiserver's dry run failed: "+friendly(err, "", "").Error(), false)
		return
	}
	st := status.Status()
	if _, fields, ok := strings.Cut(st.Message, lintStrictPrefix); ok {
		for _, part := range strings.Split(fields, ", ") {
			if m := lintUnknownField.FindStringSubmatch(part); m != nil {
				o.add(m[1], "unknown field", false)
			} else {
				o.add("", part, false)
			}
		}
		return
	}
	if st.Details == nil || len(st.Details.Causes) == 0 {
		o.add("", "the apiserver refused it: "+st.Message, false)
		return
	}
	for _, cause := range st.Details.Causes {
		o.add(cause.Field, lintMessage(cause.Message), false)
	}
}

// The apiserver's strict field validation reports unknown fields in one message, after this.
const lintStrictPrefix = "strict decoding error: "

var lintUnknownField = regexp.MustCompile(`^unknown field "([^"]+)"$`)

func lintPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// lintString is a top-level string field of an object.
func lintString(obj map[string]any, key string) string {
	s, _ := obj[key].(string)
	return s
}
