{{/*
The control API's settings (modelport.api.settings.ApiSettings) as MODELPORT_API_* variables.
Secrets come from Secrets by reference and never appear in the rendered manifest.
*/}}
{{- define "modelport.api.env" -}}
{{- $api := .Values.api -}}
- name: MODELPORT_API_ENVIRONMENT
  value: production
- name: MODELPORT_API_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret must name the Secret holding the PostgreSQL URL" .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
- name: MODELPORT_API_METRICS_HOST
  value: 0.0.0.0
- name: MODELPORT_API_METRICS_PORT
  value: {{ $api.service.metricsPort | quote }}
- name: MODELPORT_API_DB_POOL_SIZE
  value: {{ $api.dbPoolSize | quote }}
- name: MODELPORT_API_MASTER_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "modelport.masterKey.secretName" . }}
      key: {{ .Values.masterKey.secretKey }}
{{- with .Values.masterKey.currentKeyId }}
- name: MODELPORT_API_MASTER_KEY_CURRENT
  value: {{ . | quote }}
{{- end }}
- name: MODELPORT_API_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default (include "modelport.componentName" (dict "ctx" . "component" "api")) $api.jwt.existingSecret }}
      key: {{ $api.jwt.secretKey }}
- name: MODELPORT_API_JWT_TTL_SECONDS
  value: {{ $api.jwt.ttlSeconds | quote }}
- name: MODELPORT_API_SIGNUP
  value: {{ $api.signup | quote }}
- name: MODELPORT_API_MAX_UPLOAD_BYTES
  value: {{ $api.maxUploadBytes | int64 | quote }}
{{- /* dig: `helm upgrade --reuse-values` from a chart without api.scan keeps working */}}
- name: MODELPORT_API_SCAN_CPU_SECONDS
  value: {{ dig "scan" "cpuSeconds" 60 $api | int64 | quote }}
- name: MODELPORT_API_SCAN_MEMORY_BYTES
  value: {{ dig "scan" "memoryBytes" 1073741824 $api | int64 | quote }}
- name: MODELPORT_API_SCAN_TIMEOUT_SECONDS
  value: {{ dig "scan" "timeoutSeconds" 120 $api | quote }}
- name: MODELPORT_API_SPOOL_DIR
  value: /tmp
- name: MODELPORT_API_PUBLIC_URL
  value: {{ include "modelport.api.publicUrl" . | quote }}
- name: MODELPORT_API_USAGE_REPORT_URL
  value: {{ include "modelport.api.usageUrl" . | quote }}
- name: MODELPORT_API_ARTIFACT_URI
  value: {{ include "modelport.artifactUri" . | quote }}
{{- with .Values.storage.s3.endpoint }}
- name: MODELPORT_API_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- include "modelport.s3Env" . | nindent 0 }}
- name: MODELPORT_API_DEPLOYER
  value: kubernetes
- name: MODELPORT_API_KUBERNETES_NAMESPACE
  value: {{ include "modelport.modelsNamespace" . | quote }}
- name: MODELPORT_API_KUBERNETES_INGRESS_HOST
  value: {{ .Values.models.ingress.domain | quote }}
- name: MODELPORT_API_KUBERNETES_ROUTING
  value: {{ .Values.models.ingress.routing | quote }}
- name: MODELPORT_API_KUBERNETES_PATH_PREFIX
  value: {{ .Values.models.ingress.pathPrefix | quote }}
- name: MODELPORT_API_KUBERNETES_INGRESS_TLS
  value: {{ .Values.models.ingress.tls.enabled | quote }}
{{- range $tier := list "free" "premium" }}
{{- $sub := index $api.subscriptions $tier }}
{{- /* hasKey: values from a chart without a cap keep the API's default for it */}}
{{- range $key, $field := dict "requestsPerMinute" "REQUESTS_PER_MINUTE" "modelsLimit" "MODELS_LIMIT" "maxGpusPerModel" "MAX_GPUS_PER_MODEL" "maxReplicas" "MAX_REPLICAS" "maxCpuPerReplica" "MAX_CPU_PER_REPLICA" "maxMemoryPerReplica" "MAX_MEMORY_PER_REPLICA" }}
{{- if hasKey $sub $key }}
- name: MODELPORT_API_{{ upper $tier }}__{{ $field }}
  value: {{ index $sub $key | quote }}
{{- end }}
{{- end }}
{{- end }}
- name: MODELPORT_API_ALLOWED_HOSTS
  value: {{ include "modelport.api.allowedHosts" . | quote }}
{{- with (dig "trustedProxies" (list) $api) }}
- name: MODELPORT_API_TRUSTED_PROXIES
  value: {{ toJson . | quote }}
{{- end }}
- name: MODELPORT_API_LOGIN_FAILURES_PER_ACCOUNT
  value: {{ dig "login" "failuresPerAccount" 5 $api | quote }}
- name: MODELPORT_API_LOGIN_FAILURES_PER_ADDRESS
  value: {{ dig "login" "failuresPerAddress" 20 $api | quote }}
- name: MODELPORT_API_LOGIN_BACKOFF_MAX_SECONDS
  value: {{ dig "login" "backoffMaxSeconds" 900 $api | quote }}
- name: MODELPORT_API_SIGNUPS_PER_MINUTE
  value: {{ dig "login" "signupsPerMinute" 10 $api | quote }}
- name: MODELPORT_API_PASSWORD_HASH_CONCURRENCY
  value: {{ dig "login" "passwordHashConcurrency" 4 $api | quote }}
{{- if $api.oidc.issuer }}
- name: MODELPORT_API_OIDC_ISSUER
  value: {{ $api.oidc.issuer | quote }}
- name: MODELPORT_API_OIDC_CLIENT_ID
  value: {{ required "api.oidc.clientId is required with api.oidc.issuer" $api.oidc.clientId | quote }}
- name: MODELPORT_API_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "api.oidc.existingSecret is required with api.oidc.issuer" $api.oidc.existingSecret }}
      key: {{ $api.oidc.secretKey }}
{{- end }}
{{- end -}}
