// Package metrics holds what every metric provider shares: the errors that tell "no data"
// apart from "the provider failed".
package metrics

import "errors"

// ErrNoData is returned (wrapped) when a query succeeds but has no value to judge: an empty
// result, or NaN from a ratio over no requests.
var ErrNoData = errors.New("query returned no data")
