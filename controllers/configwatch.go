package controllers

import (
	"context"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// The ConfigMaps and Secrets a target uses are watched, not polled: a cache of their metadata
// alone (no data, no managedFields) says when one changed, and its data is read and hashed only
// when its resourceVersion moved. The hashes are remembered by uid and resourceVersion, so an
// idle reconcile reads no ConfigMap or Secret from the apiserver, and the controller holds no
// Secret's data.

// indexConfigRefs indexes Deployments by the ConfigMaps and Secrets their pod template uses, as
// "<Kind>/<name>".
const indexConfigRefs = ".spec.template.configRefs"

// configWatch is the metadata cache of ConfigMaps and Secrets and the hashes of their data.
type configWatch struct {
	cache cache.Cache

	mu     sync.Mutex
	hashes map[types.UID]configHashed
}

type configHashed struct {
	resourceVersion string
	hash            string
}

// newConfigWatch makes the metadata cache, for namespaces (every namespace when empty).
func newConfigWatch(mgr ctrl.Manager, namespaces []string) (*configWatch, error) {
	opts := cache.Options{
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		HTTPClient:       mgr.GetHTTPClient(),
		DefaultTransform: leanObject,
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("making the cache of ConfigMap and Secret metadata: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the cache of ConfigMap and Secret metadata: %w", err)
	}
	return &configWatch{cache: c, hashes: map[types.UID]configHashed{}}, nil
}

// metadataOf is an empty PartialObjectMetadata of kind (ConfigMap or Secret).
func metadataOf(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}

// remembered is the hash of the data of the object meta describes, if it was hashed at that
// resourceVersion.
func (w *configWatch) remembered(meta *metav1.PartialObjectMetadata) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.hashes[meta.UID]
	if !ok || h.resourceVersion != meta.ResourceVersion {
		return "", false
	}
	return h.hash, true
}

func (w *configWatch) remember(obj client.Object, hash string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hashes[obj.GetUID()] = configHashed{resourceVersion: obj.GetResourceVersion(), hash: hash}
}

func (w *configWatch) forget(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.hashes, uid)
}

// sources are the watches that wake the Canaries whose target uses a ConfigMap or Secret that
// was created, changed or deleted, and the Canary that owns one (the primary's config copies:
// one deleted by hand is made again at once).
func (w *configWatch) sources(r *CanaryReconciler) []source.Source {
	var out []source.Source
	for _, kind := range []string{rollout.KindConfigMap, rollout.KindSecret} {
		wake := func(ctx context.Context, m *metav1.PartialObjectMetadata, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			for _, req := range r.canariesUsing(ctx, kind, m) {
				q.Add(req)
			}
			if owner := metav1.GetControllerOf(m); owner != nil && owner.Kind == "Canary" && owner.APIVersion == v1alpha1.GroupVersion.String() {
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: owner.Name}})
			}
		}
		h := handler.TypedFuncs[*metav1.PartialObjectMetadata, reconcile.Request]{
			CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				wake(ctx, e.Object, q)
			},
			UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if e.ObjectOld.ResourceVersion != e.ObjectNew.ResourceVersion {
					wake(ctx, e.ObjectNew, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				w.forget(e.Object.UID)
				wake(ctx, e.Object, q)
			},
		}
		out = append(out, source.Kind(w.cache, metadataOf(kind), handler.TypedEventHandler[*metav1.PartialObjectMetadata, reconcile.Request](h)))
	}
	return out
}

// canariesUsing are the Canaries whose target's pod template uses the ConfigMap or Secret m.
func (r *CanaryReconciler) canariesUsing(ctx context.Context, kind string, m *metav1.PartialObjectMetadata) []reconcile.Request {
	var targets appsv1.DeploymentList
	if err := r.Client.List(ctx, &targets, client.InNamespace(m.Namespace), client.MatchingFields{indexConfigRefs: kind + "/" + m.Name}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the deployments that use a "+kind, "name", m.Name)
		return nil
	}
	var reqs []reconcile.Request
	for i := range targets.Items {
		reqs = append(reqs, r.canariesBy(indexTargetName)(ctx, &targets.Items[i])...)
	}
	return reqs
}

// configRefKeys are the index values of a Deployment for indexConfigRefs.
func configRefKeys(o client.Object) []string {
	d := o.(*appsv1.Deployment)
	refs := rollout.ConfigRefs(&d.Spec.Template.Spec)
	keys := make([]string, len(refs))
	for i, ref := range refs {
		keys[i] = ref.Kind + "/" + ref.Name
	}
	return keys
}

// readConfigItem reads one ConfigMap or Secret a pod template uses: its metadata from the cache,
// its data from the apiserver only when it changed since it was last hashed.
func (r *CanaryReconciler) readConfigItem(ctx context.Context, namespace string, ref rollout.ConfigRef) (configItem, error) {
	key := client.ObjectKey{Namespace: namespace, Name: ref.Name}
	if r.config == nil {
		return r.fetchConfigItem(ctx, namespace, ref)
	}
	meta := metadataOf(ref.Kind)
	switch err := r.config.cache.Get(ctx, key, meta); {
	case apierrors.IsNotFound(err):
		return configItem{ref: ref, hash: missingHash}, nil
	case err != nil:
		return configItem{}, fmt.Errorf("reading %s %s used by the target: %w", ref.Kind, key, err)
	}
	if hash, ok := r.config.remembered(meta); ok {
		return configItem{ref: ref, shared: meta.Annotations[AnnotationShared] == "true", hash: hash}, nil
	}
	it, err := r.fetchConfigItem(ctx, namespace, ref)
	if err == nil && it.obj != nil {
		r.config.remember(it.obj, it.hash)
	}
	return it, err
}

// missingHash stands for the data of a ConfigMap or Secret that does not exist.
const missingHash = "<missing>"

// fetchConfigItem reads one ConfigMap or Secret whole, straight from the apiserver, and hashes
// its data.
func (r *CanaryReconciler) fetchConfigItem(ctx context.Context, namespace string, ref rollout.ConfigRef) (configItem, error) {
	var obj client.Object = &corev1.ConfigMap{}
	if ref.Kind == rollout.KindSecret {
		obj = &corev1.Secret{}
	}
	key := client.ObjectKey{Namespace: namespace, Name: ref.Name}
	switch err := r.APIReader.Get(ctx, key, obj); {
	case apierrors.IsNotFound(err):
		return configItem{ref: ref, hash: missingHash}, nil
	case err != nil:
		return configItem{}, fmt.Errorf("reading %s %s used by the target: %w", ref.Kind, key, err)
	}
	hash, err := configHash(obj)
	if err != nil {
		return configItem{}, err
	}
	return configItem{ref: ref, obj: obj, shared: obj.GetAnnotations()[AnnotationShared] == "true", hash: hash}, nil
}
