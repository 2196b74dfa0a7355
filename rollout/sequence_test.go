package rollout

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// The sequence tests walk the planner through whole rollouts of every strategy, one reconcile a
// second, in a small world that does what the plans ask a moment later, the way Deployments and a
// data plane do: a scaled Deployment has its pods (and loses them) a second later, a route
// accepts a routing a second after it is written, a promoted primary rolls its pods over three
// seconds. A new revision of the target changes only its config (the hardest case: the pods
// already running keep the old one, as they read it when they start). At every reconcile
// they check the invariants no rollout may break, and they write the walk to a golden file a
// reviewer can read (testdata/sequences; -update rewrites them).

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the sequence tests")

// seqWorld is what the plans act on.
type seqWorld struct {
	now time.Time
	// primary is the primary Deployment: its replicas never change, and a promotion rolls them.
	primaryRevision string
	primaryReplicas int32
	// rolling counts the seconds a promotion's rolling update still takes; terminating, the
	// seconds the old pods then take to go.
	rolling, terminating int
	// target is the user's Deployment: its revision, the replicas asked and those running, the
	// revision its running pods started on, and whether its controller has seen the last scale.
	targetRevision              string
	targetWanted, targetRunning int32
	podsRevision                string
	unobserved                  bool
	// route is what the route carries, accepted once pending is 0. A replica-ratio canary has no
	// route of its own: the Service spreads requests over both versions' running pods.
	route   Routing
	pending int
	ratio   bool
}

func newSeqWorld() *seqWorld {
	return &seqWorld{now: t0, primaryRevision: "rev1", primaryReplicas: 4, targetRevision: "rev1", route: Primary()}
}

func (w *seqWorld) snapshot(cn *v1alpha1.Canary) Snapshot {
	primary := Workload{Found: true, Revision: w.primaryRevision, Replicas: w.primaryReplicas, Ready: w.rolling == 0, Terminating: 0}
	if w.rolling == 0 && w.terminating > 0 {
		primary.Terminating = 2
	}
	if !primary.Ready {
		primary.Message = "the primary is rolling out"
	}
	target := Workload{Found: true, Revision: w.targetRevision, Replicas: w.targetWanted, Ready: w.targetRunning == w.targetWanted && !w.unobserved,
		Pods: w.targetRunning, Observed: !w.unobserved}
	route := State{Found: true, Routing: w.route, Accepted: w.pending == 0}
	if w.ratio {
		route = State{Found: true, Routing: Routing{Weights: ForCanary(Share(w.primaryReplicas, w.targetRunning))}, Accepted: target.Ready}
	}
	return Snapshot{Canary: cn, Target: target, Primary: primary, Route: route, Now: w.now}
}

// act does what the plan asks: the route is written (and accepted a second later), the target
// scaled (its pods come or go a second later), the primary promoted.
func (w *seqWorld) act(p Plan) {
	if p.Routing != w.route {
		w.route, w.pending = p.Routing, 1
	}
	if p.CanaryReplicas != nil && *p.CanaryReplicas != w.targetWanted {
		w.targetWanted, w.unobserved = *p.CanaryReplicas, true
	}
	if p.PromotePrimary {
		w.primaryRevision, w.rolling, w.terminating = p.Status.LastAppliedSpec, 3, 2
	}
}

// tick lets a second pass.
func (w *seqWorld) tick() {
	w.now = w.now.Add(time.Second)
	if w.pending > 0 {
		w.pending--
	}
	if w.targetRunning == 0 && w.targetWanted > 0 {
		// Pods started now read the target's config as it is now; those running keep theirs.
		w.podsRevision = w.targetRevision
	}
	w.targetRunning, w.unobserved = w.targetWanted, false
	switch {
	case w.rolling > 0:
		w.rolling--
	case w.terminating > 0:
		w.terminating--
	}
}

// seqScenario is one walk: what happens to the world, and when.
type seqScenario struct {
	name string
	// verdict is every check's verdict at a step, at second n of the walk.
	verdict func(step int32, n int) v1alpha1.Verdict
	// at changes the world at second n of the rollout.
	at func(n int, w *seqWorld)
	// killOnChange kills the controller at every reconcile whose plan moves the rollout (a new
	// phase, step or routing), after it recorded the plan and before it acted on it, once.
	killOnChange bool
	// want is the phase the walk ends in.
	want v1alpha1.CanaryPhase
}

