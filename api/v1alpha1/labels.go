package v1alpha1

// LabelShard on a Canary names the controller shard that acts on it. A Canary without it, or with
// a shard no controller serves, belongs to the default shard.
const LabelShard = "trafficctl.io/shard"

// DefaultShard is how the default shard is called where a shard is named.
const DefaultShard = "default"
