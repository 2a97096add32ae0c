{{/*
Fail early, with what to change, on values that would install a stack that cannot work.
values.schema.json (generated from the @param/@schema comments in values.yaml) checks each value
alone: types, words, ranges, formats, unknown keys. This checks how values relate to each other.
*/}}
{{- define "voxmill.validateValues" -}}
{{- $errors := list -}}
{{- $v := .Values -}}

{{- if not (or $v.postgresql.enabled $v.externalDatabase.url $v.externalDatabase.existingSecret) -}}
{{- $errors = append $errors "database: no PostgreSQL configured. Create a Secret with the key 'database-url' (postgresql+psycopg://USER:PASSWORD@HOST:5432/DB) and set externalDatabase.existingSecret to its name, or set externalDatabase.url, or postgresql.enabled=true for a single-node trial." -}}
{{- end -}}
{{- if and $v.postgresql.enabled $v.externalDatabase.url -}}
{{- $errors = append $errors "database: both postgresql.enabled=true and externalDatabase.url are set; choose one." -}}
{{- end -}}

{{- if not (or $v.rabbitmq.enabled $v.externalBroker.url $v.externalBroker.existingSecret) -}}
{{- $errors = append $errors "broker: no RabbitMQ configured. Create a Secret with the keys 'broker-url' (amqp://USER:PASSWORD@HOST:5672/VHOST) and 'broker-management-url' (http://USER:PASSWORD@HOST:15672/VHOST) and set externalBroker.existingSecret to its name, or set externalBroker.url, or rabbitmq.enabled=true for a single-node trial." -}}
{{- end -}}
{{- if and $v.rabbitmq.enabled $v.externalBroker.url -}}
{{- $errors = append $errors "broker: both rabbitmq.enabled=true and externalBroker.url are set; choose one." -}}
{{- end -}}
{{- if and $v.worker.keda.enabled (not $v.rabbitmq.enabled) $v.externalBroker.url (not $v.externalBroker.managementUrl) -}}
{{- $errors = append $errors "worker.keda: KEDA counts ready and unacknowledged tasks through the RabbitMQ management API; set externalBroker.managementUrl (http://USER:PASSWORD@HOST:15672/VHOST)." -}}
{{- end -}}
{{- if and $v.worker.keda.enabled (gt (int $v.worker.keda.minReplicaCount) (int $v.worker.keda.maxReplicaCount)) -}}
{{- $errors = append $errors "worker.keda: minReplicaCount is above maxReplicaCount." -}}
{{- end -}}

{{- if and $v.scaling.api.enabled $v.api.autoscaling.enabled -}}
{{- $errors = append $errors "scaling.api: KEDA and api.autoscaling would both scale the API; set api.autoscaling.enabled=false." -}}
{{- end -}}
{{- range $stage := list "api" "interactiveWorker" "torchserve" -}}
{{- $s := index $v.scaling $stage -}}
{{- if gt (int $s.minReplicaCount) (int $s.maxReplicaCount) -}}
{{- $errors = append $errors (printf "scaling.%s: minReplicaCount is above maxReplicaCount." $stage) -}}
{{- end -}}
{{- end -}}

{{- $timeout := int $v.config.torchserveTimeoutSeconds -}}
{{- if le (int $v.worker.terminationGracePeriodSeconds) (add $timeout 10) -}}
{{- $errors = append $errors (printf "worker.terminationGracePeriodSeconds (%d) must exceed the longest synthesis, config.torchserveTimeoutSeconds (%d), by more than 10 s, or scale-down kills tasks in flight." (int $v.worker.terminationGracePeriodSeconds) $timeout) -}}
{{- end -}}
{{- if le (int $v.torchserve.terminationGracePeriodSeconds) (add $timeout 10) -}}
{{- $errors = append $errors (printf "torchserve.terminationGracePeriodSeconds (%d) must exceed config.torchserveTimeoutSeconds (%d) by more than 10 s, so a stopping pod finishes the syntheses it accepted." (int $v.torchserve.terminationGracePeriodSeconds) $timeout) -}}
{{- end -}}

{{- if not (or $v.torchserve.gpu.enabled $v.torchserve.cpu.enabled) -}}
{{- $errors = append $errors "torchserve: enable torchserve.gpu and/or torchserve.cpu; the workers need a voice server." -}}
{{- end -}}
{{- if and $v.torchserve.gpu.enabled $v.torchserve.cpu.enabled -}}
{{- range $v.torchserve.gpu.voices -}}
{{- if has . $v.torchserve.cpu.voices -}}
{{- $errors = append $errors (printf "torchserve: voice %q is listed in both torchserve.gpu.voices and torchserve.cpu.voices; route it to one pool." .) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- range $v.auth.apiKeys -}}
{{- if or (lt (len .) 16) (has (lower .) (list "changeme" "change-me" "secret" "voxmill" "guest")) -}}
{{- $errors = append $errors "auth.apiKeys: every key must be a random string of at least 16 characters (leave the list empty to have one generated)." -}}
{{- end -}}
{{- end -}}
{{- if and $v.auth.torchserveToken (lt (len $v.auth.torchserveToken) 16) -}}
{{- $errors = append $errors "auth.torchserveToken: must be at least 16 characters (leave empty to have one generated)." -}}
{{- end -}}

{{- if and $v.api.autoscaling.enabled (gt (int $v.api.autoscaling.minReplicas) (int $v.api.autoscaling.maxReplicas)) -}}
{{- $errors = append $errors "api.autoscaling: minReplicas is above maxReplicas." -}}
{{- end -}}
{{- if and $v.api.ingress.enabled $v.api.ingress.tls (not $v.api.ingress.hostname) -}}
{{- $errors = append $errors "api.ingress: TLS needs api.ingress.hostname." -}}
{{- end -}}

{{- /* Object store, webhooks, bucket ingest (templates/_jobs.tpl): one error per line. */ -}}
{{- range (include "voxmill.validateJobs" . | trim | splitList "\n") -}}
{{- if . -}}
{{- $errors = append $errors . -}}
{{- end -}}
{{- end -}}

{{- if $errors -}}
{{- printf "\n\nVALUES VALIDATION:\n  - %s\n" (join "\n  - " $errors) | fail -}}
{{- end -}}
{{- end -}}
