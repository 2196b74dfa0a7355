package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/metrics/prometheus"
)

// The keys read from a MetricTemplate's provider.secretRef.
const (
	secretKeyToken    = "token"
	secretKeyUsername = "username"
	secretKeyPassword = "password"
	secretKeyCA       = "ca.crt"
)

// providerConfig is how to reach a MetricTemplate's provider: its address, timeout, headers and
// TLS settings, and the credentials from its Secret, read uncached at every check so a rotated
// token is used at once. Errors name the Secret and the key, never a value.
func (r *CanaryReconciler) providerConfig(ctx context.Context, mt *v1alpha1.MetricTemplate) (prometheus.Config, error) {
	p := mt.Spec.Provider
	if p.Address != "" {
		if err := r.URLPolicy.CheckURL(p.Address); err != nil {
			return prometheus.Config{}, fmt.Errorf("MetricTemplate %s/%s has a provider address the controller does not call: %w", mt.Namespace, mt.Name, err)
		}
	}
	cfg := prometheus.Config{Address: p.Address, InsecureSkipVerify: p.InsecureSkipVerify}
	if p.Timeout != "" {
		// CRD validation guarantees it parses.
		if d, err := time.ParseDuration(p.Timeout); err == nil {
			cfg.Timeout = d
		}
	}
	if len(p.Headers) > 0 {
		cfg.Headers = make(map[string]string, len(p.Headers))
		for _, h := range p.Headers {
			cfg.Headers[h.Name] = h.Value
		}
	}
	if p.SecretRef == nil {
		return cfg, nil
	}
	key := client.ObjectKey{Namespace: mt.Namespace, Name: p.SecretRef.Name}
	where := fmt.Sprintf("Secret %s/%s (provider.secretRef of MetricTemplate %s/%s)", key.Namespace, key.Name, mt.Namespace, mt.Name)
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return cfg, fmt.Errorf("%s does not exist", where)
		}
		return cfg, fmt.Errorf("reading %s: %w", where, err)
	}
	token, hasToken := secret.Data[secretKeyToken]
	user, hasUser := secret.Data[secretKeyUsername]
	password, hasPassword := secret.Data[secretKeyPassword]
	switch {
	case hasToken && hasUser:
		return cfg, fmt.Errorf("%s has both key %s and key %s; keep one way of signing in", where, secretKeyToken, secretKeyUsername)
	case hasToken:
		cfg.BearerToken = string(token)
	case hasUser && !hasPassword:
		return cfg, fmt.Errorf("%s has key %s but no key %s", where, secretKeyUsername, secretKeyPassword)
	case hasUser:
		cfg.Username, cfg.Password = string(user), string(password)
	default:
		return cfg, fmt.Errorf("%s has neither key %s nor keys %s and %s", where, secretKeyToken, secretKeyUsername, secretKeyPassword)
	}
	if ca, ok := secret.Data[secretKeyCA]; ok {
		cfg.CA = ca
	}
	return cfg, nil
}
