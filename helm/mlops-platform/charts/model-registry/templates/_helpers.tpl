{{/*
Labels of the migration Job and its pod: the release's, under their own
app.kubernetes.io/name, so the registry's selectors do not match the pod.
*/}}
{{- define "model-registry.migrationLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ printf "%s-migrate" (include "mlops-common.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "mlops-common.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/component: migrate
app.kubernetes.io/part-of: mlops-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
Service account of the migration Job: a pre-install hook runs before the
chart's own ServiceAccount exists, so that one is not used.
*/}}
{{- define "model-registry.migrationServiceAccountName" -}}
{{- if .Values.migrations.serviceAccountName -}}
{{- .Values.migrations.serviceAccountName -}}
{{- else if .Values.serviceAccount.create -}}
default
{{- else -}}
{{- include "mlops-common.serviceAccountName" . -}}
{{- end -}}
{{- end -}}
