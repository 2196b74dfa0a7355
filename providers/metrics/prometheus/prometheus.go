package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/trafficctl/trafficctl/providers/metrics"
)

// Provider runs instant queries against one Prometheus server. It is safe for concurrent use.
type Provider struct {
	address string
	timeout time.Duration
	api     promv1.API
}

// New returns a Provider for the Prometheus server at address (for example
// http://prometheus.monitoring:9090). Every query is bounded by timeout, both on the client and
// as Prometheus' own evaluation timeout, so that a slow server cannot stall a reconcile.
func New(address string, timeout time.Duration) (*Provider, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("invalid prometheus address %q: %w", address, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid prometheus address %q: scheme must be http or https", address)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid prometheus address %q: no host", address)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("invalid prometheus query timeout %s: must be positive", timeout)
	}
	client, err := promapi.NewClient(promapi.Config{Address: address})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client for %q: %w", address, err)
	}
	return &Provider{address: address, timeout: timeout, api: promv1.NewAPI(client)}, nil
}

// Query evaluates query at the instant at (the server's current time when at is zero) and
// returns its single value. Warnings that Prometheus attaches to a successful answer are
// dropped: the value is still the answer.
func (p *Provider) Query(ctx context.Context, query string, at time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	value, _, _, err := p.api.Query(ctx, query, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		var apiErr *promv1.Error
		if errors.As(err, &apiErr) {
			return 0, fmt.Errorf("prometheus at %s rejected query %q: %w", p.address, query, err)
		}
		return 0, fmt.Errorf("query prometheus at %s: %w", p.address, err)
	}

	v, err := singleValue(value)
	if err != nil {
		return 0, fmt.Errorf("query %q: %w", query, err)
	}
	return v, nil
}

// singleValue reduces a query result to the one number an analysis can judge.
func singleValue(value model.Value) (float64, error) {
	var v model.SampleValue
	switch result := value.(type) {
	case *model.Scalar:
		v = result.Value
	case model.Vector:
		switch len(result) {
		case 0:
			return 0, fmt.Errorf("result is empty: %w", metrics.ErrNoData)
		case 1:
			v = result[0].Value
		default:
			return 0, fmt.Errorf("result has %d series, but the query must aggregate to one (use sum, avg or max)", len(result))
		}
	case nil:
		return 0, errors.New("prometheus returned no result")
	default:
		return 0, fmt.Errorf("result is a %s, but the query must return a scalar or a single-sample vector", value.Type())
	}

	f := float64(v)
	switch {
	case math.IsNaN(f):
		return 0, fmt.Errorf("value is NaN, as from a ratio over zero requests: %w", metrics.ErrNoData)
	case math.IsInf(f, 0):
		return 0, fmt.Errorf("value is %v, as from a division by zero: %w", f, metrics.ErrNoData)
	}
	return f, nil
}
