{{/* Name of the chart, for the app.kubernetes.io/name label. */}}
{{- define "auth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: "<release>-<name>" unless fullnameOverride is set. */}}
{{- define "auth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "auth.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels that select the pods; never change them on upgrade. */}}
{{- define "auth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "auth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "auth.selectorLabels" . }}
app.kubernetes.io/version: {{ include "auth.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: moviebag
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "auth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "auth.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* registry/repository:tag[@digest] */}}
{{- define "auth.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end }}
{{- $ref := printf "%s:%s" $repo (include "auth.imageTag" .) }}
{{- if .Values.image.digest }}{{ $ref = printf "%s@%s" $ref .Values.image.digest }}{{ end }}
{{- $ref }}
{{- end }}

{{/* Storage settings: this chart's storage.* over global.moviebag.storage.*, templated. */}}
{{- define "auth.storageSecretName" -}}
{{- $g := ((.Values.global).moviebag).storage | default dict }}
{{- if .Values.storage.existingSecret }}
{{- tpl .Values.storage.existingSecret . }}
{{- else if $g.existingSecret }}
{{- tpl $g.existingSecret . }}
{{- else }}
{{- printf "%s-storage" (include "auth.fullname" .) }}
{{- end }}
{{- end }}

{{- define "auth.storageSecretManaged" -}}
{{- $g := ((.Values.global).moviebag).storage | default dict }}
{{- if not (or .Values.storage.existingSecret $g.existingSecret) }}true{{ end }}
{{- end }}

{{- define "auth.mongoUri" -}}
{{- $g := ((.Values.global).moviebag).storage | default dict }}
{{- $v := .Values.storage.mongoUri | default $g.mongoUri }}
{{- tpl (required "storage.mongoUri (or global.moviebag.storage.mongoUri, or an existingSecret) is required" $v) . }}
{{- end }}

{{- define "auth.redisUrl" -}}
{{- $g := ((.Values.global).moviebag).storage | default dict }}
{{- $v := .Values.storage.redisUrl | default $g.redisUrl }}
{{- tpl (required "storage.redisUrl (or global.moviebag.storage.redisUrl, or an existingSecret) is required" $v) . }}
{{- end }}

{{- define "auth.signingKeysSecretName" -}}
{{- if .Values.signingKeys.existingSecret }}
{{- tpl .Values.signingKeys.existingSecret . }}
{{- else }}
{{- printf "%s-signing-keys" (include "auth.fullname" .) }}
{{- end }}
{{- end }}

{{/* Render a value that may hold template expressions (a list or map of peers). */}}
{{- define "auth.tplvalues" -}}
{{- if kindIs "string" .value }}
{{- tpl .value .context }}
{{- else }}
{{- tpl (.value | toYaml) .context }}
{{- end }}
{{- end }}

{{/* Seconds in a Go duration string such as "5s", "500ms" or "1m30s". */}}
{{- define "auth.seconds" -}}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" . -1 }}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 }}
{{- $unit := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" }}
{{- $scale := get (dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0) $unit }}
{{- $total = addf $total (mulf $n $scale) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
Refuse a shutdown that cannot finish before the kubelet's SIGKILL: after SIGTERM the pod waits
shutdownDrainDelay (endpoints drop it), then shuts both servers down within shutdownTimeout; keep 5 s
for the kubelet and the process exit.
*/}}
{{- define "auth.validateShutdown" -}}
{{- $need := addf (include "auth.seconds" .Values.config.shutdownDrainDelay | float64) (include "auth.seconds" .Values.config.shutdownTimeout | float64) 5 }}
{{- if gt $need (float64 .Values.terminationGracePeriodSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least config.shutdownDrainDelay + config.shutdownTimeout + 5 s (%v s): the pod would be killed in the middle of its shutdown" .Values.terminationGracePeriodSeconds $need) }}
{{- end }}
{{- end }}

{{/* global.moviebag.neighbours with this chart's defaults under it (the umbrella's values win). */}}
{{- define "auth.neighbours" -}}
{{- ((.Values.global).moviebag).neighbours | default dict | toYaml }}
{{- end }}

{{/*
NetworkPolicy peers of one neighbour (routing, prometheus or dns of global.moviebag.neighbours): its pods,
by namespace (`namespaces` or `namespace`) and podLabels, then one ipBlock per CIDR of ipBlocks. Renders a
YAML list, [] when the neighbour names nothing.
*/}}
{{- define "auth.neighbourPeers" -}}
{{- $n := . | default dict }}
{{- $namespaces := $n.namespaces | default list }}
{{- if $n.namespace }}{{ $namespaces = append $namespaces $n.namespace }}{{ end }}
{{- $peers := list }}
{{- range $namespaces }}
{{- $peer := dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .)) }}
{{- with $n.podLabels }}{{ $_ := set $peer "podSelector" (dict "matchLabels" .) }}{{ end }}
{{- $peers = append $peers $peer }}
{{- end }}
{{- range $n.ipBlocks }}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" .)) }}
{{- end }}
{{- toYaml $peers }}
{{- end }}

{{/*
The checksum of an existing storage Secret: its data when helm can read it (helm install/upgrade), so that
new credentials roll the pods; only its name when helm cannot see the cluster (helm template, Argo CD), where
a rotation needs a restart (kubectl rollout restart) or a podAnnotations change.
*/}}
{{- define "auth.existingStorageChecksum" -}}
{{- $name := include "auth.storageSecretName" . }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace $name }}
{{- if and $secret $secret.data }}
{{- pick $secret.data .Values.storage.mongoUriKey .Values.storage.redisUrlKey | toJson | printf "%s/%s" $name | sha256sum }}
{{- else }}
{{- $name | sha256sum }}
{{- end }}
{{- end }}

{{/* "true" when helm can read the cluster: lookup answers a list (empty in `helm template` and Argo CD). */}}
{{- define "auth.clusterReachable" -}}
{{- if lookup "v1" "Secret" .Release.Namespace "" }}true{{ end }}
{{- end }}

{{/*
The Secret with SMTP_USERNAME and SMTP_PASSWORD: mail.existingSecret, else the chart-made one when
mail.username is set, else none (no SMTP authentication).
*/}}
{{- define "auth.mailSecretName" -}}
{{- if .Values.mail.existingSecret }}
{{- tpl .Values.mail.existingSecret . }}
{{- else if .Values.mail.username }}
{{- printf "%s-mail" (include "auth.fullname" .) }}
{{- end }}
{{- end }}
