package dataplane

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	istionet "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Builders for VirtualServices in tests, like those for HTTPRoutes.

type vsMod func(*istionetv1.VirtualService)

func newVirtualService(namespace, name string, mods ...vsMod) *istionetv1.VirtualService {
	vs := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1}}
	for _, m := range mods {
		m(vs)
	}
	return vs
}

// withGateways names gateways in spec.gateways: "<namespace>/<name>", or "<name>" in the
// VirtualService's namespace.
func withGateways(names ...string) vsMod {
	return func(vs *istionetv1.VirtualService) { vs.Spec.Gateways = append(vs.Spec.Gateways, names...) }
}

func withHosts(hosts ...string) vsMod {
	return func(vs *istionetv1.VirtualService) { vs.Spec.Hosts = append(vs.Spec.Hosts, hosts...) }
}

func withHTTP(routes ...*istionet.HTTPRoute) vsMod {
	return func(vs *istionetv1.VirtualService) { vs.Spec.Http = append(vs.Spec.Http, routes...) }
}

func vsCreatedAt(t time.Time) vsMod {
	return func(vs *istionetv1.VirtualService) { vs.CreationTimestamp = metav1.NewTime(t) }
}

// httpTo is an entry of spec.http sending its matches, ORed, to the destinations; no matches
// means every request.
func httpTo(dests []*istionet.HTTPRouteDestination, matches ...*istionet.HTTPMatchRequest) *istionet.HTTPRoute {
	return &istionet.HTTPRoute{Match: matches, Route: dests}
}

func dests(ds ...*istionet.HTTPRouteDestination) []*istionet.HTTPRouteDestination { return ds }

// dest is a weighted destination; weight 0 leaves the weight out.
func dest(host string, port uint32, weight int32) *istionet.HTTPRouteDestination {
	return &istionet.HTTPRouteDestination{Destination: destination(host, port), Weight: weight}
}

func destination(host string, port uint32) *istionet.Destination {
	d := &istionet.Destination{Host: host}
	if port != 0 {
		d.Port = &istionet.PortSelector{Number: port}
	}
	return d
}

func seconds(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func exact(v string) *istionet.StringMatch {
	return &istionet.StringMatch{MatchType: &istionet.StringMatch_Exact{Exact: v}}
}

func prefix(v string) *istionet.StringMatch {
	return &istionet.StringMatch{MatchType: &istionet.StringMatch_Prefix{Prefix: v}}
}

func regex(v string) *istionet.StringMatch {
	return &istionet.StringMatch{MatchType: &istionet.StringMatch_Regex{Regex: v}}
}

type vsMatchMod func(*istionet.HTTPMatchRequest)

func vsMatch(mods ...vsMatchMod) *istionet.HTTPMatchRequest {
	m := &istionet.HTTPMatchRequest{}
	for _, mod := range mods {
		mod(m)
	}
	return m
}

func onURI(sm *istionet.StringMatch) vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) { m.Uri = sm }
}

func onMethod(sm *istionet.StringMatch) vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) { m.Method = sm }
}

func onHeader(name string, sm *istionet.StringMatch) vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) {
		if m.Headers == nil {
			m.Headers = map[string]*istionet.StringMatch{}
		}
		m.Headers[name] = sm
	}
}

func withoutHeader(name string, sm *istionet.StringMatch) vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) {
		if m.WithoutHeaders == nil {
			m.WithoutHeaders = map[string]*istionet.StringMatch{}
		}
		m.WithoutHeaders[name] = sm
	}
}

func onQuery(name string, sm *istionet.StringMatch) vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) {
		if m.QueryParams == nil {
			m.QueryParams = map[string]*istionet.StringMatch{}
		}
		m.QueryParams[name] = sm
	}
}

func onGateways(names ...string) vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) { m.Gateways = names }
}

func ignoringURICase() vsMatchMod {
	return func(m *istionet.HTTPMatchRequest) { m.IgnoreUriCase = true }
}
