{{- define "gateway.env" -}}
- name: GATEWAY_HTTP_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.http.port) | quote }}
- name: GATEWAY_GRPC_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.grpc.port) | quote }}
- name: GATEWAY_MODELS
  value: {{ join "," .Values.models | quote }}
- name: REGISTRY_URL
  value: {{ include "gateway.registryUrl" . | quote }}
- name: GATEWAY_REGISTRY_TOKEN_FILE
  value: {{ include "gateway.tokenFile" . | quote }}
- name: GATEWAY_POLL_SECONDS
  value: {{ .Values.pollSeconds | int64 | quote }}
- name: GATEWAY_REGISTRY_EVENTS
  value: {{ ternary "kafka" "off" .Values.events.enabled | quote }}
{{- if .Values.events.enabled }}
- name: REGISTRY_EVENTS_TOPIC
  value: {{ .Values.events.topic | quote }}
{{- end }}
- name: GATEWAY_PREDICTION_LOG
  value: {{ ternary "kafka" "off" .Values.predictionLog.enabled | quote }}
{{- if .Values.predictionLog.enabled }}
- name: PREDICTIONS_TOPIC
  value: {{ .Values.predictionLog.topic | quote }}
- name: PREDICTIONS_TOPIC_PARTITIONS
  value: {{ .Values.predictionLog.partitions | int64 | quote }}
- name: GATEWAY_PREDICTION_LOG_TIMEOUT_MS
  value: {{ .Values.predictionLog.timeoutMs | int64 | quote }}
{{- end }}
- name: GATEWAY_DRIFT_WINDOW_ROWS
  value: {{ .Values.drift.windowRows | int64 | quote }}
{{- with .Values.sessionsPerModel }}
- name: GATEWAY_SESSIONS_PER_MODEL
  value: {{ . | int64 | quote }}
{{- end }}
- name: GATEWAY_MAX_REQUEST_BYTES
  value: {{ .Values.maxRequestBytes | int64 | quote }}
- name: GATEWAY_AUTH
  value: {{ ternary "registry" "off" .Values.auth.enabled | quote }}
{{- if .Values.auth.enabled }}
- name: GATEWAY_AUTH_CACHE_SECONDS
  value: {{ .Values.auth.cacheSeconds | int64 | quote }}
{{- end }}
- name: GATEWAY_FEATURES_POLL_SECONDS
  value: {{ .Values.features.pollSeconds | int64 | quote }}
{{- with .Values.churnModel }}
- name: GATEWAY_CHURN_MODEL
  value: {{ . | quote }}
{{- end }}
{{- if .Values.portal.enabled }}
- name: GATEWAY_PORTAL
  value: "on"
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "gateway: portal.database.existingSecret is required with portal.enabled: the name of an existing Secret holding DATABASE_URL (postgres://user:password@host:5432/db)" .Values.portal.database.existingSecret }}
      key: {{ .Values.portal.database.key }}
- name: GATEWAY_ADMIN_PASSWORD_FILE
  value: {{ printf "%s/password" (include "gateway.adminPasswordDir" .) | quote }}
- name: GATEWAY_SESSION_MINUTES
  value: {{ .Values.portal.sessionMinutes | int64 | quote }}
- name: GATEWAY_COOKIE_SECURE
  value: {{ .Values.portal.cookieSecure | quote }}
{{- with .Values.portal.clientIpHeader }}
- name: GATEWAY_CLIENT_IP_HEADER
  value: {{ . | quote }}
{{- end }}
{{- if .Values.portal.approverToken.existingSecret }}
- name: GATEWAY_PORTAL_APPROVER_TOKEN_FILE
  value: {{ printf "%s/token" (include "gateway.approverTokenDir" .) | quote }}
{{- end }}
- name: GATEWAY_SQL_MAX_ROWS
  value: {{ .Values.portal.sql.maxRows | int64 | quote }}
