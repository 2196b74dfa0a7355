package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Provider names the data plane whose routing objects a Canary writes.
// +kubebuilder:validation:Enum=gatewayapi;istio;kubernetes
type Provider string

const (
	// ProviderGatewayAPI writes backend weights into a Gateway API HTTPRoute.
	ProviderGatewayAPI Provider = "gatewayapi"
	// ProviderIstio writes destination weights into an Istio VirtualService.
	ProviderIstio Provider = "istio"
	// ProviderKubernetes needs no mesh: blue/green switches the apex Service's selector between
	// the primary's and the canary's pods, and a weighted canary is a replica ratio behind one
	// Service that selects both.
	ProviderKubernetes Provider = "kubernetes"
)

// Canary declares that new revisions of a Deployment reach users step by step, each step gated
// by analysis, and roll back by themselves when the analysis fails.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cn;cns,categories=trafficctl
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Step",type=integer,JSONPath=`.status.step`,priority=1
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="LastTransitionTime",type=date,JSONPath=`.status.lastTransitionTime`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanarySpec   `json:"spec"`
	Status CanaryStatus `json:"status,omitempty"`
}

// CanarySpec is what the user declares: which Deployment, how it is reached, and how a new
// revision must prove itself.
//
// +kubebuilder:validation:XValidation:rule="self.provider != 'gatewayapi' || has(self.service.parentRefs) || has(self.service.httpRouteRef)",message="provider gatewayapi needs service.parentRefs (an HTTPRoute trafficctl creates) or service.httpRouteRef (an HTTPRoute you own)"
// +kubebuilder:validation:XValidation:rule="self.provider == 'gatewayapi' || (!has(self.service.parentRefs) && !has(self.service.hostnames) && !has(self.service.httpRouteRef))",message="service.parentRefs, service.hostnames and service.httpRouteRef belong to provider gatewayapi"
// +kubebuilder:validation:XValidation:rule="self.provider == 'istio' || (!has(self.service.gateways) && !has(self.service.hosts) && !has(self.service.virtualServiceRef) && !has(self.service.trafficPolicy) && !has(self.service.timeout) && !has(self.service.retries) && !has(self.service.match) && !has(self.service.headers) && !has(self.service.corsPolicy))",message="service.gateways, hosts, virtualServiceRef, trafficPolicy, timeout, retries, match, headers and corsPolicy belong to provider istio"
// +kubebuilder:validation:XValidation:rule="self.provider != 'kubernetes' || (!has(self.analysis.match) && !(has(self.analysis.mirror) && self.analysis.mirror) && !has(self.analysis.sessionAffinity))",message="provider kubernetes switches a Service's selector and cannot select requests by header, mirror them or pin sessions; use provider gatewayapi or istio for analysis.match, analysis.mirror and analysis.sessionAffinity"
// +kubebuilder:validation:XValidation:rule="self.provider != 'kubernetes' || ((!has(self.analysis.stepWeights) || self.analysis.stepWeights.all(w, w < 100)) && (!has(self.analysis.stepWeight) || has(self.analysis.maxWeight)) && (!has(self.analysis.maxWeight) || self.analysis.maxWeight < 100))",message="with provider kubernetes a canary's share comes from replica counts beside the primary's, so analysis.stepWeights and analysis.maxWeight (needed with stepWeight) must stay below 100; use analysis.iterations for a blue/green switch"
type CanarySpec struct {
	// Provider is the data plane whose routing objects carry the traffic split.
	// +kubebuilder:default=gatewayapi
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// TargetRef is the Deployment whose new revisions are rolled out. It serves as the canary;
	// trafficctl keeps the last promoted revision running as <name>-primary.
	TargetRef TargetReference `json:"targetRef"`

	// AutoscalerRef names the HorizontalPodAutoscaler (autoscaling/v2) of the target. trafficctl
	// keeps a copy of it, <name>-primary, that scales the primary and follows every change of
	// yours; yours keeps scaling the canary while a rollout runs.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// ProgressDeadlineSeconds is how long a rollout may wait for the canary to become ready or
	// for the route to accept new weights before it is rolled back.
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// Suspend stops trafficctl from acting on this Canary; traffic stays where it is.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// DeletionPolicy is what deleting the Canary does to the app. Revert (the default) hands it
	// back first: the target is scaled up to the primary's replicas, the apex Service selects its
	// pods and the route sends all traffic to the apex Service (or the route you own is given back)
	// once they are available; only then do the primary and the objects trafficctl made go. The
	// apex Service and a route trafficctl created stay, as yours. Orphan leaves everything serving
	// as it is, the primary included, no longer owned by the Canary.
	// +kubebuilder:default=Revert
	// +kubebuilder:validation:Enum=Revert;Orphan
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Service describes the Service clients call and the route that splits its traffic.
	Service CanaryService `json:"service"`

	// Analysis describes the steps and the checks that gate each of them.
	Analysis CanaryAnalysis `json:"analysis"`
}

// DeletionPolicy says what deleting a Canary does to the app it rolls out.
type DeletionPolicy string

// The deletion policies.
const (
	// DeletionRevert hands the app back to the target Deployment before anything goes away.
	DeletionRevert DeletionPolicy = "Revert"
	// DeletionOrphan leaves the primary, the Services and the route serving, unowned.
	DeletionOrphan DeletionPolicy = "Orphan"
)

// TargetReference names the workload a Canary rolls out, in the Canary's namespace.
type TargetReference struct {
	// APIVersion of the target.
	// +kubebuilder:default="apps/v1"
	// +kubebuilder:validation:Enum="apps/v1"
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the target.
	// +kubebuilder:default=Deployment
	// +kubebuilder:validation:Enum=Deployment
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the target.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=244
	Name string `json:"name"`
}

// AutoscalerReference names a HorizontalPodAutoscaler in the Canary's namespace.
type AutoscalerReference struct {
	// APIVersion of the autoscaler.
	// +kubebuilder:default="autoscaling/v2"
	// +kubebuilder:validation:Enum="autoscaling/v2"
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the autoscaler.
	// +kubebuilder:default=HorizontalPodAutoscaler
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the autoscaler.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=245
	Name string `json:"name"`
}

