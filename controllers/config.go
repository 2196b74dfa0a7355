package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Config isolation: the ConfigMaps and Secrets the target's pod template uses are the canary's;
// the primary runs on immutable copies of them as they were at its last promotion, named after
// their content (rollout.ConfigCopyName). A config change then starts a rollout in which only the
// canary's pods see it, a promotion gives the primary new copies (its template names them, so its
// pods roll), and a rollback leaves the primary's copies as they are.

const (
	// AnnotationShared on a ConfigMap or Secret keeps it shared: the primary uses it too, and it
	// is not copied. For config that must stay one for both versions.
	AnnotationShared = "trafficctl.io/shared"
	// LabelCanary on a copy names the Canary it was made for.
	LabelCanary = "trafficctl.io/canary"
	// LabelCopyOf on a copy names the ConfigMap or Secret it copies.
	LabelCopyOf = "trafficctl.io/copy-of"
	// LabelConfigHash on a copy is the hash of the data it holds.
	LabelConfigHash = "trafficctl.io/config-hash"
)

// CacheOptions are the manager's cache settings the controller needs: ConfigMaps and Secrets are
// cached whole only when trafficctl made them (the primary's copies), never the whole cluster's
// (configWatch holds the metadata of the others); no object keeps what trafficctl never reads
// (leanObject).
func CacheOptions() cache.Options {
	ours := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue})
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Label: ours},
			&corev1.Secret{}:    {Label: ours},
		},
		DefaultTransform: leanObject,
	}
}

// lastApplied is the annotation `kubectl apply` keeps its last applied manifest in: as large as
// the object's spec, and never read by trafficctl.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// leanObject drops from a cached object what trafficctl never reads: its managedFields and the
// copy of its manifest `kubectl apply` keeps in an annotation. Every write trafficctl makes from a
// cached object is a merge patch between two copies of it or an apply of its own fields, so what
// the cache leaves out is never written away.
func leanObject(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil
	}
	obj.SetManagedFields(nil)
	if a := obj.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
		obj.SetAnnotations(a)
	}
	return in, nil
}

// ClientOptions are the manager's client settings the controller needs: unstructured objects (a
// user's route, read with every field kept) come from the cache too.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{Unstructured: true}}
}

// configItem is one ConfigMap or Secret a pod template uses, as read.
type configItem struct {
	ref rollout.ConfigRef
	// obj is the ConfigMap or Secret; nil when it does not exist, or when its hash was known and
	// its data not read (withData reads it).
	obj client.Object
	// shared is true when its AnnotationShared says the primary uses it too.
	shared bool
	// hash is the hash of its data, missingHash when it does not exist.
	hash string
}

