package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertProviderType names the service an AlertProvider posts to.
// +kubebuilder:validation:Enum=slack;msteams;discord;webhook
type AlertProviderType string

// The alert provider types.
const (
	// AlertProviderSlack posts a Block Kit message to a Slack incoming webhook.
	AlertProviderSlack AlertProviderType = "slack"
	// AlertProviderMSTeams posts an Adaptive Card to a Microsoft Teams workflow webhook.
	AlertProviderMSTeams AlertProviderType = "msteams"
	// AlertProviderDiscord posts an embed to a Discord webhook.
	AlertProviderDiscord AlertProviderType = "discord"
	// AlertProviderWebhook posts the message as JSON to any URL, with a bearer token if given.
	AlertProviderWebhook AlertProviderType = "webhook"
)

// AlertProvider is where Canaries send their alerts: one team configures the Slack channel or
// the Teams webhook once, and every Canary that names it in analysis.alerts uses it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ap,categories=trafficctl
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AlertProviderSpec `json:"spec"`
}

// AlertProviderSpec says where alerts go and how they read.
//
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) || has(self.address)",message="an AlertProvider needs secretRef (a Secret with key address) or address"
type AlertProviderSpec struct {
	// Type of the service.
	Type AlertProviderType `json:"type"`

	// SecretRef names a Secret in the AlertProvider's namespace: key address is the webhook URL
	// (it carries the service's credentials, so keep it here rather than in address), and the
	// optional keys token (sent as a bearer token by type webhook) and proxy (a proxy URL). Its
	// values never appear in status, events or logs.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// Address is the webhook URL, for a receiver whose URL is not a secret; the Secret's key
	// address takes precedence.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('http://') || self.startsWith('https://'))",message="address must be an http or https URL"
	// +optional
	Address string `json:"address,omitempty"`

	// Proxy is the URL of an HTTP proxy the requests go through; the Secret's key proxy takes
	// precedence.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="proxy must be a URL such as http://proxy.internal:3128"
	// +optional
	Proxy string `json:"proxy,omitempty"`

	// Channel overrides the Slack channel of the incoming webhook.
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Channel string `json:"channel,omitempty"`

	// Username overrides the name the message is posted under (Slack, Discord).
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Username string `json:"username,omitempty"`

	// Headline is a Go template for the message's first line, over the message's fields:
	// {{ .Namespace }}, {{ .Canary }}, {{ .Reason }}, {{ .Severity }}, {{ .Text }} and
	// {{ field "Failing check" }}; such as "{{ .Namespace }}/{{ .Canary }}: {{ .Reason }}".
	// Defaults to a sentence such as "shop/podinfo rolled back".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Headline string `json:"headline,omitempty"`

	// Text is a Go template for the message's body, over the same fields; defaults to the event.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Text string `json:"text,omitempty"`
}

// AlertProviderList is a list of AlertProviders.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}
