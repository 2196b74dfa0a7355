package controllers

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Shards split the Canaries of a cluster between controller Deployments by the label
// v1alpha1.LabelShard: a shard acts on the Canaries labelled with its name, and the default shard
// on every other Canary (unlabelled, or labelled for a shard that is not listed). Each shard
// elects its own leader, so two shards never act on the same Canary and each may run replicas.

// ShardSelector is the selector of the Canaries one controller acts on: those labelled for shard,
// or, for the default shard (shard ""), those not labelled for any of others. A selector given
// by hand (watchSelector, the --watch-label-selector flag) replaces it.
func ShardSelector(shard string, others []string, watchSelector string) (labels.Selector, error) {
	if watchSelector != "" {
		if shard != "" || len(others) > 0 {
			return nil, fmt.Errorf("--watch-label-selector replaces --shard and --other-shards; give one or the other")
		}
		sel, err := labels.Parse(watchSelector)
		if err != nil {
			return nil, fmt.Errorf("--watch-label-selector: %w", err)
		}
		return sel, nil
	}
	for _, name := range append([]string{shard}, others...) {
		if name == "" {
			continue
		}
		if errs := validation.IsValidLabelValue(name); len(errs) > 0 {
			return nil, fmt.Errorf("shard name %q is not a label value: %s", name, errs[0])
		}
		if name == v1alpha1.DefaultShard {
			return nil, fmt.Errorf("shard name %q is the default shard's; the default shard is the one without --shard", name)
		}
	}
	if shard != "" {
		if len(others) > 0 {
			return nil, fmt.Errorf("--other-shards is for the default shard; shard %s acts only on the Canaries labelled %s=%s", shard, v1alpha1.LabelShard, shard)
		}
		req, err := labels.NewRequirement(v1alpha1.LabelShard, selection.Equals, []string{shard})
		if err != nil {
			return nil, err
		}
		return labels.NewSelector().Add(*req), nil
	}
	if len(others) == 0 {
		return labels.Everything(), nil
	}
	others = slices.Clone(others)
	slices.Sort(others)
	req, err := labels.NewRequirement(v1alpha1.LabelShard, selection.NotIn, slices.Compact(others))
	if err != nil {
		return nil, err
	}
	return labels.NewSelector().Add(*req), nil
}

// LeaderElectionID is the Lease a shard's replicas elect their leader by.
func LeaderElectionID(shard string) string {
	if shard == "" {
		return "trafficctl.io"
	}
	return "trafficctl.io-shard-" + shard
}

// ShardCache makes opts cache, and so the controller act on, only the Canaries sel selects.
func ShardCache(opts *cache.Options, sel labels.Selector) {
	if sel == nil || sel.Empty() {
		return
	}
	if opts.ByObject == nil {
		opts.ByObject = map[client.Object]cache.ByObject{}
	}
	opts.ByObject[&v1alpha1.Canary{}] = cache.ByObject{Label: sel}
}
