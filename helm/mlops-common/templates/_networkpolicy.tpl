{{/*
A NetworkPolicy for one service, with global.networkPolicy.enabled: it
selects the service's pods and denies everything else in both directions.
Allowed, besides DNS: egress to each of `egress` (kafka, objectStorage,
postgres, otel from global.networkPolicy; registry: the release's
model-registry pods on their gRPC port), and ingress to the admin port from
the monitoring namespace and to each port named in `clients` (http, grpc)
from pods labelled as the platform's clients (gRPC also from the release's
services named in `from`).

  include "mlops-common.networkPolicy" (dict "root" . "egress" (list "kafka") "clients" (list "grpc"))
*/}}
{{- define "mlops-common.networkPolicy" -}}
{{- $root := .root -}}
{{- $np := ($root.Values.global | default dict).networkPolicy | default dict -}}
{{- if $np.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "mlops-common.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mlops-common.labels" $root | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "mlops-common.selectorLabels" $root | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - namespaceSelector:
            {{- toYaml $np.monitoringNamespaceSelector | nindent 12 }}
      ports:
        - port: admin
          protocol: TCP
    {{- $callers := .from | default list }}
    {{- range .clients }}
    - from:
        - namespaceSelector:
            {{- toYaml $np.clients.namespaceSelector | nindent 12 }}
          podSelector:
            {{- toYaml $np.clients.podSelector | nindent 12 }}
        {{- if and (eq . "http") (($root.Values.ingress | default dict).enabled) }}
        - namespaceSelector:
            {{- toYaml $np.ingressNamespaceSelector | nindent 12 }}
        {{- end }}
        {{- if eq . "grpc" }}
        {{- range $callers }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ . }}
              app.kubernetes.io/instance: {{ $root.Release.Name }}
        {{- end }}
        {{- end }}
      ports:
        - port: {{ . }}
          protocol: TCP
    {{- end }}
  egress:
    - to:
        - namespaceSelector: {}
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- range .egress }}
    {{- if eq . "registry" }}
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: model-registry
              app.kubernetes.io/instance: {{ $root.Release.Name }}
      ports:
        - port: grpc
          protocol: TCP
    {{- else }}
    {{- $target := required (printf "global.networkPolicy.%s is not set" .) (index $np .) }}
    - ports:
        {{- range $target.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $target.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- end }}
{{- end }}
{{- end -}}
