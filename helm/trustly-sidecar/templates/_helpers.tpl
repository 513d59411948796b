{{/*
Named templates. The ones an application chart uses in sidecar mode (all take this chart's
context: `index .Subcharts "trustly-sidecar"` from a parent chart, Helm >= 3.7):

  trustly-sidecar.container       the sidecar container, a YAML list item
  trustly-sidecar.volumes         the pod volume with the Secret, a YAML list item
  trustly-sidecar.podLabels       the label the notification Service and NetworkPolicy select
  trustly-sidecar.podAnnotations  a checksum of the ConfigMap, so a config change rolls the pods

Nothing here may depend on .Template: it is not set when a parent chart calls in.
*/}}

{{- define "trustly-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trustly-sidecar.fullname" -}}
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

{{- define "trustly-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object this chart renders. */}}
{{- define "trustly-sidecar.labels" -}}
helm.sh/chart: {{ include "trustly-sidecar.chart" . }}
{{ include "trustly-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trustly-sidecar
{{- end }}

{{/* Selector of the standalone Deployment's pods. */}}
{{- define "trustly-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trustly-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Sidecar mode: the label an application's pod template carries so the notification Service and the
NetworkPolicy find it. Its own key, so it never clashes with the app's app.kubernetes.io/* labels.
*/}}
{{- define "trustly-sidecar.podLabels" -}}
trustly-sidecar/instance: {{ include "trustly-sidecar.fullname" . }}
{{- end }}

{{/* The pods that run the sidecar: the Deployment's (standalone) or the application's (sidecar). */}}
{{- define "trustly-sidecar.workloadSelector" -}}
{{- if eq .Values.mode "standalone" }}
{{- include "trustly-sidecar.selectorLabels" . }}
{{- else if .Values.sidecar.podSelector }}
{{- toYaml .Values.sidecar.podSelector }}
{{- else }}
{{- include "trustly-sidecar.podLabels" . }}
{{- end }}
{{- end }}

{{- define "trustly-sidecar.podAnnotations" -}}
checksum/trustly-sidecar-config: {{ include "trustly-sidecar.configData" . | sha256sum }}
{{- end }}

{{- define "trustly-sidecar.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "trustly-sidecar.secretName" -}}
{{- if .Values.secret.create }}
{{- include "trustly-sidecar.fullname" . }}
{{- else }}
{{- .Values.secret.existingSecret }}
{{- end }}
{{- end }}

{{/* Is a Redis URL configured at all (plain or from the Secret)? "true" or "". */}}
{{- define "trustly-sidecar.hasRedis" -}}
{{- if or .Values.redis.url .Values.secret.keys.redisUrl }}true{{ end }}
{{- end }}

{{/*
Secret keys, the file each is projected to, and whether the key is in use. The password, token
and keys are files; the Redis URL is the one Secret value that reaches the process as an
environment variable (secretKeyRef), because the binary reads it from the environment only.
*/}}
{{- define "trustly-sidecar.secretFiles" -}}
{{- $k := .Values.secret.keys -}}
{{- $files := list
  (dict "key" $k.privateKey "file" "private-key.pem" "env" "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH")
  (dict "key" $k.password "file" "password" "env" "TRUSTLY_SIDECAR_PASSWORD_PATH")
  (dict "key" $k.grpcToken "file" "grpc-token" "env" "TRUSTLY_SIDECAR_GRPC_TOKEN_PATH")
  (dict "key" $k.trustlyPublicKey "file" "trustly-public-key.pem" "env" "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH")
  (dict "key" $k.trustlyNextPublicKey "file" "trustly-next-public-key.pem" "env" "TRUSTLY_SIDECAR_TRUSTLY_NEXT_PUBLIC_KEY_PATH")
  (dict "key" $k.redisCa "file" "redis-ca.pem" "env" "TRUSTLY_SIDECAR_REDIS_CA_PATH")
-}}
{{- toJson $files }}
{{- end }}

{{/*
The TLS Secrets in use (kubernetes.io/tls, as cert-manager writes them): for each listener with
one, its volume, mount directory, the files it projects (ca.crt only with clientAuth) and the
settings naming them.
*/}}
{{- define "trustly-sidecar.tlsSecrets" -}}
{{- $v := .Values -}}
{{- $all := list -}}
{{- range $l := list (dict "name" "grpc" "env" "GRPC" "tls" $v.grpc.tls) (dict "name" "intake" "env" "INTAKE" "tls" $v.intake.tls) }}
{{- if $l.tls.secretName }}
{{- $all = append $all (dict "name" $l.name "env" $l.env "secretName" $l.tls.secretName "clientAuth" $l.tls.clientAuth
  "volume" (printf "trustly-sidecar-%s-tls" $l.name) "dir" (printf "%s/%s" (trimSuffix "/" $v.tlsMountPath) $l.name)) }}
{{- end }}
{{- end }}
{{- toJson $all }}
{{- end }}

{{/*
Fails the render on any configuration the sidecar would refuse at start (exit code 64) or that
would be unsafe. values.schema.json checks the same where JSON Schema can; these also hold with
--skip-schema-validation and give one clear message each.
*/}}
{{- define "trustly-sidecar.validate" -}}
{{- $v := .Values -}}
{{- if not (has $v.mode (list "sidecar" "standalone")) }}
{{- fail (printf "mode must be \"sidecar\" or \"standalone\", got %q" (toString $v.mode)) }}
{{- end }}
{{- if not $v.trustly.username }}
{{- fail "trustly.username is required (the Trustly API username)" }}
{{- end }}
{{- if not (regexMatch "^https://[^?#\\s]+$" (toString $v.notifications.url)) }}
{{- fail "notifications.url is required: the public https:// URL Trustly posts notifications to, without a query string" }}
{{- end }}
{{- if not (and $v.secret.keys.privateKey $v.secret.keys.password) }}
{{- fail "secret.keys.privateKey and secret.keys.password are required" }}
{{- end }}
{{- if and (not $v.secret.create) (not $v.secret.existingSecret) }}
{{- fail "set secret.existingSecret to the Secret holding the private key and password, or secret.create=true with --set-file secret.data.privateKey=... and secret.data.password=..." }}
{{- end }}
{{- if and $v.secret.create $v.secret.existingSecret }}
{{- fail "secret.create and secret.existingSecret exclude each other" }}
{{- end }}
{{- if not $v.secret.create }}
{{- range $name, $data := $v.secret.data }}
{{- if $data }}
{{- fail (printf "secret.data.%s is only used with secret.create=true (existingSecret %q is used as it is)" $name (toString $v.secret.existingSecret)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.secret.create }}
{{- range $name := list "privateKey" "password" "grpcToken" "trustlyPublicKey" "trustlyNextPublicKey" "redisCa" "redisUrl" }}
{{- $key := index $v.secret.keys $name }}
{{- $data := index $v.secret.data $name }}
{{- if and $key (not $data) }}
{{- fail (printf "secret.create is true and secret.keys.%s is set: pass its content with --set-file secret.data.%s=<file>" $name $name) }}
{{- end }}
{{- if and $data (not $key) }}
{{- fail (printf "secret.data.%s is given but secret.keys.%s is empty: name the key to use it" $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq $v.mode "standalone") (not $v.secret.keys.grpcToken) }}
{{- fail "standalone mode serves gRPC on all interfaces and requires a bearer token: set secret.keys.grpcToken (the key holding the token in the Secret)" }}
{{- end }}
{{- if and (eq $v.mode "standalone") (not $v.grpc.tls.secretName) (not $v.grpc.allowPlaintext) }}
{{- fail "standalone mode serves gRPC on all interfaces and requires TLS: set grpc.tls.secretName (a kubernetes.io/tls Secret, e.g. from cert-manager), or grpc.allowPlaintext=true behind a mesh that encrypts" }}
{{- end }}
{{- range $name := list "grpc" "intake" }}
{{- $tls := (index $v $name).tls }}
{{- if and $tls.clientAuth (not $tls.secretName) }}
{{- fail (printf "%s.tls.clientAuth needs %s.tls.secretName (its ca.crt verifies the clients)" $name $name) }}
{{- end }}
{{- end }}
{{- if and $v.redis.url $v.secret.keys.redisUrl }}
{{- fail "redis.url and secret.keys.redisUrl exclude each other (a URL with a password belongs in the Secret)" }}
{{- end }}
{{- if $v.redis.url }}
{{- range $node := splitList "," $v.redis.url }}
{{- if not (regexMatch "^rediss?://[^\\s]+$" $node) }}
{{- fail "redis.url: every comma-separated entry must be a redis:// or rediss:// URL" }}
{{- end }}
{{- if regexMatch "^rediss?://[^/@]*:[^/@]*@" $node }}
{{- fail "redis.url carries a password: put the URL in the Secret and set secret.keys.redisUrl instead" }}
{{- end }}
{{- if and $v.secret.keys.redisCa (not (hasPrefix "rediss://" $node)) }}
{{- fail "secret.keys.redisCa is set but redis.url is not rediss:// (TLS)" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.redis.cluster (not (include "trustly-sidecar.hasRedis" .)) }}
{{- fail "redis.cluster is true but no Redis URL is set (redis.url or secret.keys.redisUrl)" }}
{{- end }}
{{- if and (eq $v.mode "standalone") (gt (int $v.replicaCount) 1) (not (include "trustly-sidecar.hasRedis" .)) }}
{{- fail "replicaCount > 1 needs Redis: without it every pod keeps its own in-memory notification log" }}
{{- end }}
{{- if and $v.sidecar.native (ne $v.mode "sidecar") }}
{{- fail "sidecar.native applies to sidecar mode only" }}
{{- end }}
{{- if and $v.example.enabled (ne $v.mode "sidecar") }}
{{- fail "example.enabled applies to sidecar mode only" }}
{{- end }}
{{- $managed := fromYaml (include "trustly-sidecar.managedConfig" .) }}
{{- range $name, $_ := $v.extraConfig }}
{{- if not (regexMatch "^TRUSTLY_SIDECAR_[A-Z0-9_]+$" $name) }}
{{- fail (printf "extraConfig: %q is not a TRUSTLY_SIDECAR_* setting" $name) }}
{{- end }}
{{- if or (hasKey $managed $name) (has $name (list "TRUSTLY_SIDECAR_REDIS_URL" "TRUSTLY_SIDECAR_SANDBOX")) (hasSuffix "_PATH" $name) }}
{{- fail (printf "extraConfig: %s is managed by the chart (or names a secret file) and cannot be set here" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The settings the chart derives from its values, as a YAML map (ConfigMap data). */}}
{{- define "trustly-sidecar.managedConfig" -}}
{{- $v := .Values -}}
{{- $cfg := dict
  "TRUSTLY_SIDECAR_ENVIRONMENT" $v.trustly.environment
  "TRUSTLY_SIDECAR_USERNAME" $v.trustly.username
  "TRUSTLY_SIDECAR_SIGNING_BACKEND" $v.trustly.signingBackend
  "TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT" $v.trustly.timeout
  "TRUSTLY_SIDECAR_NOTIFICATION_URL" $v.notifications.url
  "TRUSTLY_SIDECAR_NOTIFICATION_PATH" $v.notifications.path
  "TRUSTLY_SIDECAR_ACK_DEADLINE" $v.notifications.ackDeadline
  "TRUSTLY_SIDECAR_DECISION_DEADLINE" $v.notifications.decisionDeadline
  "TRUSTLY_SIDECAR_DECISION_FALLBACK" $v.notifications.decisionFallback
  "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN" (printf "%s:%d" $v.listenAddress (int $v.ports.notifications))
  "TRUSTLY_SIDECAR_OPS_LISTEN" (printf "%s:%d" $v.listenAddress (int $v.ports.ops))
  "TRUSTLY_SIDECAR_REDIS_CLUSTER" (ternary "true" "false" (eq (toString $v.redis.cluster) "true"))
  "TRUSTLY_SIDECAR_REDIS_PREFIX" $v.redis.prefix
  "TRUSTLY_SIDECAR_LOG_FORMAT" $v.logFormat
-}}
{{- if eq $v.mode "standalone" }}
{{- $_ := set $cfg "TRUSTLY_SIDECAR_GRPC_LISTEN" (printf "%s:%d" $v.listenAddress (int $v.ports.grpc)) }}
{{- else }}
{{- $_ := set $cfg "TRUSTLY_SIDECAR_GRPC_LISTEN" (printf "127.0.0.1:%d" (int $v.ports.grpc)) }}
{{- end }}
{{- with $v.trustly.url }}
{{- $_ := set $cfg "TRUSTLY_SIDECAR_TRUSTLY_URL" . }}
{{- end }}
{{- with $v.redis.url }}
{{- $_ := set $cfg "TRUSTLY_SIDECAR_REDIS_URL" . }}
{{- end }}
{{- range $f := include "trustly-sidecar.secretFiles" . | fromJsonArray }}
{{- if $f.key }}
{{- $_ := set $cfg $f.env (printf "%s/%s" (trimSuffix "/" $v.secret.mountPath) $f.file) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "TRUSTLY_SIDECAR_GRPC_ALLOW_PLAINTEXT" (ternary "true" "false" (and (eq $v.mode "standalone") (eq (toString $v.grpc.allowPlaintext) "true"))) }}
{{- range $t := include "trustly-sidecar.tlsSecrets" . | fromJsonArray }}
{{- $_ := set $cfg (printf "TRUSTLY_SIDECAR_%s_TLS_CERT_PATH" $t.env) (printf "%s/tls.crt" $t.dir) }}
{{- $_ := set $cfg (printf "TRUSTLY_SIDECAR_%s_TLS_KEY_PATH" $t.env) (printf "%s/tls.key" $t.dir) }}
{{- if $t.clientAuth }}
{{- $_ := set $cfg (printf "TRUSTLY_SIDECAR_%s_TLS_CLIENT_CA_PATH" $t.env) (printf "%s/ca.crt" $t.dir) }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* ConfigMap data: the managed settings plus extraConfig (validated not to overlap). */}}
{{- define "trustly-sidecar.configData" -}}
{{- $cfg := fromYaml (include "trustly-sidecar.managedConfig" .) }}
{{- range $name, $value := .Values.extraConfig }}
{{- $_ := set $cfg $name (toString $value) }}
{{- end }}
{{- range $name, $value := $cfg }}
{{ $name }}: {{ toString $value | quote }}
{{- end }}
{{- end }}

{{- define "trustly-sidecar.probe" -}}
{{- $probe := index .root.Values.probes .name -}}
httpGet:
  path: {{ .path }}
  port: trustly-ops
periodSeconds: {{ $probe.periodSeconds }}
timeoutSeconds: {{ $probe.timeoutSeconds }}
failureThreshold: {{ $probe.failureThreshold }}
{{- end }}

{{/*
The sidecar container, as one YAML list item. Include it under `containers:` (or under
`initContainers:` when sidecar.native is true) with nindent. It mounts the Secret volume from
"trustly-sidecar.volumes" read-only; no other container of the pod should mount that volume.
*/}}
{{- define "trustly-sidecar.container" -}}
{{- include "trustly-sidecar.validate" . -}}
{{- $v := .Values -}}
- name: {{ $v.containerName }}
  image: {{ include "trustly-sidecar.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  ports:
    {{- if eq $v.mode "standalone" }}
    - name: trustly-grpc
      containerPort: {{ $v.ports.grpc }}
      protocol: TCP
    {{- end }}
    - name: trustly-notify
      containerPort: {{ $v.ports.notifications }}
      protocol: TCP
    - name: trustly-ops
      containerPort: {{ $v.ports.ops }}
      protocol: TCP
  envFrom:
    - configMapRef:
        name: {{ include "trustly-sidecar.fullname" . }}
  {{- if or $v.secret.keys.redisUrl $v.extraEnv }}
  env:
    {{- if $v.secret.keys.redisUrl }}
    - name: TRUSTLY_SIDECAR_REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ include "trustly-sidecar.secretName" . }}
          key: {{ $v.secret.keys.redisUrl }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  volumeMounts:
    - name: {{ $v.secret.volumeName }}
      mountPath: {{ $v.secret.mountPath }}
      readOnly: true
    {{- range $t := include "trustly-sidecar.tlsSecrets" . | fromJsonArray }}
    - name: {{ $t.volume }}
      mountPath: {{ $t.dir }}
      readOnly: true
    {{- end }}
  {{- if $v.probes.startup.enabled }}
  startupProbe:
    {{- include "trustly-sidecar.probe" (dict "root" . "name" "startup" "path" "/healthz") | nindent 4 }}
  {{- end }}
  {{- if $v.probes.liveness.enabled }}
  livenessProbe:
    {{- include "trustly-sidecar.probe" (dict "root" . "name" "liveness" "path" "/healthz") | nindent 4 }}
  {{- end }}
  {{- if $v.probes.readiness.enabled }}
  readinessProbe:
    {{- include "trustly-sidecar.probe" (dict "root" . "name" "readiness" "path" "/readyz") | nindent 4 }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  {{- with $v.lifecycle }}
  lifecycle:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The pod volume with the Secret, as one YAML list item for the pod's `volumes:` (plus one item per
TLS Secret in use: trustly-sidecar.tlsSecrets). Only the keys in
use are projected, to fixed file names, with mode 0400 (256 decimal; the kubelet adds group read
when the pod has an fsGroup, so the non-root sidecar user can read them).
*/}}
{{- define "trustly-sidecar.volumes" -}}
- name: {{ .Values.secret.volumeName }}
  secret:
    secretName: {{ include "trustly-sidecar.secretName" . }}
    defaultMode: 256
    items:
      {{- range $f := include "trustly-sidecar.secretFiles" . | fromJsonArray }}
      {{- if $f.key }}
      - key: {{ $f.key }}
        path: {{ $f.file }}
      {{- end }}
      {{- end }}
{{- range $t := include "trustly-sidecar.tlsSecrets" . | fromJsonArray }}
- name: {{ $t.volume }}
  secret:
    secretName: {{ $t.secretName }}
    defaultMode: 256
    items:
      {{- range $file := ternary (list "tls.crt" "tls.key" "ca.crt") (list "tls.crt" "tls.key") $t.clientAuth }}
      - key: {{ $file }}
        path: {{ $file }}
      {{- end }}
{{- end }}
{{- end }}
