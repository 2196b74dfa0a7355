package rollout

// Condition types. Ready, Reconciling and Stalled follow kstatus, so Argo CD, Flux and
// `kubectl wait --for=condition=Ready` understand a Canary; Promoted says whether the last
// revision made it to the primary; AlertsReady, present only on Canaries with alerts, whether
// every alert can be delivered as configured.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	ConditionPromoted    = "Promoted"
	ConditionAlertsReady = "AlertsReady"
)

// Reasons of the Ready condition and of the events, one vocabulary for the controller, the CLI
// (explain reads them back) and the simulation.
const (
	// The rollout's own course.
	ReasonInitializing        = "Initializing"
	ReasonInitialized         = "Initialized"
	ReasonNewRevision         = "NewRevision"
	ReasonWaitingForCanary    = "WaitingForCanary"
	ReasonWaitingForRoute     = "WaitingForRoute"
	ReasonAnalysing           = "Analysing"
	ReasonStepAdvanced        = "StepAdvanced"
	ReasonCheckFailed         = "CheckFailed"
	ReasonAnalysisUnavailable = "AnalysisUnavailable"
	ReasonAnalysisRestored    = "AnalysisRestored"
	ReasonNoData              = "NoData"
	ReasonPromoting           = "Promoting"
	ReasonSwitching           = "Switching"
	ReasonFinalising          = "Finalising"
	ReasonSucceeded           = "Succeeded"
	ReasonRolledBack          = "RolledBack"
	ReasonProgressDeadline    = "ProgressDeadlineExceeded"

	// What stops a Canary before any rollout: the user must change something.
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonTargetNotFound      = "TargetNotFound"
	ReasonInvalidRoute        = "InvalidRoute"
	ReasonInvalidTarget       = "InvalidTarget"
	ReasonProviderUnavailable = "ProviderUnavailable"
	ReasonAutoscalerNotFound  = "AutoscalerNotFound"
	ReasonInvalidAutoscaler   = "InvalidAutoscaler"
	ReasonSuspended           = "Suspended"
	ReasonHandingBack         = "HandingBack"
	ReasonHandBackRefused     = "HandBackRefused"
	ReasonPrimaryScaled       = "PrimaryScaled"
	ReasonRouteDrift          = "RouteDrift"
	ReasonConfigNotFound      = "ConfigNotFound"
	ReasonConfigCopyMissing   = "ConfigCopyMissing"
	ReasonCrossNamespaceRef   = "CrossNamespaceRef"
	ReasonURLRefused          = "URLRefused"
	ReasonReconcileError      = "ReconcileError"

	// Webhook gates.
	ReasonWaitingForApproval = "WaitingForApproval"
	ReasonWebhookFailed      = "WebhookFailed"
	ReasonRollbackWebhook    = "RollbackRequested"

	// Manual requests.
	ReasonPaused             = "Paused"
	ReasonResumed            = "Resumed"
	ReasonPromotionRequested = "PromotionRequested"
	ReasonAborted            = "Aborted"
	ReasonRetryRequested     = "RetryRequested"
	ReasonRequestRefused     = "RequestRefused"
	ReasonRequestIgnored     = "RequestIgnored"
	ReasonInvalidRequest     = "InvalidRequest"

	// Alerts and metric providers.
	ReasonAlertsConfigured       = "AlertsConfigured"
	ReasonInvalidAlert           = "InvalidAlertProvider"
	ReasonAlertDeliveryFailed    = "AlertDeliveryFailed"
	ReasonInsecureMetricProvider = "InsecureMetricProvider"
)
