{{/*
Naming and labels shared by every service chart. Each template takes the
including chart's root context (`.`).
*/}}

{{- define "mlops-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlops-common.fullname" -}}
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

{{- define "mlops-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlops-common.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mlops-common.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mlops-common.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mlops-common.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/component: {{ .Chart.Name }}
app.kubernetes.io/part-of: mlops-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mlops-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mlops-common.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image tag: the chart's own, else the global one, else the app version. */}}
{{- define "mlops-common.imageTag" -}}
{{- $global := (.Values.global | default dict).image | default dict -}}
{{- .Values.image.tag | default $global.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "mlops-common.image" -}}
{{- $global := (.Values.global | default dict).image | default dict -}}
{{- $registry := .Values.image.registry | default $global.registry -}}
{{- $ref := .Values.image.repository -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $ref .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (include "mlops-common.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{- define "mlops-common.imagePullPolicy" -}}
{{- $global := (.Values.global | default dict).image | default dict -}}
{{- .Values.image.pullPolicy | default $global.pullPolicy | default "IfNotPresent" -}}
{{- end -}}