var seqScenarios = []seqScenario{
	{name: "rollout", verdict: passAll, want: v1alpha1.PhaseSucceeded},
	{name: "rollback", verdict: failFrom(2), want: v1alpha1.PhaseFailed},
	{
		// rev3 replaces rev2 at second 10, mid-rollout; the walk ends with rev3 promoted.
		name: "superseded", verdict: passAll, want: v1alpha1.PhaseSucceeded,
		at: func(n int, w *seqWorld) {
			if n == 10 {
				w.targetRevision = "rev3"
			}
		},
	},
	{
		// rev2 arrives just after the target was scaled to none (at the end of the
		// initialisation, a promotion or a rollback), before its controller removed its pods:
		// they must be gone before the canary is scaled up again.
		name: "pods-left", verdict: passAll, want: v1alpha1.PhaseSucceeded,
		at: func(n int, w *seqWorld) {
			if n == 0 {
				w.targetRunning, w.podsRevision, w.unobserved = 4, "rev1", true
			}
		},
	},
	{
		// Prometheus cannot be reached from second 9 to second 40: past the grace (two check
		// intervals) the traffic goes back to the primary, and the step starts over once the
		// checks answer again.
		name: "outage", want: v1alpha1.PhaseSucceeded,
		verdict: func(_ int32, n int) v1alpha1.Verdict {
			if n >= 9 && n < 40 {
				return v1alpha1.VerdictError
			}
			return v1alpha1.VerdictPass
		},
	},
	{
		// Prometheus never comes back: the hold ends at the progress deadline (60s) with a
		// rollback for the outage, not a failed check.
		name: "outage-past-deadline", want: v1alpha1.PhaseFailed,
		verdict: func(_ int32, n int) v1alpha1.Verdict {
			if n >= 9 {
				return v1alpha1.VerdictError
			}
			return v1alpha1.VerdictPass
		},
	},
	{
		// The controller is killed whenever it has just recorded a move, before acting on it;
		// each time the next reconcile resumes from status.
		name: "restart", verdict: passAll, want: v1alpha1.PhaseSucceeded, killOnChange: true,
	},
}

func passAll(int32, int) v1alpha1.Verdict { return v1alpha1.VerdictPass }

func failFrom(step int32) func(int32, int) v1alpha1.Verdict {
	return func(s int32, _ int) v1alpha1.Verdict {
		if s >= step {
			return v1alpha1.VerdictFail
		}
		return v1alpha1.VerdictPass
	}
}

// seqStrategies are a Canary of every strategy, with a 5s interval and two steps or iterations.
var seqStrategies = []struct {
	name string
	mod  func(*v1alpha1.Canary)
}{
	{"canary", func(*v1alpha1.Canary) {}},
	{"canary-mirrored", func(c *v1alpha1.Canary) {
		c.Spec.Analysis.Mirror, c.Spec.Analysis.MirrorWeight = true, ptr.To[int32](50)
	}},
	{"canary-sticky", func(c *v1alpha1.Canary) {
		c.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "primary"}
	}},
	{"ab-testing", func(c *v1alpha1.Canary) {
		c.Spec.Analysis.StepWeights, c.Spec.Analysis.Iterations = nil, ptr.To[int32](2)
		c.Spec.Analysis.Match = []v1alpha1.HTTPMatch{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}}
	}},
	{"blue-green", func(c *v1alpha1.Canary) {
		c.Spec.Analysis.StepWeights, c.Spec.Analysis.Iterations = nil, ptr.To[int32](2)
	}},
	{"replica-ratio", func(c *v1alpha1.Canary) { c.Spec.Provider = v1alpha1.ProviderKubernetes }},
	{"canary-proportional", func(c *v1alpha1.Canary) {
		c.Spec.Analysis.CanaryReplicas = v1alpha1.CanaryReplicasProportional
		c.Spec.Analysis.StepWeights = []int32{5, 25, 50}
	}},
	{"canary-sticky-proportional", func(c *v1alpha1.Canary) {
		c.Spec.Analysis.CanaryReplicas = v1alpha1.CanaryReplicasProportional
		c.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary"}
	}},
}

