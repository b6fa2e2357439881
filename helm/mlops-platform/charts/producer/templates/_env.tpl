{{- define "producer.env" -}}
- name: EVENTS_TOPIC
  value: {{ .Values.topic | quote }}
- name: EVENTS_TOPIC_PARTITIONS
  value: {{ .Values.topicPartitions | int64 | quote }}
- name: PRODUCER_MODE
  value: "live"
- name: PRODUCER_RATE
  value: {{ .Values.rate | quote }}
- name: PRODUCER_SEED
  value: {{ .Values.seed | quote }}
- name: PRODUCER_SUBSCRIBERS
  value: {{ .Values.subscribers | quote }}
- name: PRODUCER_DUPLICATE_RATE
  value: {{ .Values.duplicateRate | quote }}
- name: PRODUCER_LATE_RATE
  value: {{ .Values.lateRate | quote }}
- name: PRODUCER_MALFORMED_RATE
  value: {{ .Values.malformedRate | quote }}
{{- end -}}
