// Package providers groups the adapters to outside systems: routers that write traffic weights
// (providers/router/...), metric providers that answer analysis queries (providers/metrics/...).
// The interfaces they satisfy are declared by their callers in controllers/ and analysis/.
package providers