func TestRolloutSequences(t *testing.T) {
	for _, strategy := range seqStrategies {
		for _, sc := range seqScenarios {
			t.Run(strategy.name+"/"+sc.name, func(t *testing.T) {
				cn := planCanary(strategy.mod, func(c *v1alpha1.Canary) {
					c.Spec.Analysis.Interval = "5s"
					c.Status = v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseInitialized, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1", LastTransitionTime: at(0)}
				})
				walk, end := walkSequence(t, cn, sc)
				assert.Equal(t, sc.want, end.Phase, "the walk ends %s:\n%s", sc.want, walk)
				golden := filepath.Join("testdata", "sequences", strategy.name+"-"+sc.name+".golden")
				if *updateGolden {
					require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
					require.NoError(t, os.WriteFile(golden, []byte(walk), 0o644))
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err, "go test ./rollout -run TestRolloutSequences -update writes it")
				assert.Equal(t, string(want), walk)
			})
		}
	}
}

// walkSequence releases rev2 and reconciles once a second until the rollout of the last revision
// ends, checking the invariants at every reconcile. It returns the walk, one line for every
// reconcile that changed something a user or the reader would notice, and the final status.
func walkSequence(t *testing.T, cn *v1alpha1.Canary, sc seqScenario) (string, v1alpha1.CanaryStatus) {
	t.Helper()
	w := newSeqWorld()
	w.targetRevision = "rev2"
	w.ratio = StrategyOf(cn) == StrategyReplicaRatio
	inv := &seqInvariants{t: t, stages: len(Stages(cn))}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (%s), %d stages: %s\n", StrategyOf(cn), sc.name, len(Stages(cn)), stagesText(cn))
	fmt.Fprintf(&b, "%-5s %-16s %-4s %-52s %-7s %s\n", "t", "phase", "step", "route", "canary", "reason")
	last, lastMove := "", ""
	for n := 0; n < 600; n++ {
		if sc.at != nil {
			sc.at(n, w)
		}
		snap := w.snapshot(cn)
		if ChecksDue(snap) {
			snap.Checks = []v1alpha1.Decision{{Metric: "m", Verdict: sc.verdict(cn.Status.Step, n), Message: "m."}}
		}
		p := ComputePlan(snap)
		inv.check(snap, p)
		// The canary's pods that are judged or get traffic all started on the revision rolled
		// out: a pod from before the rollout never saw its config.
		judged := len(snap.Checks) > 0 || p.Routing.Weights.Canary > 0 || p.Routing.Cohort || p.Routing.Mirror > 0
		if judged && w.targetRunning > 0 && Analysing(p.Status.Phase) {
			require.Equal(t, p.Status.LastAppliedSpec, w.podsRevision, "the canary's pods started on %s while %s is analysed, at %s (%s step %d)", w.podsRevision, p.Status.LastAppliedSpec, w.now.Sub(t0), p.Status.Phase, p.Status.Step)
		}
		move := fmt.Sprintf("%s %d %s", p.Status.Phase, p.Status.Step, p.Routing)
		killed := sc.killOnChange && move != lastMove && !strings.HasSuffix(last, killedNote)
		lastMove = move
		cn.Status = p.Status // recorded before acting, as the controller does
		SetConditions(&cn.Status, cn.Generation, p)
		line := fmt.Sprintf("%-16s %-4d %-52s %-7s %s", p.Status.Phase, p.Status.Step, p.Routing, replicasText(p.CanaryReplicas), p.Reason)
		if killed {
			line += killedNote
		}
		if line != last {
			fmt.Fprintf(&b, "%-5s %s\n", fmt.Sprintf("%ds", n), line)
			last = line
		}
		if !killed {
			w.act(p)
		}
		if (p.Status.Phase == v1alpha1.PhaseSucceeded || p.Status.Phase == v1alpha1.PhaseFailed) && p.Status.LastAppliedSpec == w.targetRevision {
			inv.finish(p.Status)
			return b.String(), p.Status
		}
		w.tick()
	}
	t.Fatalf("the rollout did not end in 600 seconds:\n%s", b.String())
	return "", v1alpha1.CanaryStatus{}
}

