// Package netguard says which addresses the controller may call on a tenant's behalf: the
// webhooks, alert providers and metric providers a Canary, an AlertProvider or a MetricTemplate
// names. By default it refuses link-local addresses (where clouds serve instance metadata and
// credentials) and the known metadata endpoints; a platform team can narrow it to an allow-list.
// A URL is checked when it is read (CheckURL), and every connection again when it is dialled
// (Control), so a name that resolves to a refused address is refused too.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Policy is which addresses may be called.
type Policy struct {
	// Deny are refused, whatever Allow says.
	Deny []netip.Prefix
	// Allow, when not empty, are the only addresses that may be called.
	Allow []netip.Prefix
	// DenyHosts are host names refused as written, such as a cloud's metadata name.
	DenyHosts []string
}

// DefaultDeny are the address ranges refused by default: link-local IPv4 and IPv6 (169.254.0.0/16
// holds the metadata endpoint of AWS, GCP and Azure), AWS's IPv6 metadata endpoint and Alibaba
// Cloud's.
var DefaultDeny = []string{"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"}

// DefaultDenyHosts are the metadata host names refused by default.
var DefaultDenyHosts = []string{"metadata.google.internal", "metadata.goog"}

// Default is the policy of a controller started without URL flags.
func Default() Policy {
	p, err := Parse(DefaultDeny, nil)
	if err != nil {
		panic(err) // the defaults are constants
	}
	p.DenyHosts = DefaultDenyHosts
	return p
}

// Parse builds a Policy from CIDRs, as the controller's flags give them.
func Parse(deny, allow []string) (Policy, error) {
	var p Policy
	for _, list := range []struct {
		in  []string
		out *[]netip.Prefix
	}{{deny, &p.Deny}, {allow, &p.Allow}} {
		for _, s := range list.in {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			prefix, err := netip.ParsePrefix(s)
			if err != nil {
				return Policy{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8: %w", s, err)
			}
			*list.out = append(*list.out, prefix.Masked())
		}
	}
	return p, nil
}

// CheckURL refuses a URL whose host the policy refuses: a refused name, or an address literal
// the policy refuses. A name is checked again, resolved, when it is dialled.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("it is not a URL")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if slices.Contains(p.DenyHosts, host) {
		return fmt.Errorf("%s is a cloud metadata endpoint, which the controller does not call", host)
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(addr)
	}
	return nil
}

// checkAddr refuses an address the policy refuses, saying why.
func (p Policy) checkAddr(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, prefix := range p.Deny {
		if prefix.Contains(addr) {
			what := "refused"
			if addr.IsLinkLocalUnicast() {
				what = "link-local, where clouds serve instance metadata,"
			}
			return fmt.Errorf("%s is %s and the controller does not call it (its URL policy denies %s)", addr, what, prefix)
		}
	}
	if len(p.Allow) > 0 && !slices.ContainsFunc(p.Allow, func(prefix netip.Prefix) bool { return prefix.Contains(addr) }) {
		return fmt.Errorf("%s is outside the addresses the controller may call (its URL policy allows only %s)", addr, prefixes(p.Allow))
	}
	return nil
}

// Control refuses a connection to an address the policy refuses; it is a net.Dialer's Control,
// which runs once the name is resolved, for every address tried.
func (p Policy) Control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	return p.checkAddr(addr)
}

// Dialer is a net.Dialer, with net/http's default timeouts, that refuses what the policy refuses.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
}

// Transport is a clone of net/http's default transport that dials through Dialer.
func (p Policy) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = p.Dialer().DialContext
	return t
}

func prefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}
