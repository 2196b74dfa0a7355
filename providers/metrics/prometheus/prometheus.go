package prometheus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/trafficctl/trafficctl/analysis"
	"k8s.io/utils/lru"
)

// maxRangePoints is the most points Prometheus computes per series in a range query; it refuses
// a longer range outright, so QueryRange says so before asking.
const maxRangePoints = 11000

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

// hasCredentials reports whether requests carry a bearer token or basic auth, which decides
// how a 401 is explained.
func (c Config) hasCredentials() bool { return c.BearerToken != "" || c.Username != "" }

// Provider runs queries against one Prometheus server. It is safe for concurrent use.
type Provider struct {
	address        string
	timeout        time.Duration
	hasCredentials bool
	api            promv1.API
	// transport is the HTTP transport of its TLS settings; nil for the default one.
	transport *http.Transport
}

// New returns a Provider for the server cfg describes, with an HTTP transport of its own; a
// caller that makes one for every check shares transports through a Factory instead.
func New(cfg Config) (*Provider, error) { return newProvider(cfg, newTransport, false) }

// Factory makes Providers that share their HTTP transports by TLS settings. A controller makes a
// Provider for every check, so sharing keeps connections to a Prometheus alive from one check to
// the next instead of dialling anew and leaving idle connections behind each time. The cache is
// bounded: a transport for a CA that has not been used for a while (a rotated one, say) is
// dropped and its idle connections closed.
type Factory struct {
	transports *lru.Cache // transportKey -> *http.Transport
	// dial connects the transports; nil is net/http's default.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// maxTransports bounds a Factory's cache: a few Prometheus servers with their own CAs each, with
// room for rotations.
const maxTransports = 32

// NewFactory returns a Factory with an empty transport cache, whose transports connect through
// dial (a net.Dialer's DialContext that refuses addresses, say); nil dials as net/http does.
func NewFactory(dial func(ctx context.Context, network, address string) (net.Conn, error)) *Factory {
	return &Factory{dial: dial, transports: lru.NewWithEvictionFunc(maxTransports, func(_ lru.Key, v any) {
		v.(*http.Transport).CloseIdleConnections()
	})}
}

// New returns a Provider for the server cfg describes over the Factory's shared transports.
func (f *Factory) New(cfg Config) (*Provider, error) {
	return newProvider(cfg, func(ca []byte, insecure bool) (*http.Transport, error) {
		key := transportKey{string(ca), insecure}
		if t, ok := f.transports.Get(key); ok {
			return t.(*http.Transport), nil
		}
		t, err := newTransport(ca, insecure)
		if err != nil {
			return nil, err
		}
		if f.dial != nil {
			t.DialContext = f.dial
		}
		f.transports.Add(key, t)
		return t, nil
	}, f.dial != nil)
}

// newProvider returns a Provider for the server cfg describes, so that a slow server cannot stall
// a reconcile: every query is bounded by cfg.Timeout. No error it returns shows a credential, not
// even one mistakenly written into cfg.Address. transport makes (or finds) the HTTP transport for
// a TLS setting; it is asked for one even without TLS settings when always is set.
func newProvider(cfg Config, transport func(ca []byte, insecure bool) (*http.Transport, error), always bool) (*Provider, error) {
	address := cfg.Address
	u, err := url.Parse(address)
	if err != nil {
		// url.Parse quotes the whole address in its error, userinfo and all.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("invalid prometheus address %q: %w", redactAddress(address), err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("invalid prometheus address %s: put credentials in a Secret, not in the address", u.Redacted())
	}
	// Without a scheme, url.Parse reads "user:password@host" as scheme "user" and no userinfo.
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid prometheus address %q: scheme must be http or https", redactAddress(address))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid prometheus address %q: no host", redactAddress(address))
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("invalid prometheus query timeout %s: must be positive", cfg.Timeout)
	}
	if err := validateCredentials(cfg); err != nil {
		return nil, err
	}
	next := promapi.DefaultRoundTripper
	var tlsTransport *http.Transport
	if always || len(cfg.CA) > 0 || cfg.InsecureSkipVerify {
		t, err := transport(cfg.CA, cfg.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		next, tlsTransport = t, t
	}
	rt := &authRoundTripper{next: next, cfg: cfg}
	client, err := promapi.NewClient(promapi.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("create prometheus client for %q: %w", address, err)
	}
	return &Provider{
		address:        address,
		timeout:        cfg.Timeout,
		hasCredentials: cfg.hasCredentials(),
		api:            promv1.NewAPI(authClient{client}),
		transport:      tlsTransport,
	}, nil
}

