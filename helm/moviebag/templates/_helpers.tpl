{{/* Labels of the umbrella's own objects (dev databases, routes, tests). */}}
{{- define "moviebag.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: moviebag
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Service names of the subcharts (their fullname rule: "<release>-<chart>" unless overridden). */}}
{{- define "moviebag.authService" -}}
{{- .Values.auth.fullnameOverride | default (printf "%s-%s" .Release.Name (.Values.auth.nameOverride | default "auth")) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "moviebag.moviesService" -}}
{{- .Values.movies.fullnameOverride | default (printf "%s-%s" .Release.Name (.Values.movies.nameOverride | default "movies")) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The route table, shared by the Ingress and the HTTPRoute. It is the local gateway's:
/api/auth (prefix) and /.well-known/jwks.json (exact) to auth, /api/movies (prefix) to movies.
ingressPathType is the Ingress's: ingress-nginx from 1.12 validates Exact and Prefix paths strictly and
refuses a dot in them, so the JWKS path is ImplementationSpecific there (a prefix match on every
controller; nothing else lives under it).
*/}}
{{- define "moviebag.routes" -}}
- path: /api/auth
  match: Prefix
  service: {{ include "moviebag.authService" . }}
  port: {{ .Values.auth.ports.http | default 8081 }}
- path: /.well-known/jwks.json
  match: Exact
  ingressPathType: ImplementationSpecific
  service: {{ include "moviebag.authService" . }}
  port: {{ .Values.auth.ports.http | default 8081 }}
- path: /api/movies
  match: Prefix
  service: {{ include "moviebag.moviesService" . }}
  port: {{ .Values.movies.ports.http | default 8082 }}
{{- end }}

{{- define "moviebag.image" -}}
{{- $repo := .repository }}
{{- if .registry }}{{ $repo = printf "%s/%s" .registry $repo }}{{ end }}
{{- printf "%s:%s" $repo .tag }}
{{- end }}

{{- define "moviebag.mongodbName" -}}{{ printf "%s-mongodb" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end }}
{{- define "moviebag.redisName" -}}{{ printf "%s-redis" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end }}
{{- define "moviebag.mailpitName" -}}{{ printf "%s-mailpit" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end }}

{{/*
"true" when the HTTPRoute renders: httpRoute.enabled and the cluster serves the Gateway API's HTTPRoute
(`helm template` knows only what --api-versions tells it). On a cluster without the CRDs the route is
left out instead of failing the install with "no matches for kind HTTPRoute"; the NOTES say so.
*/}}
{{- define "moviebag.httpRouteOn" -}}
{{- if and .Values.httpRoute.enabled (or .Values.httpRoute.skipCapabilityCheck (.Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1/HTTPRoute")) }}true{{ end }}
{{- end }}