// readConfig reads the ConfigMaps and Secrets a pod template uses: through the metadata cache,
// their data only when it changed (see configWatch).
func (r *CanaryReconciler) readConfig(ctx context.Context, namespace string, spec *corev1.PodSpec) ([]configItem, error) {
	refs := rollout.ConfigRefs(spec)
	items := make([]configItem, 0, len(refs))
	for _, ref := range refs {
		it, err := r.readConfigItem(ctx, namespace, ref)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// configHash is the hash of what a ConfigMap or Secret holds.
func configHash(obj client.Object) (string, error) {
	var data any
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		data = []any{o.Data, o.BinaryData}
	case *corev1.Secret:
		data = []any{o.Data, o.Type}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", obj.GetName(), err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// revisionOf hashes what makes a revision: the pod template, and the data of every ConfigMap and
// Secret it mounts or reads (or a marker for one that does not exist: creating it is a change),
// so a changed ConfigMap starts a rollout like a new image does.
func revisionOf(d *appsv1.Deployment, items []configItem) (string, error) {
	h := sha256.New()
	tpl, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return "", fmt.Errorf("hashing pod template: %w", err)
	}
	h.Write(tpl)
	for _, it := range items {
		fmt.Fprintf(h, "\x00%s/%s=%s", it.ref.Kind, it.ref.Name, it.hash)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// missingConfig is a ConfigMap or Secret the target uses that does not exist: the rollout holds
// until it does.
type missingConfig struct{ refs []rollout.ConfigRef }

func (e missingConfig) Error() string {
	names := make([]string, len(e.refs))
	for i, ref := range e.refs {
		names[i] = ref.Kind + " " + ref.Name
	}
	verb := "does"
	if len(names) > 1 {
		verb = "do"
	}
	return fmt.Sprintf("%s, which the target's pod template uses, %s not exist; the rollout holds until it does", joinAnd(names), verb)
}

// missingOf lists the items that do not exist.
func missingOf(items []configItem) []rollout.ConfigRef {
	var missing []rollout.ConfigRef
	for _, it := range items {
		if it.hash == missingHash {
			missing = append(missing, it.ref)
		}
	}
	return missing
}

// ensureConfigCopies makes the primary's immutable copies of the target's config items (but the
// shared ones), and returns the names the primary's template calls them by. A copy is found by its
// name, which its content decides; one whose data is not what its name says (made again by hand)
// is replaced.
func (r *CanaryReconciler) ensureConfigCopies(ctx context.Context, cn *v1alpha1.Canary, items []configItem) (map[rollout.ConfigRef]string, error) {
	if missing := missingOf(items); len(missing) > 0 {
		return nil, missingConfig{missing}
	}
	copies := map[rollout.ConfigRef]string{}
	for _, it := range items {
		switch {
		case !it.shared:
			name, err := r.ensureConfigCopy(ctx, cn, it)
			if err != nil {
				return nil, err
			}
			copies[it.ref] = name
		}
	}
	return copies, nil
}

// ensureConfigCopy makes one copy, unless it is there with the right data.
func (r *CanaryReconciler) ensureConfigCopy(ctx context.Context, cn *v1alpha1.Canary, it configItem) (string, error) {
	name := rollout.ConfigCopyName(it.ref.Name, it.hash)
	meta := metav1.ObjectMeta{
		Name: name, Namespace: cn.Namespace,
		Labels: map[string]string{
			LabelManagedBy: ManagedByValue, LabelCanary: cn.Name, LabelCopyOf: it.ref.Name, LabelConfigHash: it.hash[:min(len(it.hash), 63)],
		},
		OwnerReferences: []metav1.OwnerReference{ownerRef(cn)},
	}
	switch live, err := r.liveMeta(ctx, it.ref.Kind, client.ObjectKey{Namespace: cn.Namespace, Name: name}); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", fmt.Errorf("reading %s %s/%s: %w", it.ref.Kind, cn.Namespace, name, err)
	default:
		if live.GetLabels()[LabelConfigHash] == meta.Labels[LabelConfigHash] {
			return name, nil
		}
		// Made again by hand with other data: the primary must not run it.
		if err := r.Client.Delete(ctx, live); client.IgnoreNotFound(err) != nil {
			return "", fmt.Errorf("replacing %s %s/%s: %w", it.ref.Kind, cn.Namespace, name, err)
		}
	}
	// The data is read only now, to make the copy.
	obj, err := r.withData(ctx, cn.Namespace, it)
	if err != nil {
		return "", err
	}
	var copied client.Object
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		copied = &corev1.ConfigMap{ObjectMeta: meta, Data: o.Data, BinaryData: o.BinaryData, Immutable: ptr.To(true)}
	case *corev1.Secret:
		copied = &corev1.Secret{ObjectMeta: meta, Data: o.Data, Type: o.Type, Immutable: ptr.To(true)}
	}
	if err := r.Client.Create(ctx, copied, client.FieldOwner(FieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("copying %s %s/%s for the primary: %w", it.ref.Kind, cn.Namespace, it.ref.Name, err)
	}
	return name, nil
}

// withData is it's ConfigMap or Secret with its data: as read, or read now, when it still holds
// the data it was hashed with (otherwise it changed since, and the rollout that follows the
// change decides on it).
func (r *CanaryReconciler) withData(ctx context.Context, namespace string, it configItem) (client.Object, error) {
	if it.obj != nil {
		return it.obj, nil
	}
	now, err := r.fetchConfigItem(ctx, namespace, it.ref)
	if err != nil {
		return nil, err
	}
	if now.hash != it.hash {
		return nil, fmt.Errorf("%s %s/%s changed while the primary's copy of it was made; the copy is made again from the new data", it.ref.Kind, namespace, it.ref.Name)
	}
	return now.obj, nil
}

// tendConfigCopies keeps the copies the primary's template names, and only those: one deleted by
// hand is made again from its original when the original still holds the same data (otherwise
// an event says so: the original changed, and the primary must not run the new data before a
// promotion); the copies of earlier promotions go once the primary has rolled every pod over.
func (r *CanaryReconciler) tendConfigCopies(ctx context.Context, cn *v1alpha1.Canary) error {
	primary := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); err != nil {
		return client.IgnoreNotFound(err)
	}
	copies, err := r.configCopies(ctx, cn)
	if err != nil {
		return err
	}
	used := rollout.ConfigRefs(&primary.Spec.Template.Spec)
	for _, ref := range used {
		if !isCopyName(ref.Name) {
			continue
		}
		_, err := r.liveMeta(ctx, ref.Kind, client.ObjectKey{Namespace: cn.Namespace, Name: ref.Name})
		if !apierrors.IsNotFound(err) {
			if err != nil {
				return err
			}
			continue
		}
		if err := r.restoreConfigCopy(ctx, cn, ref); err != nil {
			return err
		}
	}
	w := workloadOf(primary)
	if !w.Ready || w.Terminating > 0 {
		return nil // pods of the previous template may still use the previous copies
	}
	for _, c := range copies {
		if slices.Contains(used, rollout.ConfigRef{Kind: kindOf(c), Name: c.GetName()}) {
			continue
		}
		if err := r.Client.Delete(ctx, c); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting %s %s/%s, an earlier copy of the primary's: %w", kindOf(c), c.GetNamespace(), c.GetName(), err)
		}
	}
	return nil
}

// liveMeta reads the metadata of a ConfigMap or Secret from the metadata cache, the one whose
// events wake the Canaries: the cache of trafficctl's own copies may still hold one whose deletion
// the metadata cache has already told of.
func (r *CanaryReconciler) liveMeta(ctx context.Context, kind string, key client.ObjectKey) (*metav1.PartialObjectMetadata, error) {
	m := metadataOf(kind)
	var reader client.Reader = r.Client
	if r.config != nil {
		reader = r.config.cache
	}
	return m, reader.Get(ctx, key, m)
}

// configCopies are the copies made for the Canary's primary, cached.
func (r *CanaryReconciler) configCopies(ctx context.Context, cn *v1alpha1.Canary) ([]client.Object, error) {
	var copies []client.Object
	for _, list := range []client.ObjectList{&corev1.ConfigMapList{}, &corev1.SecretList{}} {
		if err := r.Client.List(ctx, list, client.InNamespace(cn.Namespace), client.MatchingFields{indexCopyOf: cn.Name}); err != nil {
			return nil, fmt.Errorf("listing the primary's config copies: %w", err)
		}
		switch l := list.(type) {
		case *corev1.ConfigMapList:
			for i := range l.Items {
				copies = append(copies, &l.Items[i])
			}
		case *corev1.SecretList:
			for i := range l.Items {
				copies = append(copies, &l.Items[i])
			}
		}
	}
	return copies, nil
}

// restoreConfigCopy makes again a copy the primary's template names that is gone, if its original
// still holds the data the copy was named after.
func (r *CanaryReconciler) restoreConfigCopy(ctx context.Context, cn *v1alpha1.Canary, ref rollout.ConfigRef) error {
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v"}}}
	original := originalName(ref.Name)
	switch ref.Kind {
	case rollout.KindConfigMap:
		spec.Volumes[0].ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: original}}
	default:
		spec.Volumes[0].Secret = &corev1.SecretVolumeSource{SecretName: original}
	}
	items, err := r.readConfig(ctx, cn.Namespace, spec)
	if err != nil {
		return err
	}
	if len(items) == 1 && items[0].hash != missingHash && rollout.ConfigCopyName(original, items[0].hash) == ref.Name {
		_, err := r.ensureConfigCopy(ctx, cn, items[0])
		return err
	}
	r.Recorder.Eventf(cn, nil, corev1.EventTypeWarning, rollout.ReasonConfigCopyMissing, "Config",
		"%s %s, the primary's copy of %s, was deleted and cannot be made again: %s no longer holds the data the primary was promoted with. The primary's pods that start again will not find it; roll out the current %s to give the primary new copies.",
		ref.Kind, ref.Name, original, original, original)
	return nil
}

// copyName matches the names rollout.ConfigCopyName gives: the original's, "-primary-", and ten
// hex digits of the content's hash.
var copyName = regexp.MustCompile(`^(.+)-primary-[0-9a-f]{10}$`)

// isCopyName reports whether name has the form rollout.ConfigCopyName gives.
func isCopyName(name string) bool { return copyName.MatchString(name) }

// originalName is the name of the ConfigMap or Secret a copy's name was made from.
func originalName(copy string) string {
	if m := copyName.FindStringSubmatch(copy); m != nil {
		return m[1]
	}
	return copy
}

func kindOf(obj client.Object) string {
	if _, ok := obj.(*corev1.Secret); ok {
		return rollout.KindSecret
	}
	return rollout.KindConfigMap
}

// joinAnd joins names as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	out := names[0]
	for _, n := range names[1 : len(names)-1] {
		out += ", " + n
	}
	return out + " and " + names[len(names)-1]
}
