package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// statusClientClosedRequest is what the metrics record for a request whose client left before
// the answer, after nginx's convention.
const statusClientClosedRequest = 499

// maxMirrorBody is the largest request body copied for a mirror; larger requests are not
// mirrored.
const maxMirrorBody = 8 << 20

// ServeHTTP routes one request: the winning match of a VirtualService or else of an
// HTTPRoute, its rule's filters, a weighted backend, a Ready pod of it, and the proxied
// response with an X-Backend header naming the Service.
func (d *DataPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, code: http.StatusOK}
	t := d.table.Load()
	if choice := t.istio.match(r, listenerPort(r)); choice != nil {
		d.serveIstio(rec, r, choice)
		return
	}
	c := t.match(r)
	if c == nil {
		http.Error(rec, "no route matches the request", http.StatusNotFound)
		d.metrics.routed(routeID{}, "", http.StatusNotFound)
		return
	}
	ru := c.rule
	via := routeID{kind: kindHTTPRoute, key: ru.route.key}
	ctx, cancel := withTimeout(r.Context(), ru.timeout)
	defer cancel()
	out := r.Clone(ctx)
	var f filtered
	applyFilters(out, ru.filters, &c.match, listenerPort(r), &f)
	if f.redirect != nil {
		rec.Header().Set("Location", f.redirect.location)
		rec.WriteHeader(f.redirect.code)
		d.metrics.routed(via, "", f.redirect.code)
		return
	}
	i := pick(ru.backends, d.rand)
	if i < 0 {
		http.Error(rec, "the matching rule has no backend with a weight above zero", http.StatusInternalServerError)
		d.metrics.routed(via, "", http.StatusInternalServerError)
		return
	}
	b := ru.backends[i]
	var backendFiltered filtered // a backend's filters may not redirect
	applyFilters(out, b.filters, &c.match, listenerPort(r), &backendFiltered)
	f.responseHeaders = append(f.responseHeaders, backendFiltered.responseHeaders...)
	var sampled []backendRef
	for _, m := range append(f.mirrors, backendFiltered.mirrors...) {
		if mirrored(m, d.rand) {
			sampled = append(sampled, newBackendRef(m.BackendRef, via.key.Namespace))
		}
	}
	d.startMirrors(out, sampled, via, ru.timeout)
	d.forward(rec, out, b, via, f.responseHeaders)
}

// withTimeout bounds ctx by timeout, unless it is 0.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return ctx, func() {}
}

// forward proxies out to a Ready pod of b, whose response, its headers changed by
// responseHeaders, is the answer; the request is counted as one routed through via.
func (d *DataPlane) forward(rec *recorder, out *http.Request, b backendRef, via routeID, responseHeaders []*gatewayv1.HTTPHeaderFilter) {
	start := time.Now()
	ep, err := d.endpoints.resolve(out.Context(), b)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, errBackendNotFound) {
			code = http.StatusInternalServerError
		}
		rec.Header().Set("X-Backend", b.String())
		http.Error(rec, err.Error(), code)
		d.metrics.upstream(b, endpoint{}, code, time.Since(start))
		d.metrics.routed(via, b.String(), code)
		return
	}
	call := &upstreamCall{target: &url.URL{Scheme: "http", Host: ep.addr}, backend: b, responseHeaders: responseHeaders}
	d.proxy.ServeHTTP(rec, out.WithContext(context.WithValue(out.Context(), callKey{}, call)))
	d.metrics.upstream(b, ep, rec.code, time.Since(start))
	d.metrics.routed(via, b.String(), rec.code)
}

// callKey carries an upstreamCall in a request's context, from ServeHTTP to the reverse proxy's
// hooks.
type callKey struct{}

// upstreamCall is where the reverse proxy sends one request and what it does to the response.
type upstreamCall struct {
	target          *url.URL
	backend         backendRef
	responseHeaders []*gatewayv1.HTTPHeaderFilter
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // never a proxy from the environment: test traffic stays on loopback
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
}

func (d *DataPlane) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: d.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			call := pr.In.Context().Value(callKey{}).(*upstreamCall)
			pr.SetURL(call.target)
			pr.Out.Host = pr.In.Host // a Gateway forwards the Host header as it came
			pr.SetXForwarded()
		},
		ModifyResponse: func(res *http.Response) error {
			call := res.Request.Context().Value(callKey{}).(*upstreamCall)
			for _, hf := range call.responseHeaders {
				modifyHeaders(res.Header, hf)
			}
			res.Header.Set("X-Backend", call.backend.String())
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			call := r.Context().Value(callKey{}).(*upstreamCall)
			code := http.StatusBadGateway
			switch {
			case errors.Is(r.Context().Err(), context.Canceled):
				// The client went away: not the backend's failure, so not a 5xx that would
				// count against it in a success rate.
				code = statusClientClosedRequest
			case errors.Is(err, context.DeadlineExceeded):
				code = http.StatusGatewayTimeout
			}
			d.log.V(1).Info("upstream request failed", "backend", call.backend.String(), "target", call.target.Host, "error", err.Error())
			w.Header().Set("X-Backend", call.backend.String())
			http.Error(w, http.StatusText(code), code)
		},
	}
}

// startMirrors sends a copy of out to each of the sampled mirrors, in the background; the
// client never waits for a mirror or sees its response. The body is read once and replayed to
// the backend and every mirror. timeout is the route's; 0 means the default.
func (d *DataPlane) startMirrors(out *http.Request, sampled []backendRef, via routeID, timeout time.Duration) {
	if len(sampled) == 0 {
		return
	}
	var body []byte
	if out.Body != nil && out.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(out.Body, maxMirrorBody+1))
		rest := out.Body
		out.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), rest))
		if err != nil || len(b) > maxMirrorBody {
			d.log.V(1).Info("request not mirrored: its body could not be copied", "kind", via.kind, "route", via.key)
			return
		}
		body = b
	}
	if timeout == 0 {
		timeout = defaultTimeout
	}
	for _, b := range sampled {
		req := out.Clone(context.Background())
		d.goBackground(func() { d.mirror(req, body, b, timeout) })
	}
}

// hopHeaders are the hop-by-hop headers a proxy does not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// mirror sends one mirrored request and discards the response; it is counted in the metrics
// like any other request to that backend, as Envoy and Istio count shadow traffic.
func (d *DataPlane) mirror(req *http.Request, body []byte, b backendRef, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(d.runCtx, timeout)
	defer cancel()
	start := time.Now()
	ep, err := d.endpoints.resolve(ctx, b)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, errBackendNotFound) {
			code = http.StatusInternalServerError
		}
		d.metrics.upstream(b, endpoint{}, code, time.Since(start))
		return
	}
	req = req.WithContext(ctx)
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "http", ep.addr
	req.Host = shadowHost(req.Host)
	req.Body, req.ContentLength = http.NoBody, 0
	if len(body) > 0 {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	code := http.StatusBadGateway
	resp, err := d.transport.RoundTrip(req)
	switch {
	case err == nil:
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code = resp.StatusCode
	case errors.Is(ctx.Err(), context.Canceled):
		return // the data plane is stopping
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	if err != nil {
		d.log.V(1).Info("mirrored request failed", "backend", b.String(), "error", err.Error())
	}
	d.metrics.upstream(b, ep, code, time.Since(start))
}

// listenerPort is the port a request came in on.
func listenerPort(r *http.Request) int {
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return addr.Port
	}
	return 0
}

// recorder remembers the status code a handler answered with, for the metrics.
type recorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection, for flushing.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