// redactAddress hides whatever may be userinfo in an address that url.Parse cannot read, or
// reads without userinfo, so that an error about it can still show where it points.
func redactAddress(address string) string {
	at := strings.LastIndexByte(address, '@')
	if at < 0 {
		return address
	}
	scheme := ""
	if i := strings.Index(address, "://"); i >= 0 && i < at {
		scheme = address[:i+3]
	}
	return scheme + "xxxxx@" + address[at+1:]
}

// validateCredentials refuses values that net/http would refuse on every request, with an
// error that names the field but never shows its value.
func validateCredentials(cfg Config) error {
	if !validHeaderValue(cfg.BearerToken) {
		return errors.New("the bearer token holds a line break or another control character (a token file written with a trailing newline does this)")
	}
	for name, value := range cfg.Headers {
		if !validHeaderValue(value) {
			return fmt.Errorf("the value of prometheus header %q holds a line break or another control character", name)
		}
	}
	return nil
}

// validHeaderValue reports whether s may be sent as an HTTP header value: no control character
// other than a tab.
func validHeaderValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

type transportKey struct {
	ca       string
	insecure bool
}

// newTransport is an HTTP transport that trusts ca (the system's roots when empty), or skips
// verification when insecure.
func newTransport(ca []byte, insecure bool) (*http.Transport, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // the user asked for it, and is warned by an event
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("the certificate authority (ca.crt) holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	transport := promapi.DefaultRoundTripper.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return transport, nil
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

// authClient turns a 401 or 403 answer into an authError before client_golang sees it. Its
// own error would keep the response body, which an authenticating proxy may fill with the
// request's headers, and would only say "client error: 401". A 403 still reaches
// client_golang's fallback from POST to GET, since the response is passed along.
type authClient struct {
	promapi.Client
}

func (c authClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	resp, body, err := c.Client.Do(ctx, req)
	if err == nil && resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return resp, nil, &authError{status: resp.StatusCode}
	}
	return resp, body, err
}

// authError is a server's refusal of the request's credentials. It holds only the status.
type authError struct {
	status int
}

func (e *authError) Error() string {
	return fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
}

// Query evaluates query at the instant at (the server's current time when at is zero) and
// returns its single value. Warnings that Prometheus attaches to a successful answer are
// dropped: the value is still the answer.
func (p *Provider) Query(ctx context.Context, query string, at time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	value, _, _, err := p.api.Query(ctx, query, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		return 0, p.requestError(query, err)
	}

	v, err := singleValue(value)
	if err != nil {
		return 0, fmt.Errorf("query %q: %w", query, err)
	}
	return v, nil
}

// QueryRange evaluates query at every step from start to end and returns the values of the
// single series it yields, in time order, so that an analysis can judge a trend rather than
// one instant. Points that are NaN or infinite (a ratio over no requests) are left out; when
// none remain, or the query matches nothing, the error wraps analysis.ErrNoData.
func (p *Provider) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]float64, error) {
	if err := validateRange(start, end, step); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	r := promv1.Range{Start: start, End: end, Step: step}
	value, _, _, err := p.api.QueryRange(ctx, query, r, promv1.WithTimeout(p.timeout))
	if err != nil {
		return nil, p.requestError(query, err)
	}

	values, err := singleSeries(value)
	if err != nil {
		return nil, fmt.Errorf("range query %q: %w", query, err)
	}
	return values, nil
}

