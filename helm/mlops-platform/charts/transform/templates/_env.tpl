{{- define "transform.env" -}}
{{- if gt (int .Values.dedupHorizonDays) (int .Values.lateHorizonDays) }}
{{- fail (printf "transform: dedupHorizonDays (%d) must not exceed lateHorizonDays (%d)" (int .Values.dedupHorizonDays) (int .Values.lateHorizonDays)) }}
{{- end -}}
- name: TRANSFORM_POLL_INTERVAL_SECONDS
  value: {{ .Values.pollIntervalSeconds | int64 | quote }}
- name: TRANSFORM_LATE_HORIZON_DAYS
  value: {{ .Values.lateHorizonDays | int64 | quote }}
- name: TRANSFORM_DEDUP_HORIZON_DAYS
  value: {{ .Values.dedupHorizonDays | int64 | quote }}
- name: TRANSFORM_MAX_CLOCK_SKEW_SECONDS
  value: {{ .Values.maxClockSkewSeconds | int64 | quote }}
{{ include "mlops-common.lakeEnv" . }}
{{- end -}}

{{/*
Labels of the CronJob and its pods: the release's, under their own
app.kubernetes.io/name, so neither the Deployment's selector nor the Service
matches a scheduled run's pod.
*/}}
{{- define "transform.cronLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ printf "%s-cron" (include "mlops-common.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "mlops-common.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/component: cron
app.kubernetes.io/part-of: mlops-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
