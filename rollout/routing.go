package rollout

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Weights is a traffic split between the primary and the canary, in percent; they add up to 100.
type Weights struct {
	Primary int32 `json:"primary"`
	Canary  int32 `json:"canary"`
}

// ForCanary is the split that sends canary percent of the traffic to the canary.
func ForCanary(canary int32) Weights { return Weights{Primary: 100 - canary, Canary: canary} }

// String renders the split the way status messages and events show it.
func (w Weights) String() string {
	return fmt.Sprintf("primary %d%% / canary %d%%", w.Primary, w.Canary)
}

// Routing is everything a rollout asks of a route at one moment: the weighted split of the
// requests no other rule takes, and the strategy's extra rules. The Canary's spec says how each
// extra rule looks (analysis.match, analysis.sessionAffinity, analysis.mirrorWeight); Routing
// says which of them are in force now. The zero Routing plus Weights{Primary: 100} is the
// resting state: everything on the primary.
type Routing struct {
	// Weights split the requests that no cohort or sticky rule takes.
	Weights Weights `json:"weights"`
	// Cohort sends every request matching one of the Canary's analysis.match entries to the
	// canary (an A/B experiment).
	Cohort bool `json:"cohort,omitempty"`
	// Mirror is the share, in percent, of the split's requests copied to the canary, whose
	// responses are discarded; 0 for none.
	Mirror int32 `json:"mirror,omitempty"`
	// Sticky, when not empty, is the value of the session-affinity cookies of this rollout: a
	// response from the canary sets <cookieName>=<Sticky> (and one from the primary
	// <primaryCookieName>=<Sticky> when that is set), and a request carrying such a cookie goes
	// to the version that set it. Each rollout has its own value, so a cookie from an earlier
	// rollout pins nobody.
	Sticky string `json:"sticky,omitempty"`
}

// Primary is the resting Routing: all traffic on the primary, no extra rules.
func Primary() Routing { return Routing{Weights: ForCanary(0)} }

// String renders the routing the way status messages and events show it.
func (r Routing) String() string {
	s := r.Weights.String()
	if r.Cohort {
		s += ", A/B cohort to the canary"
	}
	if r.Mirror > 0 {
		s += fmt.Sprintf(", %d%% mirrored to the canary", r.Mirror)
	}
	if r.Sticky != "" {
		s += ", sticky sessions"
	}
	return s
}

// State is what a route holds now, read back from the cluster.
type State struct {
	// Found is false when the route object does not exist yet.
	Found bool
	// Routing is what the route's rules carry, read from the rules themselves.
	Routing Routing
	// Accepted is true once every parent of the route has accepted its current generation.
	Accepted bool
	// Message says what is still pending when Accepted is false.
	Message string
}

// Drift is the event for a route found carrying observed (or gone, when it was not found) after it
// had been seen carrying want, which the plan still asks of it: something other than trafficctl
// changed it, and the write that follows puts it back.
func Drift(cn *v1alpha1.Canary, observed State, want Routing) Event {
	what := fmt.Sprintf("it carried %s instead of %s, and is written back", observed.Routing, want)
	if !observed.Found {
		what = fmt.Sprintf("it was deleted, and is made again carrying %s", want)
	}
	return Event{Type: corev1.EventTypeWarning, Reason: ReasonRouteDrift, Message: fmt.Sprintf(
		"%s %s/%s was changed outside trafficctl: %s. If a GitOps tool applies it, see docs/gitops.md.",
		cn.RouteKind(), cn.Namespace, cn.RouteName(), what)}
}
