{{/*
Names, labels and small shared pieces. Every name is truncated to 63 characters (the DNS label
limit of Kubernetes names and label values) and never ends in a dash.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "modelport.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release-qualified name every resource starts with: fullnameOverride, or `<release>` when the
release name already contains the chart name, or `<release>-<chart>`.
*/}}
{{- define "modelport.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `<chart>-<version>` for the helm.sh/chart label. */}}
{{- define "modelport.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A component's resource name: `<fullname>-<component>`, truncated so that the suffix survives.
Usage: include "modelport.componentName" (dict "ctx" $ "component" "api")
*/}}
{{- define "modelport.componentName" -}}
{{- $suffix := printf "-%s" .component -}}
{{- $base := include "modelport.fullname" .ctx | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" -}}
{{- printf "%s%s" $base $suffix -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "modelport.labels" -}}
helm.sh/chart: {{ include "modelport.chart" . }}
{{ include "modelport.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelport
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that identify the release's resources (stable: used in selectors). */}}
{{- define "modelport.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelport.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/*
A component's labels and selector labels.
Usage: include "modelport.componentLabels" (dict "ctx" $ "component" "api")
*/}}
{{- define "modelport.componentLabels" -}}
{{ include "modelport.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "modelport.componentSelectorLabels" -}}
{{ include "modelport.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
commonAnnotations merged with a resource's own annotations (the resource's win), as a
metadata-level `annotations:` block starting with a newline, or nothing.
Usage: {{- include "modelport.annotations" (dict "ctx" $ "own" .Values.x.annotations) }}
*/}}
{{- define "modelport.annotations" -}}
{{- $all := merge (deepCopy (default (dict) .own)) (deepCopy (default (dict) .ctx.Values.commonAnnotations)) -}}
{{- with $all }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end -}}

{{/*
An image reference from a bitnami-shaped image value: `registry/repository:tag@digest`.
global.imageRegistry wins over image.registry; an empty tag means the chart's appVersion.
Usage: include "modelport.image" (dict "image" .Values.api.image "ctx" $)
*/}}
{{- define "modelport.image" -}}
{{- $registry := default .image.registry .ctx.Values.global.imageRegistry -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag | toString -}}
{{- $ref := .image.repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" $registry $ref -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of a pod spec (indented for it), starting with a newline, or nothing. */}}
{{- define "modelport.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
      imagePullSecrets:
{{- range . }}
        - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The namespace MLModels and their runtime pods live in. */}}
{{- define "modelport.modelsNamespace" -}}
{{- default .Release.Namespace .Values.models.namespace -}}
{{- end -}}

{{/* `<registry>/<repositoryPrefix>` of the runtime images (global.imageRegistry wins). */}}
{{- define "modelport.runtimeRegistry" -}}
{{- $r := .Values.models.runtime -}}
{{- list (default $r.registry .Values.global.imageRegistry) $r.repositoryPrefix | compact | join "/" -}}
{{- end -}}

{{/* ServiceAccount names. */}}
{{- define "modelport.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create -}}
{{- default (include "modelport.componentName" (dict "ctx" . "component" "api")) .Values.api.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.api.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelport.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "modelport.componentName" (dict "ctx" . "component" "operator")) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the master key: an existing one, or the one the chart generates. */}}
{{- define "modelport.masterKey.secretName" -}}
{{- default (include "modelport.componentName" (dict "ctx" . "component" "master-key")) .Values.masterKey.existingSecret -}}
{{- end -}}

{{/* The in-cluster base URL of the control API (usage reports from runtime pods go here). */}}
{{- define "modelport.api.internalUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "modelport.componentName" (dict "ctx" . "component" "api")) .Release.Namespace (int .Values.api.service.port) -}}
{{- end -}}

{{/*
The container security context every Modelport container runs with when
containerSecurityContext.enabled: the `restricted` Pod Security Standard and a read-only root.
*/}}
{{- define "modelport.containerSecurityContext" -}}
{{- if .enabled -}}
{{- toYaml (omit . "enabled") -}}
{{- end -}}
{{- end -}}

{{- define "modelport.podSecurityContext" -}}
{{- if .enabled -}}
{{- toYaml (omit . "enabled") -}}
{{- end -}}
{{- end -}}

{{/*
A PodDisruptionBudget for a component.
Usage: include "modelport.pdb" (dict "ctx" $ "component" "api" "pdb" .Values.api.pdb)
*/}}
{{- define "modelport.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "modelport.componentName" (dict "ctx" .ctx "component" .component) }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "modelport.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
  {{- include "modelport.annotations" (dict "ctx" .ctx) }}
spec:
  {{- if ne (toString .pdb.minAvailable) "" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "modelport.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end -}}

{{/* Region and static credentials of S3, for the AWS SDK. */}}
{{- define "modelport.s3Env" -}}
- name: AWS_REGION
  value: {{ .Values.storage.s3.region | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.storage.s3.region | quote }}
{{- with .Values.storage.s3.existingSecret }}
{{- range list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.storage.s3.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* `s3://bucket/prefix` of the artifact store. */}}
{{- define "modelport.artifactUri" -}}
{{- $s3 := .Values.storage.s3 -}}
{{- printf "s3://%s/%s" $s3.bucket (trimPrefix "/" $s3.prefix) | trimSuffix "/" -}}
{{- end -}}

{{/* The control API's public base URL: api.publicUrl, or from its Ingress, or its Service. */}}
{{- define "modelport.api.publicUrl" -}}
{{- if .Values.api.publicUrl -}}
{{- .Values.api.publicUrl | trimSuffix "/" -}}
{{- else if .Values.api.ingress.enabled -}}
{{- printf "%s://%s%s" (ternary "https" "http" .Values.api.ingress.tls.enabled) .Values.api.ingress.hostname (trimSuffix "/" .Values.api.ingress.path) -}}
{{- else -}}
{{- include "modelport.api.internalUrl" . -}}
{{- end -}}
{{- end -}}

{{/* The host names the control API answers to (JSON): its Service's in-cluster names (usage
reports from runtime pods), localhost (`kubectl port-forward`), the Ingress host, the host of
api.publicUrl and api.allowedHosts. The kubelet's probes (by pod IP) need none: the API exempts
/healthz, /readyz and /metrics. */}}
{{- define "modelport.api.allowedHosts" -}}
{{- $api := .Values.api -}}
{{- $svc := include "modelport.componentName" (dict "ctx" . "component" "api") -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) "localhost" "127.0.0.1" "[::1]" -}}
{{- if $api.ingress.enabled -}}
{{- $hosts = append $hosts $api.ingress.hostname -}}
{{- end -}}
{{- with $api.publicUrl -}}
{{- $hosts = append $hosts (urlParse .).host -}}
{{- end -}}
{{- range (dig "allowedHosts" (list) $api) -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- $hosts | uniq | toJson -}}
{{- end -}}

{{/* Where runtime pods report usage: the control API's Service, inside the cluster. */}}
{{- define "modelport.api.usageUrl" -}}
{{- printf "%s/api/v1/internal/usage" (include "modelport.api.internalUrl" .) -}}
{{- end -}}

{{/*
The binding of admission policy `name` to the models namespace, refusing what it fails.
Usage: include "modelport.admissionPolicyBinding" (dict "ctx" $ "name" $name)
*/}}
{{- define "modelport.admissionPolicyBinding" -}}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ .name }}
  labels:
    {{- include "modelport.componentLabels" (dict "ctx" .ctx "component" "admission") | nindent 4 }}
  {{- include "modelport.annotations" (dict "ctx" .ctx) }}
spec:
  policyName: {{ .name }}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {{ include "modelport.modelsNamespace" .ctx }}
{{- end -}}
