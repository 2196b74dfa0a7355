// Package config holds what `kubectl apply -k config/` installs. The CRDs are embedded so that
// `trafficctl lint` validates manifests offline against exactly the schema and CEL rules the
// apiserver enforces, from the same files, without a cluster.
package config
