{{- define "ingest.env" -}}
- name: EVENTS_TOPIC
  value: {{ .Values.topic | quote }}
- name: DLQ_TOPIC
  value: {{ .Values.dlqTopic | quote }}
- name: INGEST_GROUP_ID
  value: {{ .Values.groupId | quote }}
- name: INGEST_BATCH_MAX_RECORDS
  value: {{ .Values.batch.maxRecords | quote }}
- name: INGEST_BATCH_MAX_WAIT_MS
  value: {{ .Values.batch.maxWaitMs | quote }}
{{ include "mlops-common.lakeEnv" . }}
{{- end -}}
