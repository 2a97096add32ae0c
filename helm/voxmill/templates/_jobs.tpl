{{/* Env entries of the API for object storage, batch jobs, webhooks and bucket ingest. */}}
{{- define "voxmill.env.jobs" -}}
{{- $o := .Values.objectStore -}}
{{- $w := .Values.webhooks -}}
{{- $i := .Values.ingest -}}
{{- if $o.enabled }}
- name: VOXMILL_OBJECT_STORE
  value: "s3"
- name: VOXMILL_S3_ENDPOINT_URL
  value: {{ $o.endpoint | quote }}
- name: VOXMILL_S3_PUBLIC_ENDPOINT_URL
  value: {{ $o.publicEndpoint | quote }}
- name: VOXMILL_S3_REGION
  value: {{ $o.region | quote }}
- name: VOXMILL_AUDIO_STORE
  value: {{ ternary "objects" "database" $o.segmentAudio | quote }}
- name: VOXMILL_AUDIO_BUCKET
  value: {{ $o.audioBucket | quote }}
- name: VOXMILL_JOB_BUCKETS
  value: {{ join "," $o.jobBuckets | quote }}
- name: VOXMILL_PRESIGN_TTL_S
  value: {{ int $o.presignSeconds | quote }}
{{- if and $o.credentials.existingSecret (not $o.credentials.workloadIdentity) }}
- name: VOXMILL_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $o.credentials.existingSecret | quote }}
      key: {{ $o.credentials.accessKeyIdKey | quote }}
- name: VOXMILL_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $o.credentials.existingSecret | quote }}
      key: {{ $o.credentials.secretAccessKeyKey | quote }}
{{- end }}
{{- end }}
{{- if $w.existingSecret }}
- name: VOXMILL_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $w.existingSecret | quote }}
      key: {{ $w.secretKey | quote }}
{{- end }}
- name: VOXMILL_WEBHOOK_ALLOW_NETWORKS
  value: {{ join "," $w.allowNetworks | quote }}
- name: VOXMILL_WEBHOOK_RETRY_FOR_S
  value: {{ int $w.retryForSeconds | quote }}
{{- if $i.bucket }}
- name: VOXMILL_INGEST_BUCKET
  value: {{ $i.bucket | quote }}
- name: VOXMILL_INGEST_PREFIX
  value: {{ $i.prefix | quote }}
- name: VOXMILL_INGEST_OUTPUT_BUCKET
  value: {{ $i.outputBucket | quote }}
- name: VOXMILL_INGEST_OUTPUT_PREFIX
  value: {{ $i.outputPrefix | quote }}
- name: VOXMILL_INGEST_VOICE
  value: {{ $i.voice | quote }}
- name: VOXMILL_INGEST_FORMAT
  value: {{ $i.format | quote }}
- name: VOXMILL_INGEST_SUBTITLES
  value: {{ join "," $i.subtitles | quote }}
- name: VOXMILL_INGEST_CALLBACK_URL
  value: {{ $i.callbackUrl | quote }}
- name: VOXMILL_INGEST_POLL_S
  value: {{ ternary (int $i.poller.intervalSeconds) 0 $i.poller.enabled | quote }}
{{- if $i.events.enabled }}
- name: VOXMILL_INGEST_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $i.events.existingSecret | quote }}
      key: {{ $i.events.tokenKey | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Errors of the object store, webhook and ingest values (included by voxmill.validateValues). */}}
{{- define "voxmill.validateJobs" -}}
{{- $o := .Values.objectStore -}}
{{- $i := .Values.ingest -}}
{{- if and $o.enabled (not $o.endpoint) }}
objectStore: set objectStore.endpoint (OCI: https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com).
{{- end }}
{{- if and $o.enabled (not $o.credentials.existingSecret) (not $o.credentials.workloadIdentity) }}
objectStore: create a Secret with the keys 'access-key-id' and 'secret-access-key' (an OCI Customer Secret Key) and set objectStore.credentials.existingSecret, or set objectStore.credentials.workloadIdentity=true.
{{- end }}
{{- if and $o.segmentAudio (not $o.enabled) }}
objectStore.segmentAudio: needs objectStore.enabled=true.
{{- end }}
{{- if and (or $i.events.enabled $i.poller.enabled) (not $i.bucket) }}
ingest: set ingest.bucket, the input bucket to watch.
{{- end }}
{{- if and (or $i.events.enabled $i.poller.enabled) (not $o.enabled) }}
ingest: bucket ingest reads and writes buckets; set objectStore.enabled=true.
{{- end }}
{{- if and $i.events.enabled (not $i.events.existingSecret) }}
ingest.events: create a Secret with the key 'ingest-token' (a random string, also the HTTP Basic password of the OCI Notifications subscription URL) and set ingest.events.existingSecret.
{{- end }}
{{- if and $i.callbackUrl (not .Values.webhooks.existingSecret) }}
ingest.callbackUrl: callbacks are signed; set webhooks.existingSecret.
{{- end }}
{{- end -}}
