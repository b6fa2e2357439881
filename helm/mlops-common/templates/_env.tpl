{{/*
Environment shared by every service: logging, telemetry, the admin server and
Kafka. Takes the including chart's root context.
*/}}
{{- define "mlops-common.commonEnv" -}}
{{- $global := .Values.global | default dict -}}
{{- $otel := $global.otel | default dict -}}
{{- $kafka := $global.kafka | default dict -}}
- name: RUST_LOG
  value: {{ .Values.logLevel | default $global.logLevel | default "info" | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | default $global.logFormat | default "json" | quote }}
- name: ADMIN_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.admin.port) | quote }}
- name: KAFKA_BROKERS
  value: {{ required "global.kafka.brokers is required" $kafka.brokers | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .Chart.Name | quote }}
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
  value: {{ printf "service.version=%s,k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)" (include "mlops-common.imageTag" .) | quote }}
{{- end -}}

{{/*
Object storage: the lake URL and the non-secret S3/Azure settings as plain
env; credentials only by reference to an existing Secret.
*/}}
{{- define "mlops-common.lakeEnv" -}}
{{- $lake := (.Values.global | default dict).lake | default dict -}}
{{- $s3 := $lake.s3 | default dict -}}
{{- $azure := $lake.azure | default dict -}}
{{- $creds := $lake.credentials | default dict -}}
- name: LAKE_URL
  value: {{ required "global.lake.url is required (s3://bucket/, az://container/ or file:///path)" $lake.url | quote }}
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

{{/* envFrom for the lake Secret when it is used whole (no key mapping). */}}
{{- define "mlops-common.lakeEnvFrom" -}}
{{- $creds := (((.Values.global | default dict).lake | default dict).credentials) | default dict -}}
{{- if and $creds.existingSecret (not $creds.keys) }}
- secretRef:
    name: {{ $creds.existingSecret }}
{{- end }}
{{- end -}}

{{/*
Fails the render when extraEnv carries a literal value for something that
looks like a credential: such values belong in a Secret (valueFrom).
*/}}
{{- define "mlops-common.assertNoInlineSecrets" -}}
{{- range .Values.extraEnv }}
{{- if and (hasKey . "value") (regexMatch "(?i)(SECRET|PASSWORD|PASSWD|TOKEN|ACCOUNT_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)" .name) }}
{{- fail (printf "extraEnv %s has an inline value: reference a Secret with valueFrom.secretKeyRef instead" .name) }}
{{- end }}
{{- end }}
{{- end -}}
