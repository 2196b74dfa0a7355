package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
	"github.com/trafficctl/trafficctl/rollout"
)

// The steering verbs (promote, abort, pause, resume, retry) write one manual request into the
// trafficctl.io/request annotation, the same one GitOps users write by hand, and wait for the
// controller to record what it did with it in status.manualActions. The controller is the only
// judge; the verbs refuse up front only what it would refuse anyway, so a user learns why
// without waiting for a round trip.

// steerDefaultTimeout is how long a verb waits for the controller to handle its request.
const steerDefaultTimeout = 30 * time.Second

// steerPollInterval is how often a verb reads the Canary while it waits: a request is handled
// within one reconcile, which the annotation's change triggers at once.
const steerPollInterval = 250 * time.Millisecond

// steerVerb is what tells one steering verb from another.
type steerVerb struct {
	action  v1alpha1.RequestActionType
	verb    string // "promote", as the refusal reads: "cannot promote podinfo"
	short   string
	long    string
	example string
}

func newPromoteCommand(f *Factory) *cobra.Command {
	return newSteerCommand(f, steerVerb{
		action: v1alpha1.ActionPromote,
		verb:   "promote",
		short:  "Promote a rollout now, skipping its remaining steps and approvals",
		long: `Promote the Canary's rollout without its remaining steps and approval webhooks: the canary is
promoted through the primary's own rolling update once it is ready.

Only a rollout that is Waiting, Progressing or WaitingPromotion can be promoted. The request is
written to the trafficctl.io/request annotation with the name the cluster knows you by, and the
command waits (--timeout) for the controller to record its outcome in status.manualActions.`,
		example: `  # Promote podinfo now
  trafficctl promote podinfo

  # Ask, and do not wait for the controller's answer
  trafficctl promote podinfo --no-wait`,
	})
}

func newAbortCommand(f *Factory) *cobra.Command {
	return newSteerCommand(f, steerVerb{
		action: v1alpha1.ActionAbort,
		verb:   "abort",
		short:  "Roll a rollout back now",
		long: `Abort the Canary's rollout: all traffic goes back to the primary at once and the canary is scaled
down; the rollout ends Failed with reason Aborted. ` + "`trafficctl retry`" + ` starts it again.

Only a rollout that is Waiting, Progressing or WaitingPromotion can be aborted.`,
		example: `  # Roll podinfo back
  trafficctl abort podinfo -n shop`,
	})
}

func newPauseCommand(f *Factory) *cobra.Command {
	return newSteerCommand(f, steerVerb{
		action: v1alpha1.ActionPause,
		verb:   "pause",
		short:  "Hold a Canary's traffic where it is",
		long: `Pause the Canary: traffic stays where it is, and no check, step, promotion or new rollout runs
until it is resumed. A new revision while paused still sends its traffic back to the primary.

A promotion under way (phase Promoting or Finalising) finishes by itself and cannot be paused.`,
		example: `  # Hold podinfo at its current weight
  trafficctl pause podinfo`,
	})
}

func newResumeCommand(f *Factory) *cobra.Command {
	return newSteerCommand(f, steerVerb{
		action: v1alpha1.ActionResume,
		verb:   "resume",
		short:  "Let a paused Canary go on",
		long: `Resume a paused Canary: the rollout goes on from its step, whose analysis window starts afresh so
that it never reaches back into the pause.`,
		example: `  # Let podinfo's rollout go on
  trafficctl resume podinfo`,
	})
}

func newRetryCommand(f *Factory) *cobra.Command {
	return newSteerCommand(f, steerVerb{
		action: v1alpha1.ActionRetry,
		verb:   "retry",
		short:  "Start a failed rollout again",
		long: `Retry the Canary's failed rollout: the same revision rolls out again from its first step, without a
change to the Deployment. Only a Failed rollout can be retried.`,
		example: `  # Roll the revision that failed out again
  trafficctl retry podinfo`,
	})
}

