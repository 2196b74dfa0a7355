package rollout

import (
	"time"

	"github.com/trafficctl/trafficctl/api/v1alpha1"
)

// Snapshot is everything the planner looks at, read once per reconcile. The Canary's status is
// the rollout's memory; the rest is the world as it stands now.
type Snapshot struct {
	Canary *v1alpha1.Canary
	// Target is the user's Deployment, which serves as the canary.
	Target Workload
	// Primary is <target>-primary, which serves the last promoted revision.
	Primary Workload
	// Route is what the route holds now.
	Route State
	// Checks are the verdicts of the checks run for this reconcile; nil when none were due.
	Checks []v1alpha1.Decision
	// Gates are the answers of the webhooks called for this reconcile, by type; a type is
	// absent when its webhooks were not called (the plan then asks for them in CallGates).
	Gates map[v1alpha1.WebhookType][]v1alpha1.WebhookResult
	// Request is the manual request of the Canary's trafficctl.io/request annotation, when it
	// has not been handled yet.
	Request *v1alpha1.ManualRequest
	// Now is the reconcile's clock reading.
	Now time.Time
}

// Workload is a Deployment as the planner sees it.
type Workload struct {
	Found bool
	// Revision is the hash of the pod template and the configuration it mounts (target), or the
	// revision trafficctl last wrote onto it (primary).
	Revision string
	// Replicas is the Deployment's desired replica count.
	Replicas int32
	// Ready is true once the Deployment has rolled out its current template and every desired
	// replica is available.
	Ready bool
	// Message says what the Deployment is waiting for when it is not ready.
	Message string
	// Pods counts its pods that are not being deleted, of any template, as the Deployment's
	// controller last counted them.
	Pods int32
	// Observed is true when the Deployment's controller has seen its current spec, so that Pods
	// counts what that spec asks for.
	Observed bool
	// Terminating counts its pods that are being deleted, which may still answer requests sent
	// before their endpoints caught up.
	Terminating int32
	// Images are its containers' images, as container=image.
	Images []string
}
