// Package router holds the vocabulary shared by every router implementation: the weights a
// rollout asks for, what a route reports back, and the errors a controller must tell apart.
package router

import (
	"errors"
	"fmt"
)

// Weights is a traffic split between the primary and the canary, in percent; they add up to 100.
type Weights struct {
	Primary int32 `json:"primary"`
	Canary  int32 `json:"canary"`
}

// ForCanary is the split that sends canary percent of the traffic to the canary.
func ForCanary(canary int32) Weights { return Weights{Primary: 100 - canary, Canary: canary} }

// String renders the split the way status messages and events show it.
func (w Weights) String() string {
	return fmt.Sprintf("primary %d%% / canary %d%%", w.Primary, w.Canary)
}

// State is what a route holds now, read back from the cluster.
type State struct {
	// Found is false when the route object does not exist yet.
	Found bool
	// Weights are the weights the route's apex rules carry.
	Weights Weights
	// Accepted is true once every parent of the route has accepted its current generation.
	Accepted bool
	// Message says what is still pending when Accepted is false.
	Message string
}

// InvalidRouteError reports a route that trafficctl cannot use as it stands, such as a
// user-owned route with no rule for the apex Service. Retrying does not help: the user must
// change the route or the Canary.
type InvalidRouteError struct {
	Message string
}

func (e *InvalidRouteError) Error() string { return e.Message }

// IsInvalidRoute reports whether err, or an error it wraps, is an InvalidRouteError.
func IsInvalidRoute(err error) bool {
	var target *InvalidRouteError
	return errors.As(err, &target)
}