// SteerOptions are the options of the steering verbs.
type SteerOptions struct {
	// Action is the request the verb writes.
	Action v1alpha1.RequestActionType
	// Name of the Canary.
	Name string
	// NoWait returns once the request is written, without the controller's answer.
	NoWait bool
	// Timeout bounds the wait for the controller's answer.
	Timeout time.Duration

	// Clock stamps the request and its id; tests may fix it.
	Clock clock.PassiveClock
	// NewID makes a request id unique to this request; the controller acts on each id once.
	NewID func(now time.Time) string
	// PollInterval is how often the Canary is read while waiting.
	PollInterval time.Duration

	verb      string
	factory   *Factory
	namespace string
	client    client.Client
	genericiooptions.IOStreams
}

func newSteerCommand(f *Factory, v steerVerb) *cobra.Command {
	o := &SteerOptions{Action: v.action, verb: v.verb, Timeout: steerDefaultTimeout, IOStreams: f.Streams}
	cmd := &cobra.Command{
		Use:     v.verb + " NAME",
		Short:   v.short,
		Long:    v.long,
		Example: v.example,
		Args:    cobra.ExactArgs(1),
		RunE:    runOptions(f, o),
	}
	cmd.Flags().BoolVar(&o.NoWait, "no-wait", false, "return once the request is written, without waiting for the controller's answer")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long to wait for the controller to handle the request")
	return cmd
}

// Complete fills in what the flags leave out: the namespace, the client, the clock and the ids.
func (o *SteerOptions) Complete(f *Factory, args []string) error {
	if len(args) > 0 {
		o.Name = args[0]
	}
	o.factory = f
	o.IOStreams = f.Streams
	var err error
	if o.namespace, err = f.Namespace(); err != nil {
		return err
	}
	if o.client, err = f.Client(); err != nil {
		return err
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.NewID == nil {
		o.NewID = steerNewID
	}
	if o.PollInterval <= 0 {
		o.PollInterval = steerPollInterval
	}
	return nil
}

// Validate rejects options that cannot work.
func (o *SteerOptions) Validate() error {
	if o.Name == "" {
		return fmt.Errorf("%s needs the name of a Canary", o.verb)
	}
	if o.Timeout <= 0 && !o.NoWait {
		return fmt.Errorf("--timeout must be positive, such as 30s; use --no-wait not to wait")
	}
	return nil
}

// Run writes the request and, unless NoWait, waits for the controller's answer.
func (o *SteerOptions) Run(ctx context.Context) error {
	cn, err := o.factory.GetCanary(ctx, o.client, o.namespace, o.Name)
	if err != nil {
		return err
	}
	if reason := steerRefusal(o.Action, cn); reason != "" {
		return fmt.Errorf("cannot %s %s: %s", o.verb, o.Name, reason)
	}
	if pending := rollout.PendingRequest(cn); pending != nil {
		fmt.Fprintf(o.ErrOut, "warning: request %s (%s by %s) has not been handled yet; this request replaces it\n",
			pending.ID, cmp.Or(string(pending.Action), "unreadable"), cmp.Or(pending.User, "an unnamed user"))
	}

	now := o.Clock.Now()
	req := v1alpha1.ManualRequest{
		Action: o.Action,
		ID:     o.NewID(now),
		User:   o.user(ctx),
		Time:   &metav1.Time{Time: now.UTC().Truncate(time.Second)},
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	// A merge patch of the one annotation: the spec and every other annotation stay as they
	// are, whoever owns them (a GitOps tool, usually).
	patch := client.MergeFrom(cn.DeepCopy())
	if cn.Annotations == nil {
		cn.Annotations = map[string]string{}
	}
	cn.Annotations[v1alpha1.RequestAnnotation] = string(raw)
	if err := o.client.Patch(ctx, cn, patch); err != nil {
		return friendly(err, "canary", o.namespace+"/"+o.Name)
	}
	fmt.Fprintf(o.Out, "canary.trafficctl.io/%s %s requested by %s (request %s)\n", o.Name, o.verb, cmp.Or(req.User, "an unnamed user"), req.ID)
	if o.NoWait {
		return nil
	}

	action, err := o.waitForAnswer(ctx, req.ID)
	if err != nil {
		return err
	}
	if action.Outcome == v1alpha1.RequestRefused {
		return fmt.Errorf("the controller refused to %s %s: %s", o.verb, o.Name, action.Message)
	}
	fmt.Fprintf(o.Out, "canary.trafficctl.io/%s %s %s: %s\n", o.Name, o.verb, steerOutcomeWord(action.Outcome), action.Message)
	return nil
}

// waitForAnswer reads the Canary until the controller has handled request id, and returns what
// it recorded.
func (o *SteerOptions) waitForAnswer(ctx context.Context, id string) (*v1alpha1.ManualAction, error) {
	var answer *v1alpha1.ManualAction
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, o.PollInterval, o.Timeout, true, func(ctx context.Context) (bool, error) {
		cn, err := o.factory.GetCanary(ctx, o.client, o.namespace, o.Name)
		if err != nil {
			// A blip of the apiserver is not the controller's answer; a deleted Canary will never
			// get one.
			lastErr = err
			return false, nil
		}
		answer = steerAnswer(cn, id)
		return answer != nil, nil
	})
	if err == nil {
		return answer, nil
	}
	if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, ctx.Err()
	}
	msg := fmt.Sprintf("the controller did not handle request %s within %s; it stays in annotation %s and is handled when the controller runs (is it running and watching namespace %s?)",
		id, o.Timeout, v1alpha1.RequestAnnotation, o.namespace)
	if lastErr != nil {
		msg += "; last error: " + lastErr.Error()
	}
	return nil, errors.New(msg)
}

