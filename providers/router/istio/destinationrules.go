package istio

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8sjson "k8s.io/apimachinery/pkg/util/json"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/providers/router"
)

// applyDestinationRules writes a DestinationRule for each of the primary and canary Services,
// carrying service.trafficPolicy. The policy is sent as the user wrote it, so the apiserver checks
// it against the installed Istio schema, and fields this module's Istio types do not know reach
// Istio too. A policy the apiserver refuses is a router.InvalidRouteError that still wraps the
// apiserver's error.
func (r *Router) applyDestinationRules(ctx context.Context, cn *v1alpha1.Canary) error {
	drs, err := destinationRules(cn)
	if err != nil {
		return err
	}
	for _, dr := range drs {
		err := r.applyOwned(ctx, dr, &istionetv1.DestinationRule{})
		if cn.Spec.Service.TrafficPolicy != nil && rejected(err) {
			// Only the policy can be at fault, and only the user can fix it: retrying does not help.
			return fmt.Errorf("%w: %w", &router.InvalidRouteError{Message: fmt.Sprintf(
				"Istio's DestinationRule schema does not accept service.trafficPolicy of Canary %s/%s; correct it",
				cn.Namespace, cn.Name)}, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// destinationRules are the DestinationRules of the primary and canary Services, owned by the
// Canary, with service.trafficPolicy.
func destinationRules(cn *v1alpha1.Canary) ([]*unstructured.Unstructured, error) {
	policy, err := trafficPolicy(cn)
	if err != nil {
		return nil, err
	}
	var drs []*unstructured.Unstructured
	for _, host := range []string{cn.PrimaryServiceName(), cn.CanaryServiceName()} {
		spec := map[string]any{"host": host}
		if policy != nil {
			spec["trafficPolicy"] = policy
		}
		dr := ownedObject(cn, destinationRuleGVK, host)
		dr.Object["spec"] = spec
		drs = append(drs, dr)
	}
	return drs, nil
}

// rejected reports whether the apiserver refused an apply for its content: a value the schema
// rejects, or a value of the wrong type or a field the schema does not declare, which server-side
// apply reports as an internal error because it fails to build the typed object before validation
// runs.
func rejected(err error) bool {
	return apierrors.IsInvalid(err) ||
		(apierrors.IsInternalError(err) && strings.Contains(err.Error(), "failed to create typed patch object"))
}

// trafficPolicy decodes service.trafficPolicy into the form an unstructured apply carries; nil
// when it is unset.
func trafficPolicy(cn *v1alpha1.Canary) (map[string]any, error) {
	if cn.Spec.Service.TrafficPolicy == nil {
		return nil, nil
	}
	return decodeRaw(cn, "service.trafficPolicy", cn.Spec.Service.TrafficPolicy)
}

// decodeRaw decodes field of cn, an object kept as the user wrote it, into the form an
// unstructured apply carries.
func decodeRaw(cn *v1alpha1.Canary, field string, raw *runtime.RawExtension) (map[string]any, error) {
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("encode %s of Canary %s/%s: %w", field, cn.Namespace, cn.Name, err)
	}
	var v map[string]any
	// k8sjson keeps whole numbers as int64, the form unstructured objects hold them in.
	if err := k8sjson.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("decode %s of Canary %s/%s as an object: %w", field, cn.Namespace, cn.Name, err)
	}
	return v, nil
}
