{{/* vim: set filetype=mustache: */}}

{{/* The chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "voxmill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-qualified name every resource starts with. */}}
{{- define "voxmill.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: (dict "ctx" $ "component" "api"). */}}
{{- define "voxmill.componentName" -}}
{{- printf "%s-%s" (include "voxmill.fullname" .ctx | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "voxmill.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "voxmill.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voxmill
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the release's pods (stable across upgrades). */}}
{{- define "voxmill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxmill.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "voxmill.componentLabels" -}}
{{ include "voxmill.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "voxmill.componentSelectorLabels" -}}
{{ include "voxmill.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "voxmill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "voxmill.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference: (dict "image" .Values.api.image "ctx" $ "defaultTag" "0.1.0").
A digest wins over a tag; an empty tag falls back to defaultTag (the chart's appVersion).
*/}}
{{- define "voxmill.image" -}}
{{- $registry := .image.registry | default .ctx.Values.global.imageRegistry -}}
{{- $repository := .image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.image.tag | default .defaultTag | toString) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets for every pod. */}}
{{- define "voxmill.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
A secret value that survives upgrades: the given value, else the one already stored in the
cluster, else a new random one. (dict "ctx" $ "secret" "name" "key" "k" "value" "" "length" 32)
*/}}
{{- define "voxmill.secretValue" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing (hasKey ($existing.data | default dict) .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int (.length | default 32)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret (and key) holding the database URL: (list name key). */}}
{{- define "voxmill.database.secretRef" -}}
{{- if .Values.postgresql.enabled -}}
{{- list (include "voxmill.componentName" (dict "ctx" . "component" "postgresql")) "database-url" | toJson -}}
{{- else if .Values.externalDatabase.url -}}
{{- list (include "voxmill.componentName" (dict "ctx" . "component" "external")) "database-url" | toJson -}}
{{- else -}}
{{- list .Values.externalDatabase.existingSecret .Values.externalDatabase.existingSecretUrlKey | toJson -}}
{{- end -}}
{{- end -}}

{{/* The Secret (and keys) holding the broker URLs: (list name amqpKey managementKey). */}}
{{- define "voxmill.broker.secretRef" -}}
{{- if .Values.rabbitmq.enabled -}}
{{- list (include "voxmill.componentName" (dict "ctx" . "component" "rabbitmq")) "broker-url" "broker-management-url" | toJson -}}
{{- else if .Values.externalBroker.url -}}
{{- list (include "voxmill.componentName" (dict "ctx" . "component" "external")) "broker-url" "broker-management-url" | toJson -}}
{{- else -}}
{{- list .Values.externalBroker.existingSecret .Values.externalBroker.existingSecretUrlKey .Values.externalBroker.existingSecretManagementUrlKey | toJson -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the API keys and the TorchServe gateway token. */}}
{{- define "voxmill.auth.secretName" -}}
{{- .Values.auth.existingSecret | default (include "voxmill.componentName" (dict "ctx" . "component" "auth")) -}}
{{- end -}}

{{/* Env entries for the database URL. */}}
{{- define "voxmill.env.database" -}}
{{- $ref := include "voxmill.database.secretRef" . | fromJsonArray -}}
- name: VOXMILL_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ index $ref 0 | quote }}
      key: {{ index $ref 1 | quote }}
{{- end -}}

{{/* Env entries for the broker URL. */}}
{{- define "voxmill.env.broker" -}}
{{- $ref := include "voxmill.broker.secretRef" . | fromJsonArray -}}
- name: VOXMILL_BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ index $ref 0 | quote }}
      key: {{ index $ref 1 | quote }}
{{- end -}}

{{/* Env entry for the token that the TorchServe gateway demands. */}}
{{- define "voxmill.env.torchserveToken" -}}
- name: VOXMILL_TORCHSERVE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "voxmill.auth.secretName" . | quote }}
      key: {{ .Values.auth.torchserveTokenKey | quote }}
{{- end -}}

{{/* The in-cluster URL of a TorchServe pool's gateway: (dict "ctx" $ "pool" "gpu"). */}}
{{- define "voxmill.torchserve.url" -}}
{{- printf "http://%s:%d" (include "voxmill.componentName" (dict "ctx" .ctx "component" (printf "torchserve-%s" .pool))) (int .ctx.Values.torchserve.service.port) -}}
{{- end -}}

{{/* The pool that serves voices not listed anywhere: the GPU pool when enabled. */}}
{{- define "voxmill.torchserve.defaultPool" -}}
{{- if .Values.torchserve.gpu.enabled -}}gpu{{- else -}}cpu{{- end -}}
{{- end -}}

{{/* VOXMILL_VOICE_ROUTES: each listed voice to its pool's URL, as a JSON object. */}}
{{- define "voxmill.torchserve.voiceRoutes" -}}
{{- $routes := dict -}}
{{- range $pool := list "gpu" "cpu" -}}
{{- $values := index $.Values.torchserve $pool -}}
{{- if $values.enabled -}}
{{- range $values.voices -}}
{{- $_ := set $routes . (include "voxmill.torchserve.url" (dict "ctx" $ "pool" $pool)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $routes -}}
{{- end -}}

{{/* VOXMILL_TORCHSERVE_POOLS: each enabled pool to its gateway URL, as a JSON object. */}}
{{- define "voxmill.torchserve.pools" -}}
{{- $pools := dict -}}
{{- range $pool := list "gpu" "cpu" -}}
{{- if (index $.Values.torchserve $pool).enabled -}}
{{- $_ := set $pools $pool (include "voxmill.torchserve.url" (dict "ctx" $ "pool" $pool)) -}}
{{- end -}}
{{- end -}}
{{- toJson $pools -}}
{{- end -}}

{{/* Env shared by the API and the workers. */}}
{{- define "voxmill.env.common" -}}
- name: VOXMILL_MODE
  value: distributed
- name: VOXMILL_ENVIRONMENT
  value: {{ .Values.config.environment | quote }}
- name: VOXMILL_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: VOXMILL_DEFAULT_VOICE
  value: {{ .Values.config.defaultVoice | quote }}
- name: VOXMILL_QUEUE_PREFIX
  value: {{ .Values.config.queuePrefix | quote }}
- name: VOXMILL_DELIVERY_LIMIT
  value: {{ .Values.config.deliveryLimit | quote }}
- name: VOXMILL_TORCHSERVE_TIMEOUT_S
  value: {{ .Values.config.torchserveTimeoutSeconds | quote }}
- name: VOXMILL_TORCHSERVE_URL
  value: {{ include "voxmill.torchserve.url" (dict "ctx" . "pool" (include "voxmill.torchserve.defaultPool" .)) | quote }}
- name: VOXMILL_VOICE_ROUTES
  value: {{ include "voxmill.torchserve.voiceRoutes" . | quote }}
- name: VOXMILL_TORCHSERVE_POOLS
  value: {{ include "voxmill.torchserve.pools" . | quote }}
- name: VOXMILL_DATA_DIR
  value: /tmp/voxmill
{{ include "voxmill.env.broker" . }}
{{ include "voxmill.env.torchserveToken" . }}
{{- with .Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget spec body from a pdb values block. */}}
{{- define "voxmill.pdbSpec" -}}
{{- if .maxUnavailable -}}
maxUnavailable: {{ .maxUnavailable }}
{{- else -}}
minAvailable: {{ .minAvailable }}
{{- end -}}
{{- end -}}

{{/* The worker lanes, as a JSON list: [""] (one Deployment for both lanes) or ["bulk",
"interactive"] (scaling.interactiveWorker.enabled: a Deployment per lane). */}}
{{- define "voxmill.worker.lanes" -}}
{{- if .Values.scaling.interactiveWorker.enabled -}}
["bulk", "interactive"]
{{- else -}}
[""]
{{- end -}}
{{- end -}}

{{/* The component name of a worker lane's Deployment. */}}
{{- define "voxmill.worker.component" -}}
{{- if eq . "interactive" -}}worker-interactive{{- else -}}worker{{- end -}}
{{- end -}}
