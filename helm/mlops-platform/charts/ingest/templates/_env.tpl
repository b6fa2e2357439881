{{- define "ingest.env" -}}
- name: EVENTS_TOPIC
  value: {{ .Values.topic | quote }}
- name: DLQ_TOPIC
  value: {{ .Values.dlqTopic | quote }}
- name: DLQ_TOPIC_PARTITIONS
  value: {{ .Values.dlqPartitions | int64 | quote }}
- name: INGEST_GROUP_ID
  value: {{ .Values.groupId | quote }}
- name: INGEST_BATCH_MAX_RECORDS
  value: {{ .Values.batch.maxRecords | quote }}
- name: INGEST_BATCH_MAX_WAIT_MS
  value: {{ .Values.batch.maxWaitMs | quote }}
- name: INGEST_REJOIN_AFTER_SECONDS
  value: {{ .Values.rejoinAfterSeconds | int64 | quote }}
{{ include "mlops-common.lakeEnv" . }}
{{- end -}}
