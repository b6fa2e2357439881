{{/*
Environment shared by every service: logging, telemetry, the admin server and
Kafka. Takes the including chart's root context.
*/}}
{{- define "mlops-common.commonEnv" -}}
{{- include "mlops-common.serviceEnv" (dict "root" . "kafka" true) -}}
{{- end -}}

{{/*
mlops-common.commonEnv with Kafka optional: call with
  (dict "root" . "kafka" <bool>)
A service that does not use Kafka gets no KAFKA_* settings (and does not need
global.kafka.brokers). A Kafka service also gets KAFKA_CREATE_TOPICS
(global.kafka.createTopics, default true) and KAFKA_REPLICATION_FACTOR
(global.kafka.replicationFactor, default -1: the broker's default).
*/}}
{{- define "mlops-common.serviceEnv" -}}
{{- $root := .root -}}
{{- $global := $root.Values.global | default dict -}}
{{- $otel := $global.otel | default dict -}}
{{- $kafka := $global.kafka | default dict -}}
- name: RUST_LOG
  value: {{ $root.Values.logLevel | default $global.logLevel | default "info,deltalake_core=warn,buoyant_kernel=warn" | quote }}
- name: LOG_FORMAT
  value: {{ $root.Values.logFormat | default $global.logFormat | default "json" | quote }}
- name: ADMIN_ADDR
  value: {{ printf "0.0.0.0:%d" (int $root.Values.admin.port) | quote }}
{{- if .kafka }}
{{- $createTopics := true -}}
{{- if hasKey $kafka "createTopics" }}{{- $createTopics = $kafka.createTopics -}}{{- end -}}
{{- $replicationFactor := -1 -}}
{{- if hasKey $kafka "replicationFactor" }}{{- $replicationFactor = int64 $kafka.replicationFactor -}}{{- end -}}
{{- if or (eq (int64 $replicationFactor) 0) (lt (int64 $replicationFactor) -1) }}
{{- fail (printf "global.kafka.replicationFactor must be at least 1, or -1 for the broker's default; got %d" (int64 $replicationFactor)) }}
{{- end }}
- name: KAFKA_BROKERS
  value: {{ required "global.kafka.brokers is required" $kafka.brokers | quote }}
- name: KAFKA_CREATE_TOPICS
  value: {{ ternary "true" "false" (eq (toString $createTopics) "true") | quote }}
- name: KAFKA_REPLICATION_FACTOR
  value: {{ int64 $replicationFactor | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ $root.Chart.Name | quote }}
{{- with $otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.version=%s,k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)" (include "mlops-common.imageTag" $root) | quote }}
{{- end -}}

{{/*
The lake: LAKE_URL plus the storage settings and credentials of global.lake.
Takes the including chart's root context.
*/}}
{{- define "mlops-common.lakeEnv" -}}
{{- $lake := (.Values.global | default dict).lake | default dict -}}
- name: LAKE_URL
  value: {{ required "global.lake.url is required (s3://bucket/, az://container/ or file:///path)" $lake.url | quote }}
{{- with include "mlops-common.storageEnv" (dict "root" .) | trim }}
{{ . }}
{{- end }}
{{- end -}}

{{/* envFrom for the lake Secret when it is used whole (no key mapping). */}}
{{- define "mlops-common.lakeEnvFrom" -}}
{{- include "mlops-common.storageEnvFrom" (dict "root" .) -}}
{{- end -}}

{{/*
Object storage without a URL: the non-secret S3/Azure settings of
global.lake as plain env; credentials only by reference to an existing
Secret. Call with
  (dict "root" . "credentials" <dict with existingSecret and keys>)
where credentials (same shape as global.lake.credentials) replace
global.lake.credentials when their existingSecret is set: a chart whose
storage is not the lake can name its own Secret this way.
*/}}
{{- define "mlops-common.storageEnv" -}}
{{- $lake := (.root.Values.global | default dict).lake | default dict -}}
{{- $s3 := $lake.s3 | default dict -}}
{{- $azure := $lake.azure | default dict -}}
{{- $creds := $lake.credentials | default dict -}}
{{- if (.credentials | default dict).existingSecret }}{{- $creds = .credentials -}}{{- end -}}
{{- with $s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with $s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- if $s3.allowHttp }}
- name: AWS_ALLOW_HTTP
  value: "true"
{{- end }}
{{- with $azure.accountName }}
- name: AZURE_STORAGE_ACCOUNT_NAME
  value: {{ . | quote }}
{{- end }}
{{- if and $creds.existingSecret $creds.keys }}
{{- range $envName, $key := $creds.keys }}
- name: {{ $envName }}
  valueFrom:
    secretKeyRef:
      name: {{ $creds.existingSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
envFrom for the storage Secret when it is used whole (no key mapping). Same
arguments as mlops-common.storageEnv.
*/}}
{{- define "mlops-common.storageEnvFrom" -}}
{{- $lake := (.root.Values.global | default dict).lake | default dict -}}
{{- $creds := $lake.credentials | default dict -}}
{{- if (.credentials | default dict).existingSecret }}{{- $creds = .credentials -}}{{- end -}}
{{- if and $creds.existingSecret (not $creds.keys) }}
- secretRef:
    name: {{ $creds.existingSecret }}
{{- end }}
{{- end -}}

{{/*
Fails the render when extraEnv carries a literal value for something that
looks like a credential (a *_FILE name holds a path, so it may), or a URL
with a literal password in it such as a DATABASE_URL (a $(VAR) reference is
fine): such values belong in a Secret (valueFrom).
*/}}
{{- define "mlops-common.assertNoInlineSecrets" -}}
{{- range .Values.extraEnv }}
{{- if and (hasKey . "value") (regexMatch "(?i)(SECRET|PASSWORD|PASSWD|TOKEN|ACCOUNT_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)" .name) (not (hasSuffix "_FILE" (upper .name))) }}
{{- fail (printf "extraEnv %s has an inline value: reference a Secret with valueFrom.secretKeyRef instead" .name) }}
{{- end }}
{{- if and (hasKey . "value") (regexMatch "^[A-Za-z][A-Za-z0-9+.-]*://[^/@\\s:]*:[^/@\\s$][^/@\\s]*@" (toString .value)) }}
{{- fail (printf "extraEnv %s has an inline value with a password in its URL: reference a Secret with valueFrom.secretKeyRef instead" .name) }}
{{- end }}
{{- end }}
{{- end -}}
