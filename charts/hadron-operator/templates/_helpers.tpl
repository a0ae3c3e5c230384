{{/* Namespace of every namespaced object. */}}
{{- define "hadron.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "hadron.labels" -}}
app: hadron
app.kubernetes.io/name: hadron-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector of the operator pods. */}}
{{- define "hadron.operatorSelector" -}}
app: hadron
hadron.rs/component: operator
{{- end -}}

{{/* Operator image: [<image.registry>/]<container.image.repo>:<tag or appVersion>. */}}
{{- define "hadron.image" -}}
{{ with .Values.image.registry }}{{ trimSuffix "/" . }}/{{ end }}{{ .Values.container.image.repo }}:{{ default .Chart.AppVersion .Values.container.image.tag }}
{{- end -}}

{{/* Partition server image of this release, for Streams' spec.image. */}}
{{- define "hadron.streamImage" -}}
{{ with .Values.image.registry }}{{ trimSuffix "/" . }}/{{ end }}{{ .Values.image.streamRepo }}:{{ .Chart.AppVersion }}
{{- end -}}
