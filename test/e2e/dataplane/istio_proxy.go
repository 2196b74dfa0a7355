package dataplane

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	istionet "istio.io/api/networking/v1alpha3"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// serveIstio answers a request that an entry of a VirtualService took: a redirect, a direct
// response, or the request, rewritten and its headers changed, proxied to a weighted choice of
// the entry's destinations while a copy goes to each mirror that samples it.
func (d *DataPlane) serveIstio(rec *recorder, r *http.Request, choice *istioChoice) {
	ru := choice.route
	via := routeID{kind: kindVirtualService, key: ru.vs.key}
	switch {
	case ru.redirect != nil:
		code := http.StatusMovedPermanently // Istio's default
		if ru.redirect.RedirectCode != 0 {
			code = int(ru.redirect.RedirectCode)
		}
		rec.Header().Set("Location", istioRedirectLocation(r, ru.redirect, choice.match, listenerPort(r)))
		rec.WriteHeader(code)
		d.metrics.routed(via, "", code)
		return
	case ru.direct != nil:
		code := int(ru.direct.Status)
		rec.WriteHeader(code)
		if body := ru.direct.Body; body != nil {
			_, _ = rec.Write(append([]byte(body.GetString_()), body.GetBytes()...))
		}
		d.metrics.routed(via, "", code)
		return
	}
	ctx, cancel := withTimeout(r.Context(), ru.timeout)
	defer cancel()
	out := r.Clone(ctx)
	rewriteIstio(out, ru, choice.match)
	if ru.requestHeaders != nil {
		modifyRequestHeaders(out, ru.requestHeaders)
	}
	i := pick(ru.backends, d.rand)
	if i < 0 {
		http.Error(rec, "the matching route has no destination with a weight above zero", http.StatusInternalServerError)
		d.metrics.routed(via, "", http.StatusInternalServerError)
		return
	}
	b := ru.backends[i]
	var destination filtered // a destination's header operations, as filters
	applyFilters(out, b.filters, nil, listenerPort(r), &destination)
	var responseHeaders []*gatewayv1.HTTPHeaderFilter
	if ru.responseHeaders != nil {
		responseHeaders = append(responseHeaders, ru.responseHeaders)
	}
	responseHeaders = append(responseHeaders, destination.responseHeaders...)
	var sampled []backendRef
	for _, m := range ru.mirrors {
		if sampledPercent(m.percent, d.rand) {
			sampled = append(sampled, m.backend)
		}
	}
	d.startMirrors(out, sampled, via, ru.timeout)
	d.forward(rec, out, b, via, responseHeaders)
}

// sampledPercent decides whether a request is one of percent (0 to 100) of them; rnd is in
// [0, 1) and is called only when there is a choice to make.
func sampledPercent(percent float64, rnd func() float64) bool {
	switch {
	case percent <= 0:
		return false
	case percent >= 100:
		return true
	}
	return rnd()*100 < percent
}

// rewriteIstio applies an entry's rewrite to the outgoing request. A uri replaces the prefix a
// uri prefix match matched, "/" for an entry without matches, and the whole path otherwise, as
// Envoy's prefix_rewrite does; a uriRegexRewrite replaces every match of its expression.
func rewriteIstio(out *http.Request, ru *istioRoute, m *istioMatch) {
	rw := ru.rewrite
	if rw == nil {
		return
	}
	if rw.Authority != "" {
		out.Host = rw.Authority
	}
	switch {
	case rw.Uri != "":
		out.URL.Path, out.URL.RawPath = replaceMatchedPrefix(out.URL.Path, m, rw.Uri), ""
	case ru.rewriteRE != nil:
		out.URL.Path = ru.rewriteRE.ReplaceAllString(out.URL.Path, envoySubstitution(rw.UriRegexRewrite.Rewrite))
		out.URL.RawPath = ""
	}
}

// replaceMatchedPrefix replaces what the uri condition of m matched in path with value.
func replaceMatchedPrefix(path string, m *istioMatch, value string) string {
	prefix := "/"
	if m != nil && m.uri != nil {
		if m.uri.kind != matchPrefix {
			return value
		}
		prefix = m.uri.value
	}
	if len(path) < len(prefix) {
		return value
	}
	return value + path[len(prefix):]
}

var envoyGroup = regexp.MustCompile(`\\(\d+)`)

// envoySubstitution turns an RE2 substitution as Envoy writes it, \1, into Go's, ${1}.
func envoySubstitution(s string) string {
	return envoyGroup.ReplaceAllString(strings.ReplaceAll(s, "$", "$$"), "$${$1}")
}

// istioRedirectLocation is the Location of an Istio redirect: the request's URL as the client
// sent it, with what the redirect sets replaced. The port is the redirect's, or derived as it
// says, or else the request's unless the scheme changes; never written when it is the scheme's
// default. A uri with a query replaces the request's query.
func istioRedirectLocation(r *http.Request, rd *istionet.HTTPRedirect, m *istioMatch, listenerPort int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	requestScheme := scheme
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	authority := r.Host
	if rd.Authority != "" {
		authority = rd.Authority
	}
	host, port := authority, ""
	if h, p, err := net.SplitHostPort(authority); err == nil {
		host, port = h, p
	}
	if scheme != requestScheme {
		port = ""
	}
	switch p := rd.RedirectPort.(type) {
	case *istionet.HTTPRedirect_Port:
		port = strconv.Itoa(int(p.Port))
	case *istionet.HTTPRedirect_DerivePort:
		port = ""
		if p.DerivePort == istionet.HTTPRedirect_FROM_REQUEST_PORT && listenerPort != 0 {
			port = strconv.Itoa(listenerPort)
		}
	}
	defaultPort := (scheme == "http" && port == "80") || (scheme == "https" && port == "443")
	if port != "" && !defaultPort {
		host = net.JoinHostPort(host, port)
	}
	path, query := r.URL.Path, r.URL.RawQuery
	switch {
	case rd.Uri != "":
		path = rd.Uri
		if p, q, ok := strings.Cut(rd.Uri, "?"); ok {
			path, query = p, q
		}
	case rd.PrefixRewrite != "":
		path = replaceMatchedPrefix(path, m, rd.PrefixRewrite)
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: query}
	return u.String()
}
