{{/* The chart's name, overridable with nameOverride. */}}
{{- define "trafficctl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of the release's objects: the release name, unless it lacks the chart's name. */}}
{{- define "trafficctl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "trafficctl.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "trafficctl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trafficctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The selector of one shard's Deployment (dict root, shard): the default shard's is the chart's
selector, as it was before shards; another shard's has an instance of its own, so no two
Deployments select each other's pods.
*/}}
{{- define "trafficctl.shardSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ include "trafficctl.name" .root }}
app.kubernetes.io/instance: {{ printf "%s-shard-%s" .root.Release.Name .shard | trunc 63 | trimSuffix "-" }}
{{- else -}}
{{ include "trafficctl.selectorLabels" .root }}
{{- end -}}
{{- end -}}

{{/* Labels on every controller pod, of every shard: the metrics Service selects them. */}}
{{- define "trafficctl.podLabels" -}}
trafficctl.io/controller: {{ include "trafficctl.fullname" . }}
{{- end -}}

{{- define "trafficctl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "trafficctl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "trafficctl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "trafficctl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
What the controller may do, in the namespaces it watches: exactly the rules of
config/rbac/role.yaml, which controller-gen generates from the controllers' kubebuilder markers,
except the Lease rule, which the leader election Role grants in the release namespace alone.
charts/chart_test.go fails when the two differ: after a marker changes, copy the new rules here.
*/}}
{{- define "trafficctl.rules" -}}
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [create, delete, get, list, watch]
- apiGroups: [""]
  resources: [services]
  verbs: [create, get, list, patch, watch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [create, get, list, patch, watch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [create, get, list, patch, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [create, get, list, patch, watch]
- apiGroups: [networking.istio.io]
  resources: [destinationrules, virtualservices]
  verbs: [create, get, list, patch, watch]
- apiGroups: [trafficctl.io]
  resources: [alertproviders]
  verbs: [get]
- apiGroups: [trafficctl.io]
  resources: [metrictemplates]
  verbs: [get, list, watch]
- apiGroups: [trafficctl.io]
  resources: [canaries]
  verbs: [get, list, patch, watch]
- apiGroups: [trafficctl.io]
  resources: [canaries/finalizers]
  verbs: [update]
- apiGroups: [trafficctl.io]
  resources: [canaries/status]
  verbs: [patch]
{{- end -}}

{{/* The leader election Lease (trafficctl.io, in the release namespace). */}}
{{- define "trafficctl.leaderElectionRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create, get, list, patch, update, watch]
{{- end -}}