// validateRange refuses a range that Prometheus would refuse, or that has no points.
func validateRange(start, end time.Time, step time.Duration) error {
	switch {
	case start.IsZero() || end.IsZero():
		return errors.New("invalid range query: start and end must both be set")
	case end.Before(start):
		return fmt.Errorf("invalid range query: end %s is before start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	case step < time.Millisecond:
		return fmt.Errorf("invalid range query step %s: must be at least 1ms", step)
	case end.Sub(start)/step > maxRangePoints:
		return fmt.Errorf("invalid range query: %s at a step of %s is more than the %d points Prometheus computes per series; use a larger step",
			end.Sub(start), step, maxRangePoints)
	}
	return nil
}

// requestError explains why Prometheus gave no answer to query. It never shows a credential:
// a refusal of the credentials becomes a sentence naming the status.
func (p *Provider) requestError(query string, err error) error {
	var authErr *authError
	if errors.As(err, &authErr) {
		switch {
		case authErr.status == http.StatusForbidden:
			return fmt.Errorf("prometheus at %s refused the credentials (%w): they are not allowed to query", p.address, authErr)
		case p.hasCredentials:
			return fmt.Errorf("prometheus at %s refused the credentials (%w): check the bearer token, or the username and password", p.address, authErr)
		default:
			return fmt.Errorf("prometheus at %s requires credentials (%w), but none are configured", p.address, authErr)
		}
	}
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) {
		return fmt.Errorf("prometheus at %s rejected query %q: %w", p.address, query, err)
	}
	var unknownAuthority x509.UnknownAuthorityError
	if errors.As(err, &unknownAuthority) {
		return fmt.Errorf("query prometheus at %s: its certificate is not signed by a trusted authority; configure the CA that signed it: %w", p.address, err)
	}
	return fmt.Errorf("query prometheus at %s: %w", p.address, err)
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
			return 0, fmt.Errorf("result is empty: %w", analysis.ErrNoData)
		case 1:
			if result[0].Histogram != nil {
				return 0, errors.New("result is a native histogram, but the query must return a number (use histogram_quantile, histogram_count or histogram_sum)")
			}
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
		return 0, fmt.Errorf("value is NaN, as from a ratio over zero requests: %w", analysis.ErrNoData)
	case math.IsInf(f, 0):
		return 0, fmt.Errorf("value is %v, as from a division by zero: %w", f, analysis.ErrNoData)
	}
	return f, nil
}

// singleSeries reduces a range query result to the numbers of its one series, leaving out the
// points that have no value to judge.
func singleSeries(value model.Value) ([]float64, error) {
	var stream *model.SampleStream
	switch result := value.(type) {
	case model.Matrix:
		switch len(result) {
		case 0:
			return nil, fmt.Errorf("result is empty: %w", analysis.ErrNoData)
		case 1:
			stream = result[0]
		default:
			return nil, fmt.Errorf("result has %d series, but the query must aggregate to one (use sum, avg or max)", len(result))
		}
	case nil:
		return nil, errors.New("prometheus returned no result")
	default:
		return nil, fmt.Errorf("result is a %s, but a range query must return a matrix", value.Type())
	}
	if len(stream.Values) == 0 && len(stream.Histograms) > 0 {
		return nil, errors.New("result is a native histogram, but the query must return numbers (use histogram_quantile, histogram_count or histogram_sum)")
	}

	values := make([]float64, 0, len(stream.Values))
	for _, point := range stream.Values {
		f := float64(point.Value)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		values = append(values, f)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("all %d values are NaN or infinite, as from a ratio over zero requests: %w", len(stream.Values), analysis.ErrNoData)
	}
	return values, nil
}