// user is the name the request is recorded under: the one the apiserver authenticates the
// caller as, or, when the cluster cannot tell, the kubeconfig's user or the login name.
func (o *SteerOptions) user(ctx context.Context) string {
	if u := o.factory.User(ctx); u != "" {
		return u
	}
	if u := steerKubeconfigUser(o.factory); u != "" {
		return u
	}
	return os.Getenv("USER")
}

// steerKubeconfigUser is the name of the kubeconfig user (AuthInfo) of the current context.
func steerKubeconfigUser(f *Factory) string {
	if f.Flags.AuthInfoName != nil && *f.Flags.AuthInfoName != "" {
		return *f.Flags.AuthInfoName
	}
	raw, err := f.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return ""
	}
	current := raw.CurrentContext
	if f.Flags.Context != nil && *f.Flags.Context != "" {
		current = *f.Flags.Context
	}
	if c, ok := raw.Contexts[current]; ok {
		return c.AuthInfo
	}
	return ""
}

// steerRefusal is why the controller would not act on action on cn now, as the end of a
// sentence ("cannot promote podinfo: ..."), or "" when it would: the rollout core's own rules
// (rollout.CheckRequest), so the verb and the controller never disagree. What the controller
// would merely ignore is refused too, since the user asked for a change that would not happen.
func steerRefusal(action v1alpha1.RequestActionType, cn *v1alpha1.Canary) string {
	if cn.Spec.Suspend {
		return "the Canary is suspended (spec.suspend), and the controller acts on no request until it is not"
	}
	// The target's revision is the controller's hash, not known here; a retry of a newer revision
	// is then applied here and ignored by the controller, which says so.
	if outcome, why := rollout.CheckRequest(action, &cn.Status, ""); outcome != v1alpha1.RequestApplied {
		return why
	}
	return ""
}

// steerAnswer is what the controller recorded for request id, or nil while it has not handled
// it. It looks the id up rather than taking the newest entry, so a request someone else writes
// right after this one does not hide its answer.
func steerAnswer(cn *v1alpha1.Canary, id string) *v1alpha1.ManualAction {
	for i := range cn.Status.ManualActions {
		if cn.Status.ManualActions[i].ID == id {
			return &cn.Status.ManualActions[i]
		}
	}
	return nil
}

// steerOutcomeWord is how a handled request reads after the verb: "promote applied".
func steerOutcomeWord(o v1alpha1.RequestOutcome) string {
	switch o {
	case v1alpha1.RequestApplied:
		return "applied"
	case v1alpha1.RequestIgnored:
		return "ignored"
	case v1alpha1.RequestRefused:
		return "refused"
	}
	return string(o)
}

// steerNewID is a request id that sorts by time and does not repeat: the UTC time to the
// millisecond and 32 random bits, such as 20261201T100000.123Z-3f2a9c1d.
func steerNewID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return now.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b)
}