- name: GATEWAY_SQL_TIMEOUT_SECONDS
  value: {{ .Values.portal.sql.timeoutSeconds | int64 | quote }}
- name: GATEWAY_SQL_MEMORY_MB
  value: {{ .Values.portal.sql.memoryMb | int64 | quote }}
- name: EVENTS_TOPIC
  value: {{ .Values.portal.health.eventsTopic | quote }}
{{- with .Values.portal.health.dlqTopic }}
- name: DLQ_TOPIC
  value: {{ . | quote }}
{{- end }}
- name: GATEWAY_HEALTH_STALE_MINUTES
  value: {{ .Values.portal.health.staleMinutes | int64 | quote }}
- name: GATEWAY_HEALTH_LAG_RECORDS
  value: {{ .Values.portal.health.lagRecords | int64 | quote }}
{{- else }}
- name: GATEWAY_PORTAL
  value: "off"
{{- end }}
{{ include "mlops-common.lakeEnv" . }}
{{- end -}}

{{/*
The registry's gRPC endpoint: registry.url, else the release's
model-registry Service on its default port (named as mlops-common.fullname
names it in the model-registry chart).
*/}}
{{- define "gateway.registryUrl" -}}
{{- if .Values.registry.url -}}
{{- .Values.registry.url -}}
{{- else -}}
{{- $name := "model-registry" -}}
{{- $host := ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- printf "http://%s:50051" $host -}}
{{- end -}}
{{- end -}}

{{/* The registry token Secret, mounted read-only as a file. */}}
{{- define "gateway.tokenDir" -}}
/var/run/secrets/mlops/registry-token
{{- end -}}

{{- define "gateway.tokenFile" -}}
{{- printf "%s/token" (include "gateway.tokenDir" .) -}}
{{- end -}}

{{- define "gateway.adminPasswordDir" -}}
/var/run/secrets/mlops/portal-admin
{{- end -}}

{{- define "gateway.approverTokenDir" -}}
/var/run/secrets/mlops/portal-approver-token
{{- end -}}

{{- define "gateway.volumes" -}}
- name: registry-token
  secret:
    secretName: {{ required "gateway: registry.tokenSecret.existingSecret is required: the name of an existing Secret holding the registry token (the reader role is enough)" .Values.registry.tokenSecret.existingSecret }}
    items:
      - key: {{ .Values.registry.tokenSecret.key }}
        path: token
    # 0440: readable by the pod's group (fsGroup 65532) only.
    defaultMode: 288
{{- if .Values.portal.enabled }}
- name: portal-admin
  secret:
    secretName: {{ required "gateway: portal.adminPassword.existingSecret is required with portal.enabled: the name of an existing Secret holding the bootstrap admin's password" .Values.portal.adminPassword.existingSecret }}
    items:
      - key: {{ .Values.portal.adminPassword.key }}
        path: password
    defaultMode: 288
{{- if .Values.portal.approverToken.existingSecret }}
- name: portal-approver-token
  secret:
    secretName: {{ .Values.portal.approverToken.existingSecret }}
    items:
      - key: {{ .Values.portal.approverToken.key }}
        path: token
    defaultMode: 288
{{- end }}
{{- end }}
{{- end -}}

{{- define "gateway.volumeMounts" -}}
- name: registry-token
  mountPath: {{ include "gateway.tokenDir" . }}
  readOnly: true
{{- if .Values.portal.enabled }}
- name: portal-admin
  mountPath: {{ include "gateway.adminPasswordDir" . }}
  readOnly: true
{{- if .Values.portal.approverToken.existingSecret }}
- name: portal-approver-token
  mountPath: {{ include "gateway.approverTokenDir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/*
Replicas the gateway runs with at least: the autoscaler's minimum while it
is on, else replicaCount. Decides whether a PodDisruptionBudget is useful.
*/}}
{{- define "gateway.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}
{{- .Values.autoscaling.minReplicas | int -}}
{{- else -}}
{{- .Values.replicaCount | int -}}
{{- end -}}
{{- end -}}