// CanaryService describes the apex Service (<name>) and its two backends (<name>-primary,
// <name>-canary), and the route between them.
//
// +kubebuilder:validation:XValidation:rule="!has(self.httpRouteRef) || (!has(self.parentRefs) && !has(self.hostnames))",message="service.parentRefs and service.hostnames describe an HTTPRoute trafficctl creates; with service.httpRouteRef your route keeps its own, so leave them out"
// +kubebuilder:validation:XValidation:rule="!has(self.virtualServiceRef) || (!has(self.gateways) && !has(self.hosts) && !has(self.timeout) && !has(self.retries) && !has(self.match) && !has(self.headers) && !has(self.corsPolicy))",message="service.gateways, hosts, timeout, retries, match, headers and corsPolicy describe a VirtualService trafficctl creates; with service.virtualServiceRef your VirtualService keeps its own, so leave them out"
type CanaryService struct {
	// Name of the apex Service; defaults to the target's name.
	// +kubebuilder:validation:MaxLength=55
	// +optional
	Name string `json:"name,omitempty"`

	// Port the Services expose.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// PortName of the Services' port.
	// +kubebuilder:default=http
	// +optional
	PortName string `json:"portName,omitempty"`

	// TargetPort on the pods; defaults to Port.
	// +optional
	TargetPort *intstr.IntOrString `json:"targetPort,omitempty"`

	// ParentRefs are the Gateways (or other parents) the HTTPRoute trafficctl creates attaches to.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	ParentRefs []ParentReference `json:"parentRefs,omitempty"`

	// Hostnames of the HTTPRoute trafficctl creates.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Hostnames []string `json:"hostnames,omitempty"`

	// HTTPRouteRef names an HTTPRoute in the Canary's namespace that you own. trafficctl only
	// rewrites the rules that send traffic to the apex Service: their backendRefs, a mirror filter,
	// and, for an A/B cohort or sticky sessions, rules named trafficctl-... added before them. It
	// puts everything back as it was when the Canary is deleted; every other rule, filter and
	// field stays yours.
	// +optional
	HTTPRouteRef *LocalObjectReference `json:"httpRouteRef,omitempty"`

	// Gateways of the VirtualService trafficctl creates (provider istio), such as
	// istio-system/public-gateway; the mesh alone when unset.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// Hosts of the VirtualService trafficctl creates (provider istio); the apex Service when unset.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Hosts []string `json:"hosts,omitempty"`

	// VirtualServiceRef names a VirtualService in the Canary's namespace that you own (provider
	// istio). trafficctl only rewrites the HTTP routes that send traffic to the apex Service: their
	// destinations and mirror, and, for an A/B cohort or sticky sessions, routes named
	// trafficctl-... added before them. It puts everything back as it was when the Canary is
	// deleted.
	// +optional
	VirtualServiceRef *LocalObjectReference `json:"virtualServiceRef,omitempty"`

	// TrafficPolicy of the primary's and the canary's DestinationRules (provider istio), as Istio
	// writes it, such as {tls: {mode: ISTIO_MUTUAL}}.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	TrafficPolicy *runtime.RawExtension `json:"trafficPolicy,omitempty"`

	// Timeout of requests through the VirtualService trafficctl creates, such as 5s.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$')",message="service.timeout must be a duration such as 5s"
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// Retries of requests through the VirtualService trafficctl creates.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`

	// Match restricts the VirtualService trafficctl creates to requests matching any of these
	// Istio HTTPMatchRequests, as Istio writes them, such as {uri: {prefix: /api}}. An A/B
	// cohort's conditions are added to each of them.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XPreserveUnknownFields
	// +kubebuilder:validation:items:Type=object
	// +listType=atomic
	// +optional
	Match []runtime.RawExtension `json:"match,omitempty"`

	// Headers are the Istio header operations of the VirtualService trafficctl creates, as Istio
	// writes them, such as {request: {set: {x-version: canary}}}.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	Headers *runtime.RawExtension `json:"headers,omitempty"`

	// CorsPolicy of the VirtualService trafficctl creates, as Istio writes it.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	CorsPolicy *runtime.RawExtension `json:"corsPolicy,omitempty"`
}

