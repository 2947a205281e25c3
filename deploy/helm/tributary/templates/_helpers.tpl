{{/* Release-scoped name prefix of every object. */}}
{{- define "tributary.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's objects: dict "root" $ "component" NAME. */}}
{{- define "tributary.name" -}}
{{- printf "%s-%s" (include "tributary.fullname" .root) .component -}}
{{- end -}}

{{- define "tributary.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tributary.labels" -}}
{{ include "tributary.selectorLabels" . }}
app.kubernetes.io/part-of: tributary
app.kubernetes.io/version: {{ .root.Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* Image of a binary: dict "root" $ "image" NAME. */}}
{{- define "tributary.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .image .root.Values.image.tag -}}
{{- end -}}

{{- define "tributary.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tributary.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* What each service needs beyond the shared settings. */}}
{{- define "tributary.traits" -}}
ingest: {stateful: true, apiKeys: true, consumer: false}
embed: {models: true, gpu: true, consumer: true}
retrieve: {qdrant: true, consumer: true}
generate: {models: true, gpu: true, consumer: true}
moderate: {consumer: true}
audit: {stateful: true, apiKeys: true, consumer: false}
edge: {apiKeys: true, consumer: false}
{{- end -}}

{{/* The seven services, in pipeline order. */}}
{{- define "tributary.serviceNames" -}}
[ingest, embed, retrieve, generate, moderate, audit, edge]
{{- end -}}

{{- define "tributary.kafkaBrokers" -}}
{{- if .Values.broker.enabled -}}
{{- printf "%s-broker:9092" (include "tributary.fullname" .) -}}
{{- else -}}
{{- required "kafka.brokers is required unless broker.enabled" .Values.kafka.brokers -}}
{{- end -}}
{{- end -}}

{{/* "true" when the services reach Kafka over TLS (never the embedded broker). */}}
{{- define "tributary.kafkaTLS" -}}
{{- if and .Values.kafka.tls.enabled (not .Values.broker.enabled) -}}true{{- end -}}
{{- end -}}

{{- define "tributary.qdrantAddr" -}}
{{- if .Values.vectordb.enabled -}}
{{- printf "%s-vectordb:6334" (include "tributary.fullname" .) -}}
{{- else -}}
{{- required "qdrant.addr is required unless vectordb.enabled" .Values.qdrant.addr -}}
{{- end -}}
{{- end -}}

{{/* A Secret key as an environment variable: dict "root" $ "env" NAME "key" KEY. */}}
{{- define "tributary.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secrets.name }}
      key: {{ .key }}
{{- end -}}

{{/* Environment of a service: dict "root" $ "name" SERVICE. */}}
{{- define "tributary.serviceEnv" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $t := index (include "tributary.traits" $root | fromYaml) .name -}}
- name: TRIBUTARY_HTTP_ADDR
  value: "0.0.0.0:8080"
- name: TRIBUTARY_KAFKA_BROKERS
  value: {{ include "tributary.kafkaBrokers" $root | quote }}
- name: TRIBUTARY_TOPIC_PREFIX
  value: {{ $v.topicPrefix | quote }}
- name: TRIBUTARY_LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- with $v.tracing }}
{{- if .otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .otlpEndpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "tributary-%s" $.name | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
{{- if .samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | quote }}
{{- end }}
{{- end }}
{{- end }}
- name: TRIBUTARY_PROVISION_TOPICS
  value: {{ $v.kafka.topics.provision | quote }}
- name: TRIBUTARY_TOPIC_PARTITIONS
  value: {{ $v.kafka.topics.partitions | quote }}
- name: TRIBUTARY_TOPIC_REPLICATION
  value: {{ ternary 1 $v.kafka.topics.replication $v.broker.enabled | quote }}
{{- if $v.kafka.sasl.mechanism }}
- name: TRIBUTARY_KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: TRIBUTARY_KAFKA_USERNAME
  value: {{ default .name (index $v.kafka.sasl.usernames .name) | quote }}
- name: TRIBUTARY_KAFKA_PASSWORD_FILE
  value: {{ ternary "/vault/secrets/kafka-password" "/etc/tributary/kafka/kafka-password" (eq $v.secrets.provider "vault-agent") }}
{{- end }}
{{- if include "tributary.kafkaTLS" $root }}
- name: TRIBUTARY_KAFKA_TLS
  value: "true"
{{- if $v.kafka.tls.caSecret.name }}
- name: TRIBUTARY_KAFKA_TLS_CA
  value: /etc/tributary/kafka-ca/ca.crt
{{- end }}
{{- if $v.kafka.tls.clientSecret.name }}
- name: TRIBUTARY_KAFKA_TLS_CERT
  value: /etc/tributary/kafka-client/tls.crt
- name: TRIBUTARY_KAFKA_TLS_KEY
  value: /etc/tributary/kafka-client/tls.key
{{- end }}
{{- end }}
{{- if $t.stateful }}
- name: TRIBUTARY_DATA_DIR
  value: /data
{{- end }}
{{- if $t.apiKeys }}
{{ include "tributary.secretEnv" (dict "root" $root "env" "TRIBUTARY_API_KEYS" "key" $v.secrets.keys.apiKeys) }}
{{- end }}
{{- if $t.qdrant }}
- name: TRIBUTARY_QDRANT_ADDR
  value: {{ include "tributary.qdrantAddr" $root | quote }}
{{ include "tributary.secretEnv" (dict "root" $root "env" "TRIBUTARY_QDRANT_API_KEY" "key" $v.secrets.keys.qdrantApiKey) }}
{{- if and $v.qdrant.tls.enabled (not $v.vectordb.enabled) }}
- name: TRIBUTARY_QDRANT_TLS
  value: "true"
{{- if $v.qdrant.tls.caSecret.name }}
- name: TRIBUTARY_QDRANT_TLS_CA
  value: /etc/tributary/qdrant-ca/ca.crt
{{- end }}
{{- end }}
{{- end }}
{{- if eq .name "ingest" }}
{{- if gt (int $v.services.ingest.replicas) 1 }}
# Several side by side: each its own documents consumer group.
- name: TRIBUTARY_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- end }}
{{- if eq .name "edge" }}
- name: TRIBUTARY_REPLICA_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- if eq .name "generate" }}
{{- $g := $v.services.generate }}
{{- $url := $g.inferenceURL }}
{{- if and (not $url) $v.inference.enabled }}
{{- $url = printf "http://%s-inference:%d/v1" (include "tributary.fullname" $root) (int $v.inference.port) }}
{{- end }}
{{- if $url }}
- name: TRIBUTARY_INFERENCE_URL
  value: {{ $url | quote }}
{{- if $g.inferenceModel }}
- name: TRIBUTARY_INFERENCE_MODEL
  value: {{ $g.inferenceModel | quote }}
{{- end }}
- name: TRIBUTARY_INFERENCE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.name }}
      key: {{ $v.secrets.keys.inferenceApiKey }}
      optional: true
{{- end }}
{{- end }}
{{- if and (eq .name "audit") $v.vault.enabled }}
{{- $a := $v.vault }}
- name: TRIBUTARY_VAULT_ADDR
  value: {{ $a.addr | quote }}
- name: TRIBUTARY_VAULT_AUTH
  value: {{ $a.auth | quote }}
{{- if $a.namespace }}
- name: TRIBUTARY_VAULT_NAMESPACE
  value: {{ $a.namespace | quote }}
{{- end }}
{{- if $a.authMount }}
- name: TRIBUTARY_VAULT_AUTH_MOUNT
  value: {{ $a.authMount | quote }}
{{- end }}
{{- if $a.transitMount }}
- name: TRIBUTARY_VAULT_TRANSIT_MOUNT
  value: {{ $a.transitMount | quote }}
{{- end }}
{{- if $a.keyPrefix }}
- name: TRIBUTARY_VAULT_KEY_PREFIX
  value: {{ $a.keyPrefix | quote }}
{{- end }}
{{- if $a.caSecret.name }}
- name: TRIBUTARY_VAULT_CACERT
  value: /etc/tributary/vault-ca/ca.crt
{{- end }}
{{- if eq $a.auth "token" }}
{{ include "tributary.secretEnv" (dict "root" $root "env" "TRIBUTARY_VAULT_TOKEN" "key" $v.secrets.keys.vaultToken) }}
{{- else if eq $a.auth "approle" }}
- name: TRIBUTARY_VAULT_ROLE_ID
  value: {{ required "vault.roleId is required with vault.auth approle" $a.roleId | quote }}
- name: TRIBUTARY_VAULT_SECRET_ID_FILE
  value: /etc/tributary/vault-approle/secret-id
{{- else if eq $a.auth "kubernetes" }}
- name: TRIBUTARY_VAULT_K8S_ROLE
  value: {{ required "vault.k8sRole is required with vault.auth kubernetes" $a.k8sRole | quote }}
{{- else }}
{{- fail (printf "vault.auth %q is not token, approle or kubernetes" $a.auth) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret and key of a service's Kafka password: dict "root" $ "name" SERVICE, as YAML. */}}
{{- define "tributary.kafkaPasswordRef" -}}
{{- $v := .root.Values -}}
{{- $ref := index $v.kafka.sasl.passwordSecrets .name | default dict -}}
name: {{ $ref.name | default $v.secrets.name }}
key: {{ $ref.key | default (printf "%s.password" .name) }}
{{- end -}}

{{/* A secret volume: dict "name" N "secret" S "items" LIST. */}}
{{- define "tributary.secretVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
{{- range .items }}
      - key: {{ index . 0 }}
        path: {{ index . 1 }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts of a service: dict "root" $ "name" SERVICE "mounts" BOOL. */}}
{{- define "tributary.serviceVolumes" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $t := index (include "tributary.traits" $root | fromYaml) .name -}}
{{- if .mounts }}
- name: tmp
  mountPath: /tmp
{{- if $t.stateful }}
- name: data
  mountPath: /data
{{- end }}
{{- if and $v.kafka.sasl.mechanism (ne $v.secrets.provider "vault-agent") }}
- name: kafka-password
  mountPath: /etc/tributary/kafka
  readOnly: true
{{- end }}
{{- if and (include "tributary.kafkaTLS" $root) $v.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/tributary/kafka-ca
  readOnly: true
{{- end }}
{{- if and (include "tributary.kafkaTLS" $root) $v.kafka.tls.clientSecret.name }}
- name: kafka-client
  mountPath: /etc/tributary/kafka-client
  readOnly: true
{{- end }}
{{- if and $t.models $v.models.claimName }}
- name: models
  mountPath: /models
  readOnly: true
{{- end }}
{{- if and $t.qdrant $v.qdrant.tls.enabled $v.qdrant.tls.caSecret.name (not $v.vectordb.enabled) }}
- name: qdrant-ca
  mountPath: /etc/tributary/qdrant-ca
  readOnly: true
{{- end }}
{{- if and (eq .name "audit") $v.vault.enabled $v.vault.caSecret.name }}
- name: vault-ca
  mountPath: /etc/tributary/vault-ca
  readOnly: true
{{- end }}
{{- if and (eq .name "audit") $v.vault.enabled (eq $v.vault.auth "approle") }}
- name: vault-approle
  mountPath: /etc/tributary/vault-approle
  readOnly: true
{{- end }}
{{- else }}
- name: tmp
  emptyDir: {}
{{- if and $v.kafka.sasl.mechanism (ne $v.secrets.provider "vault-agent") }}
{{- $ref := include "tributary.kafkaPasswordRef" (dict "root" $root "name" .name) | fromYaml }}
{{ include "tributary.secretVolume" (dict "name" "kafka-password" "secret" $ref.name "items" (list (list $ref.key "kafka-password"))) }}
{{- end }}
{{- if and (include "tributary.kafkaTLS" $root) $v.kafka.tls.caSecret.name }}
{{ include "tributary.secretVolume" (dict "name" "kafka-ca" "secret" $v.kafka.tls.caSecret.name "items" (list (list $v.kafka.tls.caSecret.key "ca.crt"))) }}
{{- end }}
{{- if and (include "tributary.kafkaTLS" $root) $v.kafka.tls.clientSecret.name }}
{{ include "tributary.secretVolume" (dict "name" "kafka-client" "secret" $v.kafka.tls.clientSecret.name "items" (list (list $v.kafka.tls.clientSecret.certKey "tls.crt") (list $v.kafka.tls.clientSecret.keyKey "tls.key"))) }}
{{- end }}
{{- if and $t.models $v.models.claimName }}
- name: models
  persistentVolumeClaim:
    claimName: {{ $v.models.claimName }}
    readOnly: true
{{- end }}
{{- if and $t.qdrant $v.qdrant.tls.enabled $v.qdrant.tls.caSecret.name (not $v.vectordb.enabled) }}
{{ include "tributary.secretVolume" (dict "name" "qdrant-ca" "secret" $v.qdrant.tls.caSecret.name "items" (list (list $v.qdrant.tls.caSecret.key "ca.crt"))) }}
{{- end }}
{{- if and (eq .name "audit") $v.vault.enabled $v.vault.caSecret.name }}
{{ include "tributary.secretVolume" (dict "name" "vault-ca" "secret" $v.vault.caSecret.name "items" (list (list $v.vault.caSecret.key "ca.crt"))) }}
{{- end }}
{{- if and (eq .name "audit") $v.vault.enabled (eq $v.vault.auth "approle") }}
{{ include "tributary.secretVolume" (dict "name" "vault-approle" "secret" $v.secrets.name "items" (list (list $v.secrets.keys.vaultSecretId "secret-id"))) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Vault Agent injector annotations of a service's pods: dict "root" $ "name" SERVICE. */}}
{{- define "tributary.vaultAgentAnnotations" -}}
{{- $v := .root.Values -}}
{{- if eq $v.secrets.provider "vault-agent" }}
vault.hashicorp.com/agent-inject: "true"
vault.hashicorp.com/role: {{ $v.secrets.vaultAgent.role | quote }}
{{- if $v.kafka.sasl.mechanism }}
{{- $path := printf "%s/%s" $v.secrets.vaultAgent.kafkaPasswordPath .name }}
vault.hashicorp.com/agent-inject-secret-kafka-password: {{ $path | quote }}
vault.hashicorp.com/agent-inject-template-kafka-password: {{ printf "{{- with secret %q -}}{{ .Data.data.%s }}{{- end -}}" $path $v.secrets.vaultAgent.kafkaPasswordField | quote }}
{{- end }}
{{- with $v.secrets.vaultAgent.annotations }}
{{ toYaml . }}
{{- end }}
{{- else if not (eq $v.secrets.provider "kubernetes") }}
{{- fail (printf "secrets.provider %q is not kubernetes or vault-agent" $v.secrets.provider) }}
{{- end }}
{{- end -}}

{{/* Scheduling of a pod: dict "s" SETTINGS (nodeSelector, tolerations, affinity, gpu). */}}
{{- define "tributary.scheduling" -}}
{{- $gpu := dict -}}
{{- if and .s.gpu .s.gpu.enabled }}{{ $gpu = .s.gpu }}{{ end -}}
{{- $ns := merge (dict) (.s.nodeSelector | default dict) ($gpu.nodeSelector | default dict) -}}
{{- with $ns }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $tol := concat (.s.tolerations | default list) ($gpu.tolerations | default list) -}}
{{- with $tol }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .s.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $gpu.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* Resources, with the GPU limit when enabled: dict "root" $ "s" SETTINGS. */}}
{{- define "tributary.resources" -}}
{{- $r := deepCopy (.s.resources | default dict) -}}
{{- if and .s.gpu .s.gpu.enabled -}}
{{- $limits := $r.limits | default dict -}}
{{- $_ := set $limits .root.Values.gpu.resourceName (int .s.gpu.count) -}}
{{- $_ := set $r "limits" $limits -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{/* The HTTP probes of a container: dict "root" $ "live" PATH "ready" PATH. */}}
{{- define "tributary.httpProbes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet: {path: {{ .live }}, port: http}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet: {path: {{ .live }}, port: http}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet: {path: {{ .ready }}, port: http}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end -}}

{{/* The settings map as sorted --flag=value arguments. */}}
{{- define "tributary.settingsArgs" -}}
{{- range $k := keys . | sortAlpha }}
- {{ printf "--%s=%v" $k (index $ $k) | quote }}
{{- end }}
{{- end -}}
