{{/*
The Deployment every service runs as. Call with
  (dict "root" . "env" "<chart>.env" "envFrom" "<chart>.envFrom"
        "volumes" "<chart>.volumes" "volumeMounts" "<chart>.volumeMounts"
        "kafka" false)
where env/envFrom/volumes/volumeMounts name templates in the calling chart
that return YAML lists (any may be omitted); volumes and mounts are added to
the fixed /tmp emptyDir. "kafka" false leaves the KAFKA_* settings out for
a service that does not use Kafka (default true). A chart with a grpc.port
value gets a container port named `grpc`, one with an http.port value a
container port named `http`. A chart with autoscaling.enabled true leaves
`replicas` out: its HorizontalPodAutoscaler owns the count, and a fixed
value would reset it on every upgrade. The security context is
fixed on purpose: it meets the Kubernetes "restricted" Pod Security Standard
and is what the images are built for (UID 65532, read-only root, writable
/tmp only).
*/}}
{{- define "mlops-common.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "mlops-common.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mlops-common.labels" $root | nindent 4 }}
spec:
  {{- if not ($v.autoscaling | default dict).enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with $v.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "mlops-common.selectorLabels" $root | nindent 6 }}
  template:
    {{- include "mlops-common.podTemplate" . | nindent 4 }}
{{- end -}}


{{/*
The pod template of the Deployment, for a chart's own Job or CronJob that
runs the same container with the same env, security context and volumes.
Same arguments as mlops-common.deployment, plus optional
  "labels"        a template in the calling chart giving the pod labels
                  (default mlops-common.labels), so a Job's pods can stay out
                  of the Deployment's and the Service's selectors;
  "args"          the container arguments (a list; default the chart's args);
  "restartPolicy" (default: the field is left out, i.e. Always).
*/}}
{{- define "mlops-common.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- include "mlops-common.assertNoInlineSecrets" $root -}}
{{- $envFrom := "" -}}
{{- if .envFrom }}{{- $envFrom = include .envFrom $root | trim -}}{{- end -}}
{{- with $v.extraEnvFrom }}{{- $envFrom = printf "%s\n%s" $envFrom (toYaml .) | trim -}}{{- end -}}
{{- $grpcPort := ($v.grpc | default dict).port -}}
{{- $httpPort := ($v.http | default dict).port -}}
{{- $kafka := true -}}
{{- if hasKey . "kafka" }}{{- $kafka = .kafka -}}{{- end -}}
{{- $args := $v.args -}}
{{- if hasKey . "args" }}{{- $args = .args -}}{{- end -}}
metadata:
  labels:
    {{- include (.labels | default "mlops-common.labels") $root | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  serviceAccountName: {{ include "mlops-common.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  {{- with include "mlops-common.imagePullSecrets" $root | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- include "mlops-common.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: {{ $root.Chart.Name }}
      image: {{ include "mlops-common.image" $root | quote }}
      imagePullPolicy: {{ include "mlops-common.imagePullPolicy" $root }}
      {{- with $args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: admin
          containerPort: {{ $v.admin.port }}
          protocol: TCP
        {{- with $httpPort }}
        - name: http
          containerPort: {{ . }}
          protocol: TCP
        {{- end }}
        {{- with $grpcPort }}
        - name: grpc
          containerPort: {{ . }}
          protocol: TCP
        {{- end }}
      env:
        {{- include "mlops-common.serviceEnv" (dict "root" $root "kafka" $kafka) | nindent 8 }}
        {{- if .env }}
        {{- include .env $root | nindent 8 }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $envFrom }}
      envFrom:
        {{- . | nindent 8 }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /livez
          port: admin
        periodSeconds: 2
        failureThreshold: {{ $v.probes.startupFailureThreshold }}
      livenessProbe:
        httpGet:
          path: /livez
          port: admin
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: admin
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 2
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- include "mlops-common.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with and .volumeMounts (include .volumeMounts $root | trim) }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $v.tmpSizeLimit }}
    {{- with and .volumes (include .volumes $root | trim) }}
    {{- . | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- /* Replicas spread over nodes and zones by default (soft: never
  blocks scheduling); explicit affinity or constraints replace it. */}}
  affinity:
    {{- if $v.affinity }}
    {{- toYaml $v.affinity | nindent 4 }}
    {{- else }}
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "mlops-common.selectorLabels" $root | nindent 16 }}
    {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  topologySpreadConstraints:
    {{- if $v.topologySpreadConstraints }}
    {{- toYaml $v.topologySpreadConstraints | nindent 4 }}
    {{- else }}
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "mlops-common.selectorLabels" $root | nindent 10 }}
    {{- end }}
{{- end -}}


{{/*
The fixed security settings, shared by every workload of the platform
(the Deployment above and any Job a chart runs). Take the root context.
*/}}
{{- define "mlops-common.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mlops-common.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* imagePullSecrets: global.imagePullSecrets plus the chart's image.pullSecrets. */}}
{{- define "mlops-common.imagePullSecrets" -}}
{{- $global := .Values.global | default dict -}}
{{- $pullSecrets := concat ($global.imagePullSecrets | default list) (.Values.image.pullSecrets | default list) -}}
{{- with $pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}
