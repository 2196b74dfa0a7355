package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// AnnotationRevision on the primary Deployment names the revision trafficctl last copied onto it.
const AnnotationRevision = "trafficctl.io/revision"

func (r *CanaryReconciler) getTarget(ctx context.Context, cn *v1alpha1.Canary) (*appsv1.Deployment, error) {
	target := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name}, target); err != nil {
		return nil, err
	}
	return target, nil
}

// snapshot reads the world the planner decides on: the target's revision and readiness, the
// primary's, and the route's.
func (r *CanaryReconciler) snapshot(ctx context.Context, cn *v1alpha1.Canary, target *appsv1.Deployment, rt Router) (rollout.Snapshot, error) {
	s := rollout.Snapshot{Canary: cn, Now: r.Clock.Now(), Request: rollout.PendingRequest(cn)}

	rev, err := r.revision(ctx, target)
	if err != nil {
		return s, err
	}
	s.Target = workloadOf(target)
	s.Target.Revision = rev

	primary := &appsv1.Deployment{}
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: cn.PrimaryDeploymentName()}, primary); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return s, fmt.Errorf("reading primary deployment: %w", err)
	default:
		s.Primary = workloadOf(primary)
		s.Primary.Revision = primary.Annotations[AnnotationRevision]
	}

	s.Route, err = rt.Observe(ctx, cn)
	if err != nil {
		return s, fmt.Errorf("reading %s %s/%s: %w", cn.RouteKind(), cn.Namespace, cn.RouteName(), err)
	}
	return s, nil
}

// workloadOf sums up a Deployment: ready once the controller has seen its current spec and
// every desired replica runs the current template and is available.
func workloadOf(d *appsv1.Deployment) rollout.Workload {
	w := rollout.Workload{Found: true, Replicas: 1}
	if d.Spec.Replicas != nil {
		w.Replicas = *d.Spec.Replicas
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		w.Images = append(w.Images, c.Name+"="+c.Image)
	}
	st := d.Status
	if st.TerminatingReplicas != nil {
		w.Terminating = *st.TerminatingReplicas
	}
	switch {
	case st.ObservedGeneration < d.Generation:
		w.Message = fmt.Sprintf("Deployment %s has not yet observed generation %d", d.Name, d.Generation)
	case st.UpdatedReplicas < w.Replicas:
		w.Message = fmt.Sprintf("Deployment %s has %d of %d replicas on the current template", d.Name, st.UpdatedReplicas, w.Replicas)
	case st.Replicas > st.UpdatedReplicas:
		w.Message = fmt.Sprintf("Deployment %s still has %d replicas on an old template", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < w.Replicas:
		w.Message = fmt.Sprintf("Deployment %s has %d of %d replicas available", d.Name, st.AvailableReplicas, w.Replicas)
	default:
		w.Ready = true
	}
	return w
}

// revision hashes what makes a revision: the pod template, and the data of every ConfigMap and
// Secret it mounts or reads, so a changed ConfigMap starts a rollout like a new image does.
func (r *CanaryReconciler) revision(ctx context.Context, d *appsv1.Deployment) (string, error) {
	h := sha256.New()
	tpl, err := json.Marshal(d.Spec.Template)
	if err != nil {
		return "", fmt.Errorf("hashing pod template: %w", err)
	}
	h.Write(tpl)
	for _, ref := range configRefs(&d.Spec.Template.Spec) {
		fmt.Fprintf(h, "\x00%s/%s=", ref.kind, ref.name)
		data, err := r.configData(ctx, d.Namespace, ref)
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

type configRef struct{ kind, name string }

// configData is what of a ConfigMap or Secret makes a revision: its data, or a marker when it
// does not exist (the pods will not start without it; creating it is a change).
func (r *CanaryReconciler) configData(ctx context.Context, namespace string, ref configRef) ([]byte, error) {
	key := client.ObjectKey{Namespace: namespace, Name: ref.name}
	var obj client.Object
	var data func() any
	if ref.kind == "ConfigMap" {
		cm := &corev1.ConfigMap{}
		obj, data = cm, func() any { return []any{cm.Data, cm.BinaryData} }
	} else {
		sec := &corev1.Secret{}
		obj, data = sec, func() any { return sec.Data }
	}
	switch err := r.APIReader.Get(ctx, key, obj); {
	case apierrors.IsNotFound(err):
		return []byte("<missing>"), nil
	case err != nil:
		return nil, fmt.Errorf("reading %s %s used by the target: %w", ref.kind, key, err)
	}
	return json.Marshal(data())
}

// configRefs lists, sorted and once each, the ConfigMaps and Secrets a pod spec uses.
func configRefs(spec *corev1.PodSpec) []configRef {
	seen := map[configRef]bool{}
	add := func(kind, name string) {
		if name != "" {
			seen[configRef{kind, name}] = true
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			add("ConfigMap", v.ConfigMap.Name)
		}
		if v.Secret != nil {
			add("Secret", v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					add("ConfigMap", src.ConfigMap.Name)
				}
				if src.Secret != nil {
					add("Secret", src.Secret.Name)
				}
			}
		}
	}
	containers := append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				add("ConfigMap", ef.ConfigMapRef.Name)
			}
			if ef.SecretRef != nil {
				add("Secret", ef.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				add("ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name)
			}
			if e.ValueFrom.SecretKeyRef != nil {
				add("Secret", e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	refs := make([]configRef, 0, len(seen))
	for ref := range seen {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].kind != refs[j].kind {
			return refs[i].kind < refs[j].kind
		}
		return refs[i].name < refs[j].name
	})
	return refs
}
