package router

import (
	"fmt"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// Extra is one rule a strategy puts before the split: the requests that meet Match go to one
// version only. Every router writes the same list, each in its own dialect.
type Extra struct {
	// Kind names the rule within a route: cohort-<i>, sticky-canary or sticky-primary.
	Kind string
	// Source is the part of the Canary its conditions come from, for messages.
	Source string
	// ToPrimary sends the requests to the primary; otherwise they go to the canary.
	ToPrimary bool
	// Match holds the conditions: an analysis.match entry, or the session cookie.
	Match v1alpha1.HTTPMatch
}

// Extras lists the rules r asks for, in order, with the Set-Cookie header values the split's
// canary and primary backends add ("" for none). The Canary's spec says how each rule looks; a
// rollout.Routing that asks for what the spec does not describe is a plain error, and a condition no data
// plane can match an InvalidRouteError.
func Extras(cn *v1alpha1.Canary, r rollout.Routing) (extras []Extra, canaryCookie, primaryCookie string, err error) {
	if r.Cohort {
		if len(cn.Spec.Analysis.Match) == 0 {
			return nil, "", "", fmt.Errorf("the routing asks for an A/B cohort, but Canary %s/%s has no analysis.match", cn.Namespace, cn.Name)
		}
		if err := rollout.ValidateMatch(cn.Spec.Analysis.Match); err != nil {
			return nil, "", "", &InvalidRouteError{Message: fmt.Sprintf("Canary %s/%s: %v", cn.Namespace, cn.Name, err)}
		}
		for i, m := range cn.Spec.Analysis.Match {
			extras = append(extras, Extra{Kind: fmt.Sprintf("cohort-%d", i), Source: fmt.Sprintf("analysis.match[%d]", i), Match: m})
		}
	}
	if r.Sticky == "" {
		return extras, "", "", nil
	}
	sa := cn.Spec.Analysis.SessionAffinity
	if sa == nil {
		return nil, "", "", fmt.Errorf("the routing asks for sticky sessions, but Canary %s/%s has no analysis.sessionAffinity", cn.Namespace, cn.Name)
	}
	cookie := func(name string) v1alpha1.HTTPMatch {
		return v1alpha1.HTTPMatch{Cookies: map[string]v1alpha1.StringMatch{name: {Exact: r.Sticky}}}
	}
	const source = "analysis.sessionAffinity"
	extras = append(extras, Extra{Kind: "sticky-canary", Source: source, Match: cookie(sa.CookieName)})
	canaryCookie = SetCookie(sa.CookieName, r.Sticky, sa.MaxAge)
	if sa.PrimaryCookieName != "" {
		extras = append(extras, Extra{Kind: "sticky-primary", Source: source, ToPrimary: true, Match: cookie(sa.PrimaryCookieName)})
		primaryCookie = SetCookie(sa.PrimaryCookieName, r.Sticky, sa.MaxAge)
	}
	return extras, canaryCookie, primaryCookie, nil
}
