{{/* The database settings, shared by the Deployment and the migration Job. */}}
{{- define "model-registry.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "model-registry: database.existingSecret is required: the name of an existing Secret holding DATABASE_URL (postgres://user:password@host:5432/db)" .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
- name: DATABASE_MAX_CONNECTIONS
  value: {{ .Values.database.maxConnections | int64 | quote }}
- name: DATABASE_WAIT_SECONDS
  value: {{ .Values.database.waitSeconds | int64 | quote }}
{{- end -}}

{{- define "model-registry.env" -}}
- name: REGISTRY_GRPC_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.grpc.port) | quote }}
- name: REGISTRY_HTTP_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.http.port) | quote }}
{{ include "model-registry.databaseEnv" . }}
- name: REGISTRY_MIGRATE
  value: {{ not .Values.migrations.job | quote }}
- name: ARTIFACTS_URL
  value: {{ required "model-registry: artifacts.url is required (s3://bucket/prefix, az://container/prefix or file:///path)" .Values.artifacts.url | quote }}
- name: REGISTRY_EVENTS
  value: {{ ternary "kafka" "off" .Values.events.enabled | quote }}
- name: REGISTRY_EVENTS_TOPIC
  value: {{ .Values.events.topic | quote }}
- name: REGISTRY_EVENTS_TOPIC_PARTITIONS
  value: {{ .Values.events.topicPartitions | int64 | quote }}
- name: REGISTRY_OUTBOX_INTERVAL_MS
  value: {{ .Values.events.outboxIntervalMs | int64 | quote }}
- name: REGISTRY_PROTECTED_ALIASES
  value: {{ join "," .Values.protectedAliases | quote }}
- name: REGISTRY_MAX_ARTIFACT_BYTES
  value: {{ .Values.maxArtifactBytes | int64 | quote }}
{{- if .Values.bootstrapToken.existingSecret }}
- name: REGISTRY_BOOTSTRAP_TOKEN_FILE
  value: {{ include "model-registry.bootstrapTokenFile" . | quote }}
{{- end }}
{{- with include "mlops-common.storageEnv" (dict "root" . "credentials" .Values.artifacts.credentials) | trim }}
{{ . }}
{{- end }}
{{- end -}}

{{- define "model-registry.envFrom" -}}
{{- include "mlops-common.storageEnvFrom" (dict "root" . "credentials" .Values.artifacts.credentials) -}}
{{- end -}}

{{/* The bootstrap token Secret, mounted read-only as a file. */}}
{{- define "model-registry.bootstrapTokenDir" -}}
/var/run/secrets/mlops/bootstrap-token
{{- end -}}

{{- define "model-registry.bootstrapTokenFile" -}}
{{- printf "%s/token" (include "model-registry.bootstrapTokenDir" .) -}}
{{- end -}}

{{- define "model-registry.volumes" -}}
{{- if .Values.bootstrapToken.existingSecret }}
- name: bootstrap-token
  secret:
    secretName: {{ .Values.bootstrapToken.existingSecret }}
    items:
      - key: {{ .Values.bootstrapToken.key }}
        path: token
    # 0440: readable by the pod's group (fsGroup 65532) only.
    defaultMode: 288
{{- end }}
{{- end -}}

{{- define "model-registry.volumeMounts" -}}
{{- if .Values.bootstrapToken.existingSecret }}
- name: bootstrap-token
  mountPath: {{ include "model-registry.bootstrapTokenDir" . }}
  readOnly: true
{{- end }}
{{- end -}}
