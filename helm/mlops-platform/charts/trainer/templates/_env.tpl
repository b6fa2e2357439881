{{- define "trainer.env" -}}
- name: REGISTRY_URL
  value: {{ include "trainer.registryUrl" . | quote }}
- name: TRAINER_REGISTRY_TOKEN_FILE
  value: {{ include "trainer.tokenFile" . | quote }}
- name: TRAINER_MODEL_NAME
  value: {{ .Values.modelName | quote }}
- name: TRAINER_HORIZON_DAYS
  value: {{ .Values.horizonDays | int64 | quote }}
- name: TRAINER_TEST_DAYS
  value: {{ .Values.testDays | int64 | quote }}
- name: TRAINER_VALIDATION_FRACTION
  value: {{ .Values.validationFraction | toString | quote }}
- name: TRAINER_SEED
  value: {{ .Values.seed | int64 | quote }}
- name: TRAINER_CANDIDATES
  value: {{ join "," .Values.candidates | quote }}
- name: TRAINER_MIN_AUC_GAIN
  value: {{ .Values.minAucGain | toString | quote }}
- name: TRAINER_MIN_AUC
  value: {{ .Values.minAuc | toString | quote }}
- name: TRAINER_MAX_ECE
  value: {{ .Values.maxEce | toString | quote }}
- name: TRAINER_MIN_NEW_DAYS
  value: {{ .Values.minNewDays | int64 | quote }}
- name: TRAINER_INTERVAL_SECONDS
  value: {{ .Values.intervalSeconds | int64 | quote }}
- name: TRAINER_POLL_SECONDS
  value: {{ .Values.pollSeconds | int64 | quote }}
- name: TRAINER_WORK_DIR
  value: {{ include "trainer.workDir" . | quote }}
{{ include "mlops-common.lakeEnv" . }}
{{- end -}}

{{/*
The registry's gRPC endpoint: registry.url, else the release's
model-registry Service on its default port (named as mlops-common.fullname
names it in the model-registry chart).
*/}}
{{- define "trainer.registryUrl" -}}
{{- if .Values.registry.url -}}
{{- .Values.registry.url -}}
{{- else -}}
{{- $name := "model-registry" -}}
{{- $host := ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- printf "http://%s:50051" $host -}}
{{- end -}}
{{- end -}}

{{/* The registry token Secret, mounted read-only as a file. */}}
{{- define "trainer.tokenDir" -}}
/var/run/secrets/mlops/registry-token
{{- end -}}

{{- define "trainer.tokenFile" -}}
{{- printf "%s/token" (include "trainer.tokenDir" .) -}}
{{- end -}}

{{/* TRAINER_WORK_DIR: an emptyDir (the root filesystem is read-only). */}}
{{- define "trainer.workDir" -}}
/var/lib/trainer
{{- end -}}

{{- define "trainer.volumes" -}}
- name: work
  emptyDir:
    sizeLimit: {{ .Values.workDirSizeLimit }}
- name: registry-token
  secret:
    secretName: {{ required "trainer: registry.tokenSecret.existingSecret is required: the name of an existing Secret holding the registry token (with the approver role, to promote @champion)" .Values.registry.tokenSecret.existingSecret }}
    items:
      - key: {{ .Values.registry.tokenSecret.key }}
        path: token
    # 0440: readable by the pod's group (fsGroup 65532) only.
    defaultMode: 288
{{- end -}}

{{- define "trainer.volumeMounts" -}}
- name: work
  mountPath: {{ include "trainer.workDir" . }}
- name: registry-token
  mountPath: {{ include "trainer.tokenDir" . }}
  readOnly: true
{{- end -}}
