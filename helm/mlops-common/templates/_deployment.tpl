{{/*
The Deployment every service runs as. Call with
  (dict "root" . "env" "<chart>.env" "envFrom" "<chart>.envFrom")
where env/envFrom name templates in the calling chart that return YAML lists
(either may be omitted). The security context is fixed on purpose: it meets
the Kubernetes "restricted" Pod Security Standard and is what the images are
built for (UID 65532, read-only root, writable /tmp only).
*/}}
{{- define "mlops-common.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $global := $v.global | default dict -}}
{{- include "mlops-common.assertNoInlineSecrets" $root -}}
{{- $envFrom := "" -}}
{{- if .envFrom }}{{- $envFrom = include .envFrom $root | trim -}}{{- end -}}
{{- with $v.extraEnvFrom }}{{- $envFrom = printf "%s\n%s" $envFrom (toYaml .) | trim -}}{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "mlops-common.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "mlops-common.labels" $root | nindent 4 }}
spec:
  replicas: {{ $v.replicaCount }}
  revisionHistoryLimit: 5
  {{- with $v.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "mlops-common.selectorLabels" $root | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "mlops-common.labels" $root | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "mlops-common.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- $pullSecrets := concat ($global.imagePullSecrets | default list) ($v.image.pullSecrets | default list) }}
      {{- with $pullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: {{ $root.Chart.Name }}
          image: {{ include "mlops-common.image" $root | quote }}
          imagePullPolicy: {{ include "mlops-common.imagePullPolicy" $root }}
          {{- with $v.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: admin
              containerPort: {{ $v.admin.port }}
              protocol: TCP
          env:
            {{- include "mlops-common.commonEnv" $root | nindent 12 }}
            {{- if .env }}
            {{- include .env $root | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $envFrom }}
          envFrom:
            {{- . | nindent 12 }}
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
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
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
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
