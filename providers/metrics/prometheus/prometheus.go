package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/trafficctl/trafficctl/providers/metrics"
)

// Config says how to reach one Prometheus server. Credentials are only ever sent to the
// server; they never appear in an error.
type Config struct {
	// Address of the HTTP API, such as http://prometheus.monitoring:9090.
	Address string
	// Timeout bounds every query, both on the client and as Prometheus' own evaluation timeout.
	Timeout time.Duration
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken string
	// Username and Password, when set, are sent as basic auth.
	Username, Password string
	// CA is a PEM bundle of the authorities that may sign the server's certificate; the system
	// pool when empty.
	CA []byte
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// Headers are added to every request, such as X-Scope-OrgID.
	Headers map[string]string
}

// Provider runs queries against one Prometheus server. It is safe for concurrent use.
type Provider struct {
	address string
	timeout time.Duration
	api     promv1.API
}

// New returns a Provider for the server cfg describes, so that a slow server cannot stall a
// reconcile: every query is bounded by cfg.Timeout.
func New(cfg Config) (*Provider, error) {
	address := cfg.Address
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
	if u.User != nil {
		return nil, fmt.Errorf("invalid prometheus address %s: put credentials in a Secret, not in the address", u.Redacted())
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("invalid prometheus query timeout %s: must be positive", cfg.Timeout)
	}
	rt, err := roundTripper(cfg)
	if err != nil {
		return nil, err
	}
	client, err := promapi.NewClient(promapi.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client for %q: %w", address, err)
	}
	return &Provider{address: address, timeout: cfg.Timeout, api: promv1.NewAPI(client)}, nil
}

// roundTripper is the transport cfg asks for: its own TLS settings, then headers and
// credentials on every request.
func roundTripper(cfg Config) (http.RoundTripper, error) {
	transport := promapi.DefaultRoundTripper.(*http.Transport).Clone()
	if len(cfg.CA) > 0 || cfg.InsecureSkipVerify {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // the user asked for it, and is warned by an event
		if len(cfg.CA) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(cfg.CA) {
				return nil, errors.New("the certificate authority (ca.crt) holds no PEM certificate")
			}
			tlsConfig.RootCAs = pool
		}
		transport.TLSClientConfig = tlsConfig
	}
	return &authRoundTripper{next: transport, cfg: cfg}, nil
}

// authRoundTripper adds a Config's headers and credentials to every request.
type authRoundTripper struct {
	next http.RoundTripper
	cfg  Config
}

func (a *authRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range a.cfg.Headers {
		req.Header.Set(k, v)
	}
	switch {
	case a.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+a.cfg.BearerToken)
	case a.cfg.Username != "":
		req.SetBasicAuth(a.cfg.Username, a.cfg.Password)
	}
	return a.next.RoundTrip(req)
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
