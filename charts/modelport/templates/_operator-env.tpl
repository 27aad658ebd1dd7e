{{/*
The operator's settings (modelport.operator.settings.OperatorSettings) as MODELPORT_OPERATOR_*
variables; mappings and lists are JSON. tests/chart checks every name against that class.
*/}}
{{- define "modelport.operator.env" -}}
{{- $m := .Values.models -}}
{{- $np := .Values.networkPolicy -}}
- name: MODELPORT_OPERATOR_NAMESPACES
  value: {{ list (include "modelport.modelsNamespace" .) | toJson | quote }}
- name: MODELPORT_OPERATOR_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: MODELPORT_OPERATOR_LEADER_ELECTION
  value: "true"
- name: MODELPORT_OPERATOR_LEASE_NAME
  value: {{ include "modelport.componentName" (dict "ctx" . "component" "operator") | quote }}
- name: MODELPORT_OPERATOR_IDENTITY
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: MODELPORT_OPERATOR_HEALTH_PORT
  value: {{ .Values.operator.healthPort | quote }}
- name: MODELPORT_OPERATOR_WORKERS
  value: {{ .Values.operator.workers | quote }}
- name: MODELPORT_OPERATOR_IMAGE_REGISTRY
  value: {{ include "modelport.runtimeRegistry" . | quote }}
- name: MODELPORT_OPERATOR_IMAGE_TAG
  value: {{ default .Chart.AppVersion $m.runtime.tag | toString | quote }}
- name: MODELPORT_OPERATOR_RUNTIME_IMAGES
  value: {{ $m.runtime.images | toJson | quote }}
- name: MODELPORT_OPERATOR_ALLOWED_IMAGE_REGISTRIES
  value: {{ default (list) $m.runtime.allowedRegistries | toJson | quote }}
- name: MODELPORT_OPERATOR_IMAGE_PULL_POLICY
  value: {{ $m.runtime.pullPolicy | quote }}
- name: MODELPORT_OPERATOR_IMAGE_PULL_SECRETS
  value: {{ .Values.global.imagePullSecrets | toJson | quote }}
- name: MODELPORT_OPERATOR_RUN_AS_USER
  value: {{ $m.runtime.runAsUser | quote }}
- name: MODELPORT_OPERATOR_TMP_SIZE_LIMIT
  value: {{ $m.runtime.tmpSizeLimit | quote }}
- name: MODELPORT_OPERATOR_DEFAULT_REQUESTS
  value: {{ include "modelport.stringMapJson" (default (dict) $m.defaultResources.requests) | quote }}
- name: MODELPORT_OPERATOR_DEFAULT_LIMITS
  value: {{ include "modelport.stringMapJson" (default (dict) $m.defaultResources.limits) | quote }}
- name: MODELPORT_OPERATOR_CPU_NODE_SELECTOR
  value: {{ $m.nodeSelector | toJson | quote }}
- name: MODELPORT_OPERATOR_GPU_RESOURCE
  value: {{ $m.gpu.resourceName | quote }}
- name: MODELPORT_OPERATOR_GPU_NODE_SELECTOR
  value: {{ $m.gpu.nodeSelector | toJson | quote }}
- name: MODELPORT_OPERATOR_GPU_TOLERATIONS
  value: {{ $m.gpu.tolerations | toJson | quote }}
- name: MODELPORT_OPERATOR_SERVICE_ACCOUNT_ANNOTATIONS
  value: {{ $m.serviceAccountAnnotations | toJson | quote }}
- name: MODELPORT_OPERATOR_INGRESS_DOMAIN
  value: {{ $m.ingress.domain | quote }}
- name: MODELPORT_OPERATOR_ROUTING
  value: {{ $m.ingress.routing | quote }}
- name: MODELPORT_OPERATOR_PATH_PREFIX
  value: {{ $m.ingress.pathPrefix | quote }}
- name: MODELPORT_OPERATOR_INGRESS_CLASS
  value: {{ $m.ingress.className | quote }}
- name: MODELPORT_OPERATOR_INGRESS_ANNOTATIONS
  value: {{ $m.ingress.annotations | toJson | quote }}
- name: MODELPORT_OPERATOR_INGRESS_TLS
  value: {{ $m.ingress.tls.enabled | quote }}
{{- with $m.ingress.tls.secretName }}
- name: MODELPORT_OPERATOR_INGRESS_TLS_SECRET
  value: {{ . | quote }}
{{- end }}
- name: MODELPORT_OPERATOR_NETWORK_POLICY
  value: {{ $np.enabled | quote }}
- name: MODELPORT_OPERATOR_INGRESS_CONTROLLER_NAMESPACE
  value: {{ $np.ingressController.namespace | quote }}
- name: MODELPORT_OPERATOR_INGRESS_CONTROLLER_POD_LABELS
  value: {{ $np.ingressController.podLabels | toJson | quote }}
- name: MODELPORT_OPERATOR_DNS_NAMESPACE
  value: {{ $np.dns.namespace | quote }}
- name: MODELPORT_OPERATOR_DNS_POD_LABELS
  value: {{ $np.dns.podLabels | toJson | quote }}
{{- with $np.metricsNamespace }}
- name: MODELPORT_OPERATOR_METRICS_NAMESPACE
  value: {{ . | quote }}
{{- end }}
- name: MODELPORT_OPERATOR_ARTIFACT_STORE_CIDRS
  value: {{ $np.artifactStore.cidrs | toJson | quote }}
- name: MODELPORT_OPERATOR_ARTIFACT_STORE_PORT
  value: {{ $np.artifactStore.port | quote }}
- name: MODELPORT_OPERATOR_CONTROL_API_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: MODELPORT_OPERATOR_CONTROL_API_POD_LABELS
  value: {{ include "modelport.componentSelectorLabels" (dict "ctx" . "component" "api") | fromYaml | toJson | quote }}
- name: MODELPORT_OPERATOR_CONTROL_API_PORT
  value: "8000"
- name: MODELPORT_OPERATOR_ARTIFACT_ROOT
  value: {{ include "modelport.artifactUri" . | quote }}
{{- with .Values.storage.s3.endpoint }}
- name: MODELPORT_OPERATOR_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: MODELPORT_OPERATOR_S3_REGION
  value: {{ .Values.storage.s3.region | quote }}
{{- with .Values.storage.s3.existingSecret }}
- name: MODELPORT_OPERATOR_S3_CREDENTIALS_SECRET
  value: {{ . | quote }}
{{- end }}
- name: MODELPORT_OPERATOR_USAGE_REPORT_URL
  value: {{ include "modelport.api.usageUrl" . | quote }}
{{- end -}}

{{/* A map as JSON with every value a string (Kubernetes quantities such as `cpu: 1`). */}}
{{- define "modelport.stringMapJson" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- $_ := set $out $k (toString $v) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
