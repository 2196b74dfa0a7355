package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Payload is the JSON body of every webhook call (FormatJSON) and the data of the CloudEvent
// (FormatCloudEvents). Its field names follow Flagger's, so that receivers written for Flagger
// read it unchanged.
type Payload struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Type is the hook type, e.g. "confirm-rollout"; it also names the CloudEvent type.
	Type  string `json:"type"`
	Phase string `json:"phase"`
	// Revision is the canary's revision hash, so that a receiver can tell rollouts apart.
	Revision string `json:"revision"`
	// Images maps container names to the canary's images, which is what a receiver usually
	// wants to check or announce.
	Images        map[string]string `json:"images,omitempty"`
	CanaryWeight  int32             `json:"canaryWeight"`
	PrimaryWeight int32             `json:"primaryWeight"`
	Step          int32             `json:"step"`
	Steps         int32             `json:"steps"`
	Iteration     int32             `json:"iteration,omitempty"`
	// FailedCheck is set on failure hooks (rollback) to say which check failed, so that a
	// receiver can say why without reading the Canary's status.
	FailedCheck *FailedCheck `json:"failedCheck,omitempty"`
	// Event is set for type "event" to say what happened.
	Event *Event `json:"event,omitempty"`
	// Metadata is the webhook's own metadata from the Canary, sent as Flagger sends it, so
	// that one receiver can serve several webhooks told apart by it.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Time is when the hook fired; zero means Caller.Now at the time the body is built. It is
	// sent in UTC.
	Time time.Time `json:"time"`
}

// FailedCheck names the check that failed and by how much, in the words the analysis used.
type FailedCheck struct {
	Metric  string `json:"metric"`
	Value   string `json:"value"`
	Bound   string `json:"bound"`
	Message string `json:"message"`
}

// Event is what happened, for the "event" hook type, so that a receiver can forward rollout
// events (to chat, a pager) without watching Kubernetes events itself.
type Event struct {
	Reason   string `json:"reason"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// Format chooses how the body is encoded: plain JSON for receivers written for Flagger,
// CloudEvents for event routers (Knative Eventing, Argo Events) that take it without glue.
type Format string

const (
	// FormatJSON sends the Payload as JSON; it is the default.
	FormatJSON Format = "json"
	// FormatCloudEvents sends a CloudEvents 1.0 structured-mode event whose data is the Payload.
	FormatCloudEvents Format = "cloudevents"
)

const (
	contentTypeJSON        = event.ApplicationJSON
	contentTypeCloudEvents = event.ApplicationCloudEventsJSON

	// eventTypePrefix is followed by the hook type to make the CloudEvent type.
	eventTypePrefix = "io.trafficctl.canary."
	// eventSourceFormat is the Canary's API path, which names it uniquely in the cluster.
	eventSourceFormat = "/apis/trafficctl.io/v1alpha1/namespaces/%s/canaries/%s"
)

// Body returns the exact bytes, and their Content-Type, that Call would send for r, so that
// tests and previews (a dry run, a CLI showing what a receiver will get) need not make the
// call. A zero Payload.Time and the CloudEvent id are taken from Now and NewID at each call,
// so two calls agree byte for byte only when those are fixed.
func (c *Caller) Body(r Request) ([]byte, string, error) {
	p := r.Payload
	if p.Time.IsZero() {
		p.Time = c.now()
	}
	p.Time = p.Time.UTC()

	switch r.Format {
	case "", FormatJSON:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, "", fmt.Errorf("encoding the payload: %w", err)
		}
		return b, contentTypeJSON, nil
	case FormatCloudEvents:
		b, err := c.cloudEvent(p)
		if err != nil {
			return nil, "", err
		}
		return b, contentTypeCloudEvents, nil
	default:
		return nil, "", fmt.Errorf("unknown format %q: want %q or %q", r.Format, FormatJSON, FormatCloudEvents)
	}
}

// cloudEvent builds the structured-mode JSON of the event carrying p, with the SDK so that the
// envelope follows the spec rather than our reading of it.
func (c *Caller) cloudEvent(p Payload) ([]byte, error) {
	if p.Name == "" || p.Namespace == "" || p.Type == "" {
		return nil, errors.New("a CloudEvent needs the canary's name and namespace and the hook type")
	}
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(c.newID())
	e.SetSource(fmt.Sprintf(eventSourceFormat, p.Namespace, p.Name))
	e.SetType(eventTypePrefix + p.Type)
	e.SetSubject(p.Name)
	e.SetTime(p.Time)
	if err := e.SetData(event.ApplicationJSON, p); err != nil {
		return nil, fmt.Errorf("encoding the payload: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("building the CloudEvent: %w", err)
	}
	b, err := e.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding the CloudEvent: %w", err)
	}
	return b, nil
}
