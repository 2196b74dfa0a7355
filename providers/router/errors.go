package router

import "errors"

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
