{{/* Chart name, at most 63 characters. */}}
{{- define "airship.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects, at most 63 characters. */}}
{{- define "airship.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "airship.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object but the component. */}}
{{- define "airship.commonLabels" -}}
helm.sh/chart: {{ include "airship.chart" . }}
app.kubernetes.io/name: {{ include "airship.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "airship.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the server's objects. */}}
{{- define "airship.labels" -}}
{{ include "airship.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/*
Labels that select the server pods: those that serve the API (every
module, or the gateway when split.enabled). The component label tells
them from the products and orders pods of a split deployment.
*/}}
{{- define "airship.selectorLabels" -}}
{{ include "airship.componentSelectorLabels" (dict "root" . "component" "server") }}
{{- end }}

{{/* Labels that select the pods of a component. Arguments: dict "root" $ and "component". */}}
{{- define "airship.componentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "airship.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's objects. Arguments: dict "root" $ and "component". */}}
{{- define "airship.componentLabels" -}}
{{ include "airship.commonLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The server workloads, as YAML ({items: [...]}): one running every module,
or with split.enabled the gateway (component server, behind the chart's
Service), products and orders, each a Deployment with its own Service,
HPA and PDB. Each item: module (airship's modules setting), component,
name, and the secrets it reads (the modules of a split deployment all
read the module token: the gateway and orders send it, products and
orders require it).
*/}}
{{- define "airship.workloads" -}}
{{- $full := include "airship.fullname" . }}
items:
{{- if .Values.split.enabled }}
  - {module: gateway, component: server, name: {{ $full | quote }}, postgres: false, redis: false, apiKeys: true, amqp: false, moduleToken: true}
  - {module: products, component: products, name: {{ printf "%s-products" $full | quote }}, postgres: false, redis: true, apiKeys: false, amqp: false, moduleToken: true}
  - {module: orders, component: orders, name: {{ printf "%s-orders" $full | quote }}, postgres: true, redis: false, apiKeys: false, amqp: true, moduleToken: true}
{{- else }}
  - {module: all, component: server, name: {{ $full | quote }}, postgres: true, redis: true, apiKeys: true, amqp: true, moduleToken: false}
{{- end }}
{{- end }}

{{/* The URL of a module's Service in a split deployment. Arguments: dict "root" $ and "module". */}}
{{- define "airship.moduleURL" -}}
{{- printf "http://%s-%s:%d" (include "airship.fullname" .root) .module (int .root.Values.split.servicePort) }}
{{- end }}

{{- define "airship.version" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "airship.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "airship.version" .) }}
{{- end }}

{{- define "airship.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "airship.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the backend URLs and API keys. */}}
{{- define "airship.secretName" -}}
{{- default (include "airship.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
Refuses values that cannot work; every template includes it, so that
`helm template` and `helm install` fail before anything is created.
*/}}
{{- define "airship.validate" -}}
{{- if eq .Values.mode "embedded" }}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- fail (printf "mode: embedded runs exactly one replica (the embedded store is a file on one volume), but replicaCount is %d and autoscaling.enabled is %t: set replicaCount=1 and autoscaling.enabled=false, or use mode: production (PostgreSQL + Redis) to run more" (int .Values.replicaCount) .Values.autoscaling.enabled) }}
{{- end }}
{{- else if and (not .Values.existingSecret) (or (not .Values.secret.postgresUrl) (not .Values.secret.redisUrl)) }}
{{- fail "mode: production needs the backends: set secret.postgresUrl and secret.redisUrl, or existingSecret to a Secret with the keys AIRSHIP_POSTGRES_URL and AIRSHIP_REDIS_URL" }}
{{- end }}
{{- if and .Values.split.enabled (ne .Values.mode "production") }}
{{- fail "split.enabled runs the modules as separate Deployments on PostgreSQL + Redis: it needs mode: production" }}
{{- end }}
{{- if and .Values.split.enabled (not .Values.existingSecret) (not .Values.secret.moduleToken) }}
{{- fail "split.enabled: the modules call each other with a secret they share: set secret.moduleToken to 32 or more visible ASCII characters (openssl rand -hex 32), or existingSecret to a Secret with the key AIRSHIP_MODULE_TOKEN" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail (printf "autoscaling.maxReplicas (%d) is below autoscaling.minReplicas (%d)" (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: the ServiceMonitor scrapes the metrics port" }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.containerPort)) }}
{{- fail (printf "metrics.port and containerPort are both %d: metrics are served on a port of their own" (int .Values.containerPort)) }}
{{- end }}
{{- end }}

{{/* A value of `config` as an environment variable's text. */}}
{{- define "airship.envValue" -}}
{{- if kindIs "float64" . }}{{ printf "%d" (int64 .) }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/* The settings the ConfigMap holds: `config` plus the ones the chart sets. */}}
{{- define "airship.configData" -}}
AIRSHIP_ADDR: {{ printf ":%d" (int .Values.containerPort) | quote }}
AIRSHIP_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.shutdownTimeoutSeconds) | quote }}
AIRSHIP_METRICS_ADDR: {{ ternary (printf ":%d" (int .Values.metrics.port)) "" .Values.metrics.enabled | quote }}
{{- if eq .Values.mode "embedded" }}
AIRSHIP_DATA_DIR: "/data"
{{- end }}
{{- range $key, $value := .Values.config }}
{{ printf "AIRSHIP_%s" (upper $key) }}: {{ include "airship.envValue" $value | quote }}
{{- end }}
{{- end }}

{{/*
The environment variables an airship container takes from a Secret.
Arguments: dict "root" $, "secretName" NAME and "postgres", "redis",
"apiKeys", "amqp", "moduleToken" (whether to include AIRSHIP_POSTGRES_URL,
AIRSHIP_REDIS_URL (the backend URLs only in production mode), the
optional AIRSHIP_API_KEYS, the optional AIRSHIP_AMQP_URL, and
AIRSHIP_MODULE_TOKEN, which a split deployment needs), and "files": the
Secret is mounted at airship.secretDir, and each variable names its file
instead (AIRSHIP_<KEY>_FILE). An optional key of an existingSecret, which
may be absent, stays a variable.
*/}}
{{- define "airship.secretEnv" -}}
{{- $root := .root }}
{{- $files := .files }}
{{- $secretName := .secretName }}
{{- $optional := dict "AIRSHIP_API_KEYS" (ne (len $root.Values.secret.apiKeys) 0) "AIRSHIP_AMQP_URL" (ne $root.Values.secret.amqpUrl "") }}
{{- $wanted := dict "AIRSHIP_POSTGRES_URL" (and .postgres (ne $root.Values.mode "embedded")) "AIRSHIP_REDIS_URL" (and .redis (ne $root.Values.mode "embedded")) "AIRSHIP_API_KEYS" .apiKeys "AIRSHIP_AMQP_URL" .amqp "AIRSHIP_MODULE_TOKEN" .moduleToken }}
{{- range $name := list "AIRSHIP_POSTGRES_URL" "AIRSHIP_REDIS_URL" "AIRSHIP_API_KEYS" "AIRSHIP_AMQP_URL" "AIRSHIP_MODULE_TOKEN" }}
{{- if get $wanted $name }}
{{- $isOptional := hasKey $optional $name }}
{{- if and $files (or (not $isOptional) (and (not $root.Values.existingSecret) (get $optional $name))) }}
- name: {{ $name }}_FILE
  value: {{ include "airship.secretDir" $root }}/{{ $name }}
{{- else if not $files }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ $name }}
      {{- if $isOptional }}
      optional: true
      {{- end }}
{{- else if $root.Values.existingSecret }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ $name }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the pods mount the Secret when secretsAsFiles is set. */}}
{{- define "airship.secretDir" -}}
/run/secrets/airship
{{- end }}

{{/* Whether the pods mount the Secret: secretsAsFiles, and there is one. */}}
{{- define "airship.mountSecret" -}}
{{- if and .Values.secretsAsFiles (or .Values.existingSecret (include "airship.secretData" . | trim)) }}true{{ end }}
{{- end }}

{{/* Secret data: the backend URLs, API keys, RabbitMQ URL and module token, base64-encoded. */}}
{{- define "airship.secretData" -}}
{{- if ne .Values.mode "embedded" }}
AIRSHIP_POSTGRES_URL: {{ .Values.secret.postgresUrl | b64enc | quote }}
AIRSHIP_REDIS_URL: {{ .Values.secret.redisUrl | b64enc | quote }}
{{- end }}
{{- if .Values.secret.apiKeys }}
AIRSHIP_API_KEYS: {{ join "," .Values.secret.apiKeys | b64enc | quote }}
{{- end }}
{{- if .Values.secret.amqpUrl }}
AIRSHIP_AMQP_URL: {{ .Values.secret.amqpUrl | b64enc | quote }}
{{- end }}
{{- if and .Values.split.enabled .Values.secret.moduleToken }}
AIRSHIP_MODULE_TOKEN: {{ .Values.secret.moduleToken | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
The pod template of an airship server. Arguments: dict "root" $,
"volumeMounts" (extra mounts, as a list) and "workload" (an item of
airship.workloads). Each workload (a Deployment per module, or one
StatefulSet) renders it.
*/}}
{{- define "airship.podTemplate" -}}
{{- $root := .root }}
{{- $w := .workload }}
{{- with $root }}
metadata:
  labels:
    {{- include "airship.componentSelectorLabels" (dict "root" . "component" $w.component) | nindent 4 }}
    app.kubernetes.io/version: {{ include "airship.version" . | quote }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "airship.configData" . | trim | sha256sum }}
    {{- if not .Values.existingSecret }}
    checksum/secret: {{ include "airship.secretData" . | trim | sha256sum }}
    {{- end }}
    {{- if and .Values.metrics.enabled .Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .Values.metrics.port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "airship.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ add (int .Values.preStopSleepSeconds) (int .Values.shutdownTimeoutSeconds) (int .Values.terminationMarginSeconds) }}
  containers:
    - name: airship
      image: {{ include "airship.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve"]
      ports:
        - name: http
          containerPort: {{ .Values.containerPort }}
          protocol: TCP
        {{- if .Values.metrics.enabled }}
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "airship.fullname" . }}
      env:
        {{- if ne $w.module "all" }}
        - name: AIRSHIP_MODULES
          value: {{ $w.module }}
        {{- end }}
        {{- if or (eq $w.module "gateway") (eq $w.module "orders") }}
        - name: AIRSHIP_PRODUCTS_URL
          value: {{ include "airship.moduleURL" (dict "root" . "module" "products") | quote }}
        {{- end }}
        {{- if eq $w.module "gateway" }}
        - name: AIRSHIP_ORDERS_URL
          value: {{ include "airship.moduleURL" (dict "root" . "module" "orders") | quote }}
        {{- end }}
        {{- include "airship.secretEnv" (dict "root" . "secretName" (include "airship.secretName" .) "postgres" $w.postgres "redis" $w.redis "apiKeys" $w.apiKeys "amqp" $w.amqp "moduleToken" $w.moduleToken "files" (include "airship.mountSecret" .)) | trim | nindent 8 }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      {{- if gt (int .Values.preStopSleepSeconds) 0 }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ .Values.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if include "airship.mountSecret" . }}
        - name: secrets
          mountPath: {{ include "airship.secretDir" . }}
          readOnly: true
        {{- end }}
        {{- with $.volumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if include "airship.mountSecret" . }}
    - name: secrets
      secret:
        secretName: {{ include "airship.secretName" . }}
        defaultMode: 0440
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
