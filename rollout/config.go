package rollout

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The kinds of config a pod template uses.
const (
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
)

// ConfigRef names a ConfigMap or Secret a pod template uses.
type ConfigRef struct {
	Kind, Name string
}

// ConfigRefs lists, sorted and once each, the ConfigMaps and Secrets a pod spec uses: volumes
// (projected ones included), envFrom and env valueFrom, of init containers and containers.
func ConfigRefs(spec *corev1.PodSpec) []ConfigRef {
	seen := map[ConfigRef]bool{}
	visitConfigRefs(spec, func(kind string, name *string) {
		if *name != "" {
			seen[ConfigRef{kind, *name}] = true
		}
	})
	refs := make([]ConfigRef, 0, len(seen))
	for ref := range seen {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b ConfigRef) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return refs
}

// RenameConfigRefs points every reference of spec to a ConfigMap or Secret that names has an
// entry for at that entry: the primary's template at its own copies.
func RenameConfigRefs(spec *corev1.PodSpec, names map[ConfigRef]string) {
	visitConfigRefs(spec, func(kind string, name *string) {
		if to, ok := names[ConfigRef{kind, *name}]; ok {
			*name = to
		}
	})
}

// ConfigCopyName is the name of the primary's copy of a ConfigMap or Secret whose data hashes
// to hash: each content its own immutable copy, so the primary's template names the config it
// was promoted with, and a new one rolls its pods.
func ConfigCopyName(name, hash string) string {
	return name + "-primary-" + hash[:min(len(hash), 10)]
}

// visitConfigRefs calls visit with the kind and a pointer to the name of every ConfigMap and
// Secret reference of spec.
func visitConfigRefs(spec *corev1.PodSpec, visit func(kind string, name *string)) {
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.ConfigMap != nil {
			visit(KindConfigMap, &v.ConfigMap.Name)
		}
		if v.Secret != nil {
			visit(KindSecret, &v.Secret.SecretName)
		}
		if v.Projected != nil {
			for j := range v.Projected.Sources {
				src := &v.Projected.Sources[j]
				if src.ConfigMap != nil {
					visit(KindConfigMap, &src.ConfigMap.Name)
				}
				if src.Secret != nil {
					visit(KindSecret, &src.Secret.Name)
				}
			}
		}
	}
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range containers {
			c := &containers[i]
			for j := range c.EnvFrom {
				ef := &c.EnvFrom[j]
				if ef.ConfigMapRef != nil {
					visit(KindConfigMap, &ef.ConfigMapRef.Name)
				}
				if ef.SecretRef != nil {
					visit(KindSecret, &ef.SecretRef.Name)
				}
			}
			for j := range c.Env {
				e := &c.Env[j]
				if e.ValueFrom == nil {
					continue
				}
				if e.ValueFrom.ConfigMapKeyRef != nil {
					visit(KindConfigMap, &e.ValueFrom.ConfigMapKeyRef.Name)
				}
				if e.ValueFrom.SecretKeyRef != nil {
					visit(KindSecret, &e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
	}
}