// killedNote marks a reconcile whose controller died after recording its plan.
const killedNote = " [killed before acting]"

// seqInvariants are what no rollout may break, checked at every reconcile.
type seqInvariants struct {
	t      *testing.T
	stages int
	// steps are the steps the route carried while analysing, in order, each once per run.
	steps    []int32
	revision string
}

func (i *seqInvariants) check(s Snapshot, p Plan) {
	t := i.t
	t.Helper()
	r, st := p.Routing, p.Status
	at := fmt.Sprintf("at %s (%s step %d, route %s)", s.Now.Sub(t0), st.Phase, st.Step, r)

	// The weights add up to 100.
	require.Equal(t, int32(100), r.Weights.Primary+r.Weights.Canary, "weights add up to 100 %s", at)

	// The route never points at a side with no ready pods: what the plan writes only sends
	// traffic (weighted, the cohort or mirrored) to the canary once its pods are up, and the
	// primary always has its pods, rolling or not.
	toCanary := r.Weights.Canary > 0 || r.Cohort || r.Mirror > 0
	if toCanary && r != s.Route.Routing && StrategyOf(s.Canary) != StrategyReplicaRatio {
		// (A replica ratio's traffic only ever reaches the canary's pods that are running.)
		require.True(t, s.Target.Ready && s.Target.Replicas > 0, "the route is sent to the canary while its pods are not ready %s", at)
	}
	if r.Weights.Primary > 0 {
		require.Positive(t, s.Primary.Replicas, "the route is sent to a primary without pods %s", at)
	}

	// The canary is never scaled below what its share needs at the primary's pod density, and
	// never given a share its pods are not up for; the primary is never scaled at all (its
	// replicas are the user's and the autoscaler's).
	if r.Weights.Canary > 0 {
		need := proportional(s.Primary.Replicas, r.Weights.Canary)
		if StrategyOf(s.Canary) == StrategyReplicaRatio {
			need = RatioReplicas(s.Primary.Replicas, r.Weights.Canary)
		}
		if p.CanaryReplicas != nil {
			require.GreaterOrEqual(t, *p.CanaryReplicas, need, "the canary at %d%% has %d replicas beside %d primaries %s", r.Weights.Canary, *p.CanaryReplicas, s.Primary.Replicas, at)
		}
		if r != s.Route.Routing && StrategyOf(s.Canary) != StrategyReplicaRatio {
			require.GreaterOrEqual(t, s.Target.Replicas, need, "the route gives the canary %d%% while it runs %d of the %d pods that needs %s", r.Weights.Canary, s.Target.Replicas, need, at)
		}
	}

	// No step is skipped or repeated: within one revision's rollout, the step grows by one at a
	// time, and a step once left is not come back to.
	if st.LastAppliedSpec != i.revision {
		i.revision, i.steps = st.LastAppliedSpec, nil
	}
	if Analysing(st.Phase) && st.Step > 0 {
		n := len(i.steps)
		switch {
		case n == 0:
			require.Equal(t, int32(1), st.Step, "the first step analysed is step 1 %s", at)
			i.steps = append(i.steps, st.Step)
		case i.steps[n-1] == st.Step:
		case i.steps[n-1]+1 == st.Step:
			i.steps = append(i.steps, st.Step)
		default:
			require.Failf(t, "a step was skipped or repeated", "step %d after steps %v %s", st.Step, i.steps, at)
		}
	}
}

// finish checks what the whole walk must show: a promotion went through every step.
func (i *seqInvariants) finish(st v1alpha1.CanaryStatus) {
	if st.Phase == v1alpha1.PhaseSucceeded {
		require.Len(i.t, i.steps, i.stages, "a promoted revision went through every step once: %v", i.steps)
	}
}

func replicasText(r *int32) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprint(*r)
}

func stagesText(cn *v1alpha1.Canary) string {
	var parts []string
	for _, s := range Stages(cn) {
		parts = append(parts, fmt.Sprintf("%+v", s))
	}
	return strings.Join(parts, " ")
}
