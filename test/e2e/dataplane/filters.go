package dataplane

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// filtered is what a rule's filters make of one request, beyond the changes they make to the
// outgoing request itself.
type filtered struct {
	// redirect, when set, is the response instead of proxying.
	redirect *redirect
	// responseHeaders change the backend's response headers, in order.
	responseHeaders []*gatewayv1.HTTPHeaderFilter
	// mirrors receive a copy of the request.
	mirrors []*gatewayv1.HTTPRequestMirrorFilter
}

type redirect struct {
	location string
	code     int
}

// applyFilters runs filters in order on the outgoing request out. m is the match that chose
// the rule, for ReplacePrefixMatch; listenerPort is the port the request came in on, for
// redirects. Filters this data plane does not implement (CORS, ExternalAuth, ExtensionRef) are
// skipped.
func applyFilters(out *http.Request, filters []gatewayv1.HTTPRouteFilter, m *matcher, listenerPort int, f *filtered) {
	for _, filter := range filters {
		switch filter.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			if filter.RequestHeaderModifier != nil {
				modifyRequestHeaders(out, filter.RequestHeaderModifier)
			}
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			if filter.ResponseHeaderModifier != nil {
				f.responseHeaders = append(f.responseHeaders, filter.ResponseHeaderModifier)
			}
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			if filter.RequestRedirect != nil && f.redirect == nil {
				f.redirect = &redirect{
					location: redirectLocation(out, filter.RequestRedirect, m, listenerPort),
					code:     redirectCode(filter.RequestRedirect),
				}
			}
		case gatewayv1.HTTPRouteFilterURLRewrite:
			if rw := filter.URLRewrite; rw != nil {
				if rw.Hostname != nil {
					out.Host = string(*rw.Hostname)
				}
				if rw.Path != nil {
					out.URL.Path, out.URL.RawPath = modifyPath(out.URL.Path, rw.Path, m), ""
				}
			}
		case gatewayv1.HTTPRouteFilterRequestMirror:
			if filter.RequestMirror != nil {
				f.mirrors = append(f.mirrors, filter.RequestMirror)
			}
		}
	}
}

// modifyRequestHeaders applies a RequestHeaderModifier; the Host header lives in out.Host.
func modifyRequestHeaders(out *http.Request, hf *gatewayv1.HTTPHeaderFilter) {
	for _, h := range hf.Set {
		if strings.EqualFold(string(h.Name), "Host") {
			out.Host = h.Value
		}
	}
	modifyHeaders(out.Header, hf)
}

// modifyHeaders applies a header filter: set replaces, add appends, remove deletes; names are
// case-insensitive.
func modifyHeaders(h http.Header, hf *gatewayv1.HTTPHeaderFilter) {
	for _, s := range hf.Set {
		if !strings.EqualFold(string(s.Name), "Host") {
			h.Set(string(s.Name), s.Value)
		}
	}
	for _, a := range hf.Add {
		h.Add(string(a.Name), a.Value)
	}
	for _, name := range hf.Remove {
		h.Del(name)
	}
}

// modifyPath rewrites a path: the whole of it, or the part the rule's PathPrefix match
// matched. ReplacePrefixMatch on any other match leaves the path alone.
func modifyPath(path string, mod *gatewayv1.HTTPPathModifier, m *matcher) string {
	switch mod.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if mod.ReplaceFullPath != nil {
			return *mod.ReplaceFullPath
		}
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if mod.ReplacePrefixMatch == nil || m == nil || m.pathType != gatewayv1.PathMatchPathPrefix {
			return path
		}
		prefix := strings.TrimSuffix(m.path, "/")
		if !strings.HasPrefix(path, prefix) {
			return path
		}
		// /prefix/one with /one makes /prefix/one/two /one/two; with / it makes /two.
		rewritten := strings.TrimSuffix(*mod.ReplacePrefixMatch, "/") + path[len(prefix):]
		if !strings.HasPrefix(rewritten, "/") {
			rewritten = "/" + rewritten
		}
		return rewritten
	}
	return path
}

// redirectLocation is the Location of a RequestRedirect: the request's own URL with what the
// filter sets replaced. The port follows Gateway API: the filter's, else the scheme's
// well-known one when the filter sets a scheme, else the listener's; never written when it is
// the scheme's default.
func redirectLocation(r *http.Request, rf *gatewayv1.HTTPRequestRedirectFilter, m *matcher, listenerPort int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	port := listenerPort
	if rf.Scheme != nil {
		scheme = *rf.Scheme
		port = map[string]int{"http": 80, "https": 443}[scheme]
	}
	if rf.Port != nil {
		port = int(*rf.Port)
	}
	host := requestHost(r)
	if rf.Hostname != nil {
		host = string(*rf.Hostname)
	}
	defaultPort := (scheme == "http" && port == 80) || (scheme == "https" && port == 443)
	if port != 0 && !defaultPort {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	path := r.URL.Path
	if rf.Path != nil {
		path = modifyPath(path, rf.Path, m)
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: r.URL.RawQuery}
	return u.String()
}

func redirectCode(rf *gatewayv1.HTTPRequestRedirectFilter) int {
	if rf.StatusCode != nil {
		return *rf.StatusCode
	}
	return http.StatusFound
}

// mirrored decides whether a request is mirrored: percent or fraction of them, all when
// neither is set. rnd is in [0, 1) and is called only when there is a choice to make.
func mirrored(mf *gatewayv1.HTTPRequestMirrorFilter, rnd func() float64) bool {
	num, den := int32(100), int32(100)
	switch {
	case mf.Percent != nil:
		num = *mf.Percent
	case mf.Fraction != nil:
		num = mf.Fraction.Numerator
		if mf.Fraction.Denominator != nil {
			den = *mf.Fraction.Denominator
		}
	}
	if num <= 0 || den <= 0 {
		return false
	}
	if num >= den {
		return true
	}
	return rnd()*float64(den) < float64(num)
}

// shadowHost is the Host a mirrored request carries, marked as Envoy and Istio mark it so the
// mirror can tell shadow traffic apart: podinfo.example.com:80 becomes
// podinfo.example.com-shadow:80.
func shadowHost(host string) string {
	if h, port, err := net.SplitHostPort(host); err == nil {
		return net.JoinHostPort(h+"-shadow", port)
	}
	return host + "-shadow"
}
