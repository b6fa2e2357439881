{{/*
ClusterIP Service for the admin port (/livez, /readyz, /metrics), plus the
HTTP port (named `http`, appProtocol http) of a chart with an http.port value
and the gRPC port (named `grpc`, appProtocol grpc) of a chart with a
grpc.port value.
*/}}
{{- define "mlops-common.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "mlops-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "mlops-common.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "mlops-common.selectorLabels" . | nindent 4 }}
  ports:
    - name: admin
      port: {{ .Values.admin.port }}
      targetPort: admin
      protocol: TCP
    {{- with (.Values.http | default dict).port }}
    - name: http
      port: {{ . }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- end }}
    {{- with (.Values.grpc | default dict).port }}
    - name: grpc
      port: {{ . }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- end }}
{{- end -}}

{{- define "mlops-common.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "mlops-common.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "mlops-common.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/*
ServiceMonitor for the Prometheus Operator. On when the chart's
serviceMonitor.enabled is true, or when it is unset and
global.serviceMonitor.enabled is true.
*/}}
{{- define "mlops-common.serviceMonitor" -}}
{{- $global := ((.Values.global | default dict).serviceMonitor) | default dict -}}
{{- $local := .Values.serviceMonitor | default dict -}}
{{- $enabled := $global.enabled | default false -}}
{{- if hasKey $local "enabled" }}{{- $enabled = $local.enabled -}}{{- end -}}
{{- if $enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "mlops-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "mlops-common.labels" . | nindent 4 }}
    {{- with (merge (dict) ($local.labels | default dict) ($global.labels | default dict)) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "mlops-common.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: admin
      path: /metrics
      interval: {{ $local.interval | default $global.interval | default "30s" }}
      scrapeTimeout: {{ $local.scrapeTimeout | default $global.scrapeTimeout | default "10s" }}
{{- end }}
{{- end -}}