// HTTPRetry mirrors Istio's HTTPRetry, so the API package depends on apimachinery alone.
type HTTPRetry struct {
	// Attempts is how many times a request is retried.
	// +kubebuilder:validation:Minimum=0
	Attempts int32 `json:"attempts"`
	// PerTryTimeout bounds each attempt, such as 2s.
	// +kubebuilder:validation:MaxLength=16
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn lists the conditions that retry, such as gateway-error,connect-failure.
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// ParentReference mirrors the Gateway API ParentReference, so the API package depends on
// apimachinery alone.
type ParentReference struct {
	// Group of the parent; defaults to gateway.networking.k8s.io.
	// +optional
	Group *string `json:"group,omitempty"`
	// Kind of the parent; defaults to Gateway.
	// +optional
	Kind *string `json:"kind,omitempty"`
	// Namespace of the parent; defaults to the Canary's.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the parent.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// SectionName selects a listener of the parent.
	// +optional
	SectionName *string `json:"sectionName,omitempty"`
	// Port selects a listener of the parent by port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// LocalObjectReference names an object in the Canary's namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// CanaryAnalysis is the schedule of traffic steps and the checks each step must pass.
//
// +kubebuilder:validation:XValidation:rule="has(self.iterations) ? !has(self.stepWeight) && !has(self.stepWeights) && !has(self.maxWeight) : has(self.stepWeight) != has(self.stepWeights)",message="set exactly one of analysis.stepWeight, analysis.stepWeights (a weighted canary) or analysis.iterations (blue/green, or an A/B experiment with analysis.match); maxWeight belongs to the weighted canary"
// +kubebuilder:validation:XValidation:rule="!has(self.match) || has(self.iterations)",message="analysis.match selects the A/B cohort that gets the canary for analysis.iterations intervals; set analysis.iterations"
// +kubebuilder:validation:XValidation:rule="!has(self.mirrorWeight) || (has(self.mirror) && self.mirror)",message="analysis.mirrorWeight needs analysis.mirror: true"
// +kubebuilder:validation:XValidation:rule="!(has(self.mirror) && self.mirror) || !has(self.match)",message="analysis.mirror cannot be combined with analysis.match: the A/B cohort already sends all of its requests to the canary"
// +kubebuilder:validation:XValidation:rule="!has(self.sessionAffinity) || !has(self.iterations)",message="analysis.sessionAffinity keeps users on a weighted canary; it cannot be combined with analysis.iterations"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeight) || !has(self.maxWeight) || self.maxWeight >= self.stepWeight",message="analysis.maxWeight must be at least analysis.stepWeight"
// +kubebuilder:validation:XValidation:rule="!has(self.stepWeights) || !has(self.maxWeight) || self.stepWeights.all(w, w <= self.maxWeight)",message="every analysis.stepWeights entry must be at most analysis.maxWeight"
type CanaryAnalysis struct {
	// Interval between checks, and the least time a step lasts, such as 30s or 1m.
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="analysis.interval must be a duration of at least 1s, such as 30s or 1m"
	// +optional
	Interval string `json:"interval,omitempty"`

	// CheckInterval is how often the checks run within a step, such as 10s; the interval when
	// unset. A step still lasts at least interval, unless its sequential checks conclude earlier
	// that the canary is not worse than the primary. Sequential checks may look as often as they
	// like without raising their false-rollback rate; every other check that runs more often also
	// counts more failures towards threshold.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="analysis.checkInterval must be a duration of at least 1s, such as 10s"
	// +optional
	CheckInterval string `json:"checkInterval,omitempty"`

	// MinRequests is how many requests the canary must have served in a check's window before
	// the check gives a verdict; with fewer, the check has no data ("not enough traffic yet") and
	// onNoData applies. Counted with the metric set's request query.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinRequests *int64 `json:"minRequests,omitempty"`

	// MetricSet chooses the queries behind the built-in checks: app (the application's own
	// http_requests_total and http_request_duration_seconds, scraped per pod), istio
	// (istio_requests_total and istio_request_duration_milliseconds, as the destination reports
	// them) or envoy (envoy_cluster_upstream_rq and envoy_cluster_upstream_rq_time of clusters
	// named <namespace>_<service>_<port>, as Contour names them). Defaults to istio with provider
	// istio, app otherwise.
	// +kubebuilder:validation:Enum=app;istio;envoy
	// +optional
	MetricSet MetricSet `json:"metricSet,omitempty"`

	// Threshold is how many failed checks roll the canary back.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +optional
	Threshold int32 `json:"threshold,omitempty"`

	// ConsecutiveThreshold, when set, also rolls the canary back after this many failed checks in
	// a row, however many passed before; threshold still counts them all.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ConsecutiveThreshold *int32 `json:"consecutiveThreshold,omitempty"`

	// OnNoData is what a check whose query returns no data counts as: wait (the step holds, up
	// to the progress deadline, then the canary is rolled back), fail (a failed check), or pass.
	// +kubebuilder:default=wait
	// +kubebuilder:validation:Enum=wait;fail;pass
	// +optional
	OnNoData NoDataPolicy `json:"onNoData,omitempty"`

	// OnError is what a check counts as when its provider cannot answer (unreachable, a timeout,
	// a query it rejects): wait (the step holds and the check is retried every check interval) or
	// fail (a failed check).
	// +kubebuilder:default=wait
	// +kubebuilder:validation:Enum=wait;fail
	// +optional
	OnError ErrorPolicy `json:"onError,omitempty"`

	// UnavailableGrace bounds how long the canary keeps its traffic while its checks cannot be
	// evaluated (onError: wait), such as 2m; two check intervals when unset. Past it, all traffic
	// goes back to the primary and the rollout holds, with no failed check counted, until the
	// analysis answers again; then the step starts over. The progress deadline bounds the hold.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="analysis.unavailableGrace must be a duration of at least 1s, such as 2m"
	// +optional
	UnavailableGrace string `json:"unavailableGrace,omitempty"`

	// CanaryReplicas sizes the canary during a rollout: Full (the default) runs as many pods as
	// the primary has; Proportional runs the share of them its traffic needs,
	// ceil(primary replicas x weight / 100) and at least 1, so a 5% step does not double the pods
	// (it still runs Full when all traffic switches to it, and for mirrored or A/B steps). Without
	// effect under provider kubernetes, where the canary's replicas are its share, and with an
	// autoscalerRef, whose HorizontalPodAutoscaler sizes the canary.
	// +kubebuilder:default=Full
	// +kubebuilder:validation:Enum=Full;Proportional
	// +optional
	CanaryReplicas CanarySizing `json:"canaryReplicas,omitempty"`

	// MaxWeight is the largest share of traffic, in percent, the canary gets before promotion.
	// With stepWeight it defaults to 100; with stepWeights it caps them.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxWeight *int32 `json:"maxWeight,omitempty"`

	// StepWeight is the increment, in percent, of the canary's share at each step.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	StepWeight *int32 `json:"stepWeight,omitempty"`

	// StepWeights lists the canary's share, in percent, at each step.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=100
	// +kubebuilder:validation:XValidation:rule="self.isSorted() && self.all(w, self.filter(x, x == w).size() == 1)",message="analysis.stepWeights must be strictly increasing, such as [5, 10, 25, 50]"
	// +listType=atomic
	// +optional
	StepWeights []int32 `json:"stepWeights,omitempty"`

	// Iterations is how many analysis intervals a blue/green or A/B rollout runs before it is
	// promoted. Without match it is blue/green: the canary gets no user traffic (only mirrored
	// traffic with mirror) until every iteration passes, then all traffic switches at once.
	// With match it is an A/B experiment: matching requests go to the canary.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Iterations *int32 `json:"iterations,omitempty"`

	// Match selects the A/B cohort: a request matching any entry (every condition of it) goes to
	// the canary for the whole experiment; every other request stays on the primary.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Match []HTTPMatch `json:"match,omitempty"`

	// Mirror copies a share of the primary's requests to the canary, whose responses are
	// discarded: during a blue/green rollout's iterations, or, for a weighted canary, in a step
	// before the first weighted one.
	// +optional
	Mirror bool `json:"mirror,omitempty"`

	// MirrorWeight is the share of requests mirrored, in percent; 100 when unset.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MirrorWeight *int32 `json:"mirrorWeight,omitempty"`

	// SessionAffinity keeps a user on the version they were first sent to for the rest of the
	// rollout, with a cookie.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`

	// Metrics are the checks run at every interval of every step.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Metrics []CanaryMetric `json:"metrics,omitempty"`

	// Webhooks are called at the moments their type names: to approve a rollout, a traffic
	// increase or a promotion, to run load or smoke tests, to ask for a rollback, or to hear of
	// every event.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`

	// Alerts send what happens to this Canary to the AlertProviders they name (Slack, Microsoft
	// Teams, Discord or a webhook), filtered by severity.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Alerts []CanaryAlert `json:"alerts,omitempty"`
}

// CanarySizing says how many pods the canary runs during a rollout.
type CanarySizing string

// The canary sizings.
const (
	CanaryReplicasFull         CanarySizing = "Full"
	CanaryReplicasProportional CanarySizing = "Proportional"
)

// WebhookType names the moment a webhook is called, and what its answer means.
// +kubebuilder:validation:Enum=confirm-rollout;pre-rollout;rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
type WebhookType string

// The webhook types, in the order a rollout meets them.
const (
	// WebhookConfirmRollout is called before the canary is scaled up: the rollout waits (phase
	// Waiting) until every such webhook answers 2xx.
	WebhookConfirmRollout WebhookType = "confirm-rollout"
	// WebhookPreRollout is called once the canary is ready, before it gets traffic: an answer
	// outside 2xx, or none, is a failed check.
	WebhookPreRollout WebhookType = "pre-rollout"
	// WebhookRollout is called with the checks, every check interval: an answer outside 2xx, or
	// none, is a failed check. Load testers go here.
	WebhookRollout WebhookType = "rollout"
	// WebhookConfirmTrafficIncrease is called before each step up: a refusal holds the step
	// without counting a failed check.
	WebhookConfirmTrafficIncrease WebhookType = "confirm-traffic-increase"
	// WebhookConfirmPromotion is called once every step has passed: a refusal holds the rollout
	// at WaitingPromotion, where the checks go on running.
	WebhookConfirmPromotion WebhookType = "confirm-promotion"
	// WebhookPostRollout is called once a rollout has Succeeded or Failed; its answer changes
	// nothing.
	WebhookPostRollout WebhookType = "post-rollout"
	// WebhookRollback is called with the checks: a 2xx answer rolls the canary back.
	WebhookRollback WebhookType = "rollback"
	// WebhookEvent receives every event of the Canary; its answer changes nothing.
	WebhookEvent WebhookType = "event"
)

// WebhookFormat is how a webhook's request body is shaped.
// +kubebuilder:validation:Enum=json;cloudevents
type WebhookFormat string

// The webhook formats.
const (
	// WebhookFormatJSON posts the payload as a JSON object.
	WebhookFormatJSON WebhookFormat = "json"
	// WebhookFormatCloudEvents posts a CloudEvents 1.0 event in structured JSON mode, with the
	// payload as its data.
	WebhookFormatCloudEvents WebhookFormat = "cloudevents"
)

// CanaryWebhook is one HTTP call made at the moments its type names. The request is a POST with
// a JSON payload (the Canary, its phase, revision, images, weights, step and, on failure, the
// failing check), signed with an HMAC when secretRef is set.
type CanaryWebhook struct {
	// Name identifies the webhook in status, events and alerts; its URL never appears there.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Type is when the webhook is called and what its answer means.
	// +kubebuilder:default=rollout
	// +optional
	Type WebhookType `json:"type,omitempty"`

	// URL the request is posted to.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('http://') || self.startsWith('https://'))",message="webhooks[].url must be an http or https URL"
	URL string `json:"url"`

	// Timeout of each attempt, such as 10s; 10s when unset.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s') && duration(self) <= duration('5m')",message="webhooks[].timeout must be a positive duration of at most 5m, such as 10s"
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// Retries are further attempts after one that got no answer or a 5xx or 429 answer, waiting
	// 1s, 2s, 4s ... between them.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries *int32 `json:"retries,omitempty"`

	// Format of the request body: json (the payload itself) or cloudevents (a CloudEvents 1.0
	// structured event whose data is the payload). Defaults to json.
	// +optional
	Format WebhookFormat `json:"format,omitempty"`

	// Metadata is sent as the payload's metadata, as Flagger sends it: a load tester's command,
	// for instance.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`

	// SecretRef names a key of a Secret in the Canary's namespace holding the HMAC-SHA256 key
	// every request is signed with: headers X-Trafficctl-Timestamp and X-Trafficctl-Signature
	// (sha256=hex of HMAC(key, timestamp + "." + body)).
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`
}

// SecretKeyReference names one key of a Secret in the referring object's namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret; defaults to hmac-key.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// AlertSeverity orders what a Canary alert receives: info (everything), warn (failed checks,
// holds and rollbacks), or error (rollbacks only).
// +kubebuilder:validation:Enum=info;warn;error
type AlertSeverity string

// The severities, from the most talkative.
const (
	AlertSeverityInfo  AlertSeverity = "info"
	AlertSeverityWarn  AlertSeverity = "warn"
	AlertSeverityError AlertSeverity = "error"
)

// CanaryAlert sends the Canary's events of at least a severity to an AlertProvider.
type CanaryAlert struct {
	// Name identifies the alert.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Severity is the least severity sent: info, warn or error.
	// +kubebuilder:default=info
	// +optional
	Severity AlertSeverity `json:"severity,omitempty"`

	// ProviderRef names the AlertProvider; its namespace defaults to the Canary's.
	ProviderRef CrossNamespaceObjectReference `json:"providerRef"`
}

// MetricSet names the family of metrics the built-in checks query.
type MetricSet string

// The metric sets.
const (
	MetricSetApp   MetricSet = "app"
	MetricSetIstio MetricSet = "istio"
	MetricSetEnvoy MetricSet = "envoy"
)

// NoDataPolicy says what a check without data counts as.
type NoDataPolicy string

// The no-data policies.
const (
	NoDataWait NoDataPolicy = "wait"
	NoDataFail NoDataPolicy = "fail"
	NoDataPass NoDataPolicy = "pass"
)

// ErrorPolicy says what a check its provider could not answer counts as.
type ErrorPolicy string

// The error policies.
const (
	ErrorWait ErrorPolicy = "wait"
	ErrorFail ErrorPolicy = "fail"
)

// HTTPMatch is one set of request conditions; a request matches when it meets all of them.
//
// +kubebuilder:validation:XValidation:rule="has(self.headers) || has(self.cookies) || has(self.queryParams)",message="an analysis.match entry needs headers, cookies or queryParams"
// +kubebuilder:validation:XValidation:rule="!has(self.cookies) || !has(self.headers) || !self.headers.exists(k, k.lowerAscii() == 'cookie')",message="analysis.match: match the Cookie header through cookies or through headers, not both"
type HTTPMatch struct {
	// Headers maps a request header name to the condition on its value.
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z0-9!#$%&*+.^_|~-]+$'))",message="analysis.match headers must be HTTP header names, such as x-canary"
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`

	// Cookies maps a cookie name to the condition on its value.
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z0-9!#$%&*+.^_|~-]+$'))",message="analysis.match cookies must be cookie names, such as canary"
	// +optional
	Cookies map[string]StringMatch `json:"cookies,omitempty"`

	// QueryParams maps a query parameter name to the condition on its value.
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z0-9!#$%&*+.^_|~-]+$'))",message="analysis.match queryParams must be query parameter names"
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
}

// StringMatch is a condition on a value: exactly one of exact, prefix or regex.
//
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() == 1",message="set exactly one of exact, prefix or regex"
type StringMatch struct {
	// Exact is the whole value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Exact string `json:"exact,omitempty"`
	// Prefix the value starts with.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Regex the whole value matches, in RE2 syntax as Envoy and Istio use it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Regex string `json:"regex,omitempty"`
}

// SessionAffinity pins users to a version with cookies for the rest of a rollout.
//
// +kubebuilder:validation:XValidation:rule="!has(self.primaryCookieName) || self.primaryCookieName != self.cookieName",message="analysis.sessionAffinity.primaryCookieName must differ from cookieName"
type SessionAffinity struct {
	// CookieName is the cookie a user sent to the canary gets; with it, every later request goes
	// to the canary until the rollout ends.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	CookieName string `json:"cookieName"`
	// PrimaryCookieName, when set, is the cookie a user sent to the primary gets, keeping them on
	// the primary too, so no user switches version mid-rollout.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`
	// MaxAge of the cookies, in seconds.
	// +kubebuilder:default=86400
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxAge int32 `json:"maxAge,omitempty"`
}

// CanaryMetric is one check: a query and the judge that holds its answer to account.
//
// +kubebuilder:validation:XValidation:rule="has(self.templateRef) || self.name in ['request-success-rate', 'request-duration', 'request-rate']",message="a metric is either a built-in (request-success-rate, request-duration, request-rate) or names a MetricTemplate in templateRef"
// +kubebuilder:validation:XValidation:rule="[has(self.thresholdRange), has(self.compare), has(self.sequential)].filter(x, x).size() == 1",message="a metric needs exactly one judge: thresholdRange (a fixed bound), compare (against the primary) or sequential (a sequential test on request outcomes)"
// +kubebuilder:validation:XValidation:rule="!has(self.sequential) || has(self.templateRef) || self.name != 'request-rate'",message="the sequential test judges request outcomes; use it with request-success-rate (errors), request-duration (slow requests) or a templateRef that counts bad outcomes"
// +kubebuilder:validation:XValidation:rule="!has(self.sequential) || has(self.templateRef) || self.name != 'request-duration' || has(self.sequential.slowerThan)",message="a sequential request-duration check needs sequential.slowerThan: the latency above which a request counts as slow"
// +kubebuilder:validation:XValidation:rule="!has(self.compare) || has(self.compare.direction) || !has(self.templateRef)",message="compare.direction is needed with templateRef: say whether a higher (increase) or lower (decrease) canary value is worse"
// +kubebuilder:validation:XValidation:rule="!has(self.templateVariables) || has(self.templateRef)",message="templateVariables are for the MetricTemplate in templateRef"
type CanaryMetric struct {
	// Name of the check; a built-in name when templateRef is not set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Interval is the longest window the query looks back over; it never reaches back before
	// the current step's weights took effect. Defaults to the analysis interval.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="metric interval must be a duration of at least 1s, such as 30s or 1m"
	// +optional
	Interval string `json:"interval,omitempty"`

	// ThresholdRange is the range the canary's value must stay within for the check to pass.
	// +optional
	ThresholdRange *ThresholdRange `json:"thresholdRange,omitempty"`

	// Compare judges the canary's value against the primary's over the same window.
	// +optional
	Compare *MetricComparison `json:"compare,omitempty"`

	// Sequential judges request outcomes with a sequential test: it rolls back as soon as the
	// evidence shows the canary's rate of bad outcomes is worse than tolerance times the
	// primary's, and keeps the chance of rolling back a canary that is not at falseRollbackRate,
	// however often it looks.
	// +optional
	Sequential *SequentialTest `json:"sequential,omitempty"`

	// TemplateRef names the MetricTemplate holding the query.
	// +optional
	TemplateRef *CrossNamespaceObjectReference `json:"templateRef,omitempty"`

	// TemplateVariables are the values of {{ variables.<key> }} (or {{ .Variables.<key> }}) in
	// the MetricTemplate's query. Each is escaped for where the template places it: inside a
	// label matcher it is matched literally; elsewhere it must be a number or a duration.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`
}

// ComparisonMethod is how a canary's value is held against the primary's.
// +kubebuilder:validation:Enum=ratio;difference;mann-whitney
type ComparisonMethod string

// The comparison methods.
const (
	// CompareRatio fails when canary/primary moves past 1 +/- tolerance in the bad direction.
	CompareRatio ComparisonMethod = "ratio"
	// CompareDifference fails when canary - primary moves past tolerance in the bad direction.
	CompareDifference ComparisonMethod = "difference"
	// CompareMannWhitney compares the two series across the window with a Mann-Whitney U test,
	// and fails when the Hodges-Lehmann shift's confidence interval lies beyond tolerance.
	CompareMannWhitney ComparisonMethod = "mann-whitney"
)

// ComparisonDirection says which way a difference from the primary is a regression.
// +kubebuilder:validation:Enum=increase;decrease;either
type ComparisonDirection string

// The comparison directions.
const (
	// DirectionIncrease: a higher canary value is worse, as for latency or an error rate.
	DirectionIncrease ComparisonDirection = "increase"
	// DirectionDecrease: a lower canary value is worse, as for a success rate.
	DirectionDecrease ComparisonDirection = "decrease"
	// DirectionEither: any difference beyond tolerance is a regression.
	DirectionEither ComparisonDirection = "either"
)

// MetricComparison judges the canary against the primary over the same window.
//
// +kubebuilder:validation:XValidation:rule="!has(self.confidence) || self.method == 'mann-whitney'",message="compare.confidence belongs to method mann-whitney"
// +kubebuilder:validation:XValidation:rule="!has(self.step) || self.method == 'mann-whitney'",message="compare.step belongs to method mann-whitney"
type MetricComparison struct {
	// Method of comparison: ratio, difference, or mann-whitney (two series, with a confidence).
	// +kubebuilder:default=ratio
	// +optional
	Method ComparisonMethod `json:"method,omitempty"`

	// Direction in which the canary differing from the primary is a regression: increase,
	// decrease or either. Built-in checks know theirs (request-success-rate: decrease;
	// request-duration: increase; request-rate: either).
	// +optional
	Direction ComparisonDirection `json:"direction,omitempty"`

	// Tolerance is how far the canary may be from the primary in the bad direction: for ratio, a
	// fraction of the primary's value (0.1 is 10%); for difference and mann-whitney, in the
	// metric's own unit (1 is one percentage point of success rate, or 1 ms of latency).
	// +kubebuilder:validation:Minimum=0
	Tolerance float64 `json:"tolerance"`

	// Confidence of the mann-whitney comparison: the canary fails only when the confidence
	// interval of its shift from the primary lies wholly beyond tolerance. Defaults to 0.95.
	// +kubebuilder:validation:Minimum=0.5
	// +kubebuilder:validation:Maximum=0.9999
	// +optional
	Confidence *float64 `json:"confidence,omitempty"`

	// Step is the spacing of the two series' points for mann-whitney, such as 10s; each point
	// measures its own slice of the window ({{ .Interval }} is the step). Defaults to 10s.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="compare.step must be a duration of at least 1s, such as 10s"
	// +optional
	Step string `json:"step,omitempty"`
}

// SequentialTest is a sequential test on request outcomes: each request of the canary and of
// the primary is good or bad (an error; slower than slowerThan; or what a template counts), and
// the test weighs the canary's rate of bad outcomes against the primary's after every look.
type SequentialTest struct {
	// Tolerance is the ratio of the canary's bad-outcome rate to the primary's that is still
	// acceptable, such as 1.5: a canary at most this much worse is rolled back with a chance of at
	// most falseRollbackRate. Defaults to 1.2.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Tolerance *float64 `json:"tolerance,omitempty"`

	// FalseRollbackRate bounds the chance that a canary within tolerance is rolled back by this
	// check over a whole rollout, however often it looks. Defaults to 0.01. With several
	// sequential checks, the chance that any of them does is at most the sum of their rates.
	// +kubebuilder:validation:Minimum=0.0001
	// +kubebuilder:validation:Maximum=0.2
	// +optional
	FalseRollbackRate *float64 `json:"falseRollbackRate,omitempty"`

	// SlowerThan makes a request-duration check count a request slower than this as a bad
	// outcome, such as 250ms. It must be a bucket bound of the latency histogram.
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="sequential.slowerThan must be a positive duration such as 250ms"
	// +optional
	SlowerThan string `json:"slowerThan,omitempty"`
}

// ThresholdRange bounds a metric's value; either end may be open.
//
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="thresholdRange needs min, max or both"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="thresholdRange.min must not exceed thresholdRange.max"
type ThresholdRange struct {
	// Min is the smallest passing value.
	// +optional
	Min *float64 `json:"min,omitempty"`
	// Max is the largest passing value.
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// CrossNamespaceObjectReference names an object in any namespace.
type CrossNamespaceObjectReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the object; defaults to the Canary's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CanaryPhase is where a Canary stands in its rollout cycle.
type CanaryPhase string

// The phases, in the order a rollout moves through them.
const (
	PhaseInitializing CanaryPhase = "Initializing"
	PhaseInitialized  CanaryPhase = "Initialized"
	// PhaseWaiting holds a new revision before its canary is scaled up, until its
	// confirm-rollout webhooks approve.
	PhaseWaiting     CanaryPhase = "Waiting"
	PhaseProgressing CanaryPhase = "Progressing"
	// PhaseWaitingPromotion holds a rollout whose steps have all passed until its
	// confirm-promotion webhooks approve; the checks go on running meanwhile.
	PhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	PhasePromoting        CanaryPhase = "Promoting"
	PhaseFinalising       CanaryPhase = "Finalising"
	PhaseSucceeded        CanaryPhase = "Succeeded"
	PhaseFailed           CanaryPhase = "Failed"
	PhaseTerminating      CanaryPhase = "Terminating"
)

// Verdict is the outcome of one check.
type Verdict string

// The verdicts a check can reach.
const (
	VerdictPass   Verdict = "Pass"
	VerdictFail   Verdict = "Fail"
	VerdictNoData Verdict = "NoData"
	VerdictError  Verdict = "Error"
)

// CanaryStatus is the only memory of a rollout: a restarted controller resumes from it
// without repeating or skipping a step.
type CanaryStatus struct {
	// ObservedGeneration is the Canary generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase of the rollout cycle.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// Conditions in kstatus form: Ready, Reconciling, Stalled, and Promoted.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// CanaryWeight is the canary's share of traffic, in percent, as last written to the route.
	// +optional
	CanaryWeight int32 `json:"canaryWeight"`

	// Step is the 1-based index of the current weight step; 0 before the first.
	// +optional
	Step int32 `json:"step"`

	// FailedChecks counts the failed checks of the current rollout.
	// +optional
	FailedChecks int32 `json:"failedChecks"`

	// ConsecutiveFailedChecks counts the failed checks since the last passing one.
	// +optional
	ConsecutiveFailedChecks int32 `json:"consecutiveFailedChecks,omitempty"`

	// LastAppliedSpec is the revision hash of the target being rolled out (or last rolled out).
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// LastPromotedSpec is the revision hash running on the primary.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// LastTransitionTime is when the rollout last moved: a phase, a step, or a rollback.
	// Waits bounded by the progress deadline count from it.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`

	// StepStartedAt is when the route accepted the current step's weights; analysis windows
	// never reach back before it. Unset while the route has not yet accepted them.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`

	// LastCheckedAt is when the checks of the current step last ran.
	// +optional
	LastCheckedAt *metav1.Time `json:"lastCheckedAt,omitempty"`

	// Evidence is what each sequential check has gathered over the rollout's completed steps;
	// the current step's requests are counted again at every look.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=metric
	// +optional
	Evidence []Evidence `json:"evidence,omitempty"`

	// Decisions are the verdicts of the latest checks, newest first.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Decisions []Decision `json:"decisions,omitempty"`

	// RolloutStartedAt is when the current (or last) rollout began.
	// +optional
	RolloutStartedAt *metav1.Time `json:"rolloutStartedAt,omitempty"`

	// History records the latest rollouts that ended, newest first.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	History []RolloutRecord `json:"history,omitempty"`

	// Webhooks are the latest answers of the gating webhooks, one per webhook.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	// +optional
	Webhooks []WebhookResult `json:"webhooks,omitempty"`

	// Paused records who paused the rollout, and when; unset while it is not paused. A paused
	// rollout holds its traffic where it is until it is resumed.
	// +optional
	Paused *ManualAction `json:"paused,omitempty"`

	// MaxWeightReached is the largest share of traffic the current rollout's canary has had.
	// +optional
	MaxWeightReached int32 `json:"maxWeightReached,omitempty"`

	// CanaryFresh is true once the target has had no pods since the current rollout began, so
	// that every canary pod started on this revision: a revision can differ from the last only
	// in the ConfigMaps and Secrets its pods read when they start, which pods already running
	// never see.
	// +optional
	CanaryFresh bool `json:"canaryFresh,omitempty"`

	// PromotionRequested records who asked to promote the current rollout without its remaining
	// steps; the canary is still promoted only once it is ready.
	// +optional
	PromotionRequested *ManualAction `json:"promotionRequested,omitempty"`

	// LastRequestID is the id of the last manual request handled, which is never handled again.
	// +optional
	LastRequestID string `json:"lastRequestID,omitempty"`

	// ManualActions are the latest requests handled (see the trafficctl.io/request annotation),
	// newest first.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	ManualActions []ManualAction `json:"manualActions,omitempty"`

	// Outage is set while the current step's checks cannot be evaluated (onError: wait): since
	// when, why, and whether traffic has been sent back to the primary for it.
	// +optional
	Outage *AnalysisOutage `json:"outage,omitempty"`

	// HandedBackAt is when a deletion's hand-back moved all traffic to the target Deployment; the
	// primary stays up a moment longer so that requests already sent to it finish.
	// +optional
	HandedBackAt *metav1.Time `json:"handedBackAt,omitempty"`
}

// AnalysisOutage is a spell during which a step's checks could not be evaluated.
type AnalysisOutage struct {
	// Since is when the checks first failed to be evaluated.
	Since metav1.Time `json:"since"`
	// Held is true once the outage outlasted analysis.unavailableGrace: traffic went back to
	// the primary, and the step starts over when the analysis answers again.
	// +optional
	Held bool `json:"held,omitempty"`
	// Message says what the checks could not reach.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Message string `json:"message,omitempty"`
}

// RolloutRecord is one rollout that ended: what was rolled out, how it ended and why.
type RolloutRecord struct {
	// Revision rolled out.
	Revision string `json:"revision"`
	// Images of the canary's containers, as container=image.
	// +optional
	Images []string `json:"images,omitempty"`
	// Result is Succeeded or Failed.
	Result CanaryPhase `json:"result"`
	// Reason is the reason of the Ready condition it ended with, such as Succeeded, CheckFailed
	// or Aborted.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message says how it ended.
	// +optional
	Message string `json:"message,omitempty"`
	// WeightReached is the largest share of traffic the canary had.
	// +optional
	WeightReached int32 `json:"weightReached,omitempty"`
	// StartedAt is when the rollout began; unset when it never did (a revision that waited).
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// FinishedAt is when it ended.
	FinishedAt metav1.Time `json:"finishedAt"`
}

// WebhookResult is what a gating webhook last answered.
type WebhookResult struct {
	// Name of the webhook.
	Name string `json:"name"`
	// Type of the webhook.
	Type WebhookType `json:"type"`
	// Outcome is Approved (a 2xx answer), Refused (another answer) or Failed (no usable answer).
	Outcome WebhookOutcome `json:"outcome"`
	// StatusCode of the last answer; 0 when there was none.
	// +optional
	StatusCode int32 `json:"statusCode,omitempty"`
	// Attempts made.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Message says what happened, naming the webhook but never its URL.
	// +optional
	Message string `json:"message,omitempty"`
	// Time of the answer.
	Time metav1.Time `json:"time"`
}

// WebhookOutcome is how a webhook call ended.
type WebhookOutcome string

// The outcomes of a webhook call.
const (
	WebhookApproved WebhookOutcome = "Approved"
	WebhookRefused  WebhookOutcome = "Refused"
	WebhookFailed   WebhookOutcome = "Failed"
)

// RequestAnnotation carries a manual request to the controller, as JSON (see ManualRequest),
// such as {"action":"promote","id":"3f2a","user":"alice","time":"2026-12-01T10:00:00Z"}. It is
// an annotation, not a spec field, so that GitOps tools, which own the spec, leave it alone;
// the controller handles each id once and records it in status.manualActions.
const RequestAnnotation = "trafficctl.io/request"

// RequestActionType is what a manual request asks for: promote, abort, pause, resume or retry.
// Status records whatever was asked, an unknown action included, with the reason it was refused.
type RequestActionType string

// The manual actions.
const (
	// ActionPromote skips the remaining steps and promotes the canary once it is ready.
	ActionPromote RequestActionType = "promote"
	// ActionAbort rolls the canary back now.
	ActionAbort RequestActionType = "abort"
	// ActionPause holds the rollout where it is: no checks, no step, no promotion.
	ActionPause RequestActionType = "pause"
	// ActionResume lets a paused rollout go on, with a fresh window for the current step.
	ActionResume RequestActionType = "resume"
	// ActionRetry starts a failed revision's rollout again without a change to the Deployment.
	ActionRetry RequestActionType = "retry"
)

// ManualRequest is the value of the trafficctl.io/request annotation.
type ManualRequest struct {
	// Action asked for.
	Action RequestActionType `json:"action"`
	// ID makes the request unique: the controller acts on each id once.
	ID string `json:"id"`
	// User who asked, as the requester states it (trafficctl writes the name the apiserver
	// authenticated it as).
	User string `json:"user,omitempty"`
	// Time the request was made.
	Time *metav1.Time `json:"time,omitempty"`
}

// RequestOutcome is what the controller did with a manual request.
type RequestOutcome string

// The outcomes of a manual request.
const (
	// RequestApplied: the request changed the rollout.
	RequestApplied RequestOutcome = "Applied"
	// RequestIgnored: the rollout already was as asked, such as a pause while paused.
	RequestIgnored RequestOutcome = "Ignored"
	// RequestRefused: the request cannot apply now, such as abort after a promotion.
	RequestRefused RequestOutcome = "Refused"
)

// ManualAction is a manual request as the controller handled it.
type ManualAction struct {
	// Action asked for.
	Action RequestActionType `json:"action"`
	// ID of the request.
	// +optional
	ID string `json:"id,omitempty"`
	// User who asked.
	// +optional
	User string `json:"user,omitempty"`
	// RequestedAt is when the request was made, as the requester states it.
	// +optional
	RequestedAt *metav1.Time `json:"requestedAt,omitempty"`
	// HandledAt is when the controller acted on it.
	HandledAt metav1.Time `json:"handledAt"`
	// Outcome of the request.
	Outcome RequestOutcome `json:"outcome"`
	// Message says what was done, or why not.
	// +optional
	Message string `json:"message,omitempty"`
}

// Decision records one check: what was asked, what came back, and what was concluded, so
// "why did it roll back?" is answered from the object.
type Decision struct {
	// Metric is the check's name.
	Metric string `json:"metric"`
	// Judge that reached the verdict: threshold, ratio, difference, mann-whitney, sequential or
	// webhook.
	// +optional
	Judge Judge `json:"judge,omitempty"`
	// Step is the weight step the check ran at.
	Step int32 `json:"step"`
	// CanaryWeight at the time of the check.
	CanaryWeight int32 `json:"canaryWeight"`
	// Query sent to the metrics provider for the canary.
	// +optional
	Query string `json:"query,omitempty"`
	// PrimaryQuery is the query for the primary, when the judge compares the two.
	// +optional
	PrimaryQuery string `json:"primaryQuery,omitempty"`
	// Value returned for the canary, as text; empty when there was none.
	// +optional
	Value string `json:"value,omitempty"`
	// PrimaryValue returned for the primary, when the judge compares the two.
	// +optional
	PrimaryValue string `json:"primaryValue,omitempty"`
	// Bound the value was held against, such as ">= 99" or "<= primary x 1.1".
	// +optional
	Bound string `json:"bound,omitempty"`
	// SampleSize is how many canary requests (for mann-whitney: series points) the verdict rests
	// on; 0 when not counted.
	// +optional
	SampleSize int64 `json:"sampleSize,omitempty"`
	// PrimarySampleSize is the same for the primary.
	// +optional
	PrimarySampleSize int64 `json:"primarySampleSize,omitempty"`
	// Verdict reached.
	Verdict Verdict `json:"verdict"`
	// Conclusive marks a sequential check's verdict as final for the rollout: a conclusive Fail
	// rolls back at once, and a step whose sequential checks are all conclusive passes may
	// advance before its interval is up.
	// +optional
	Conclusive bool `json:"conclusive,omitempty"`
	// Evidence a sequential check has gathered over the whole rollout, this step included.
	// +optional
	Evidence *Evidence `json:"evidence,omitempty"`
	// Message explains the verdict.
	// +optional
	Message string `json:"message,omitempty"`
	// Time the check ran.
	Time metav1.Time `json:"time"`
}

// Judge names the rule that reached a verdict.
type Judge string

// The judges.
const (
	JudgeThreshold   Judge = "threshold"
	JudgeRatio       Judge = "ratio"
	JudgeDifference  Judge = "difference"
	JudgeMannWhitney Judge = "mann-whitney"
	JudgeSequential  Judge = "sequential"
	// JudgeWebhook is a pre-rollout or rollout webhook's answer.
	JudgeWebhook Judge = "webhook"
)

// Evidence is a sequential check's state: the requests it has seen and the e-values (likelihood
// ratios mixed over the alternatives) against each of its two hypotheses. An e-value of 1/alpha
// or more rejects its hypothesis at level alpha, however often it has been looked at.
type Evidence struct {
	// Metric is the check's name.
	Metric string `json:"metric"`
	// CanaryRequests and CanaryBad count the canary's requests and bad outcomes.
	CanaryRequests int64 `json:"canaryRequests"`
	CanaryBad      int64 `json:"canaryBad"`
	// PrimaryRequests and PrimaryBad count the primary's over the same time.
	PrimaryRequests int64 `json:"primaryRequests"`
	PrimaryBad      int64 `json:"primaryBad"`
	// LogWorse is the natural log of the e-value against "the canary is within tolerance":
	// log(1/falseRollbackRate) or more rolls back.
	LogWorse float64 `json:"logWorse"`
	// LogNotWorse is the natural log of the e-value against "the canary is worse than tolerance":
	// log(1/falseRollbackRate) or more concludes that it is not.
	LogNotWorse float64 `json:"logNotWorse"`
}

// CanaryList is a list of Canaries.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}
