{{/*
Helpers shared by every template. Those that need more than the root context take a
dict: root (the chart's root context $), name (a key of .Values.services) and track
("stable" or "canary").
*/}}

{{/* helm.sh/chart label: <chart>-<version>. */}}
{{- define "go-coffee.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object name of one service's Deployment, Service, ServiceAccount and so on:
namePrefix + name, with "-canary" for the canary track. Kubernetes Service names are
DNS labels of at most 63 characters: a longer name fails instead of being cut, so two
services can never end up with the same truncated name.
*/}}
{{- define "go-coffee.objectName" -}}
{{- $name := printf "%s%s" .root.Values.namePrefix .name -}}
{{- if eq (.track | default "stable") "canary" -}}
{{- $name = printf "%s-canary" $name -}}
{{- end -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "object name %q is %d characters long, over the 63 Kubernetes allows: shorten namePrefix %q or the service name %q" $name (len $name) .root.Values.namePrefix .name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/*
Labels that pick one track of one service's pods. Immutable once a Deployment exists:
never add to them. The stable Service must not select canary pods, hence `track`.
*/}}
{{- define "go-coffee.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
track: {{ .track | default "stable" }}
{{- end -}}

{{/* Labels that pick every pod of one service, both tracks (for policies and spreading). */}}
{{- define "go-coffee.serviceLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/*
The image settings in effect for a service's track: the service's image, with the
canary's tag and digest on the canary track.
*/}}
{{- define "go-coffee.imageValues" -}}
{{- $svc := index .root.Values.services .name -}}
{{- $image := pick $svc.image "repository" "tag" "digest" -}}
{{- if eq (.track | default "stable") "canary" -}}
{{- $canary := index .root.Values.canary.services .name -}}
{{- $_ := set $image "tag" (($canary.image).tag | default "") -}}
{{- $_ := set $image "digest" (($canary.image).digest | default "") -}}
{{- if not (or $image.tag $image.digest) -}}
{{- fail (printf "canary.services.%s.image.digest (or .tag) is required when canary.enabled is true: set it to the image under test, e.g. --set canary.services.%s.image.digest=sha256:..." .name .name) -}}
{{- end -}}
{{- end -}}
{{- toYaml $image -}}
{{- end -}}

{{/*
Image reference: [global.imageRegistry/]repository@digest when a digest is set (what
brewline deploys: the exact bytes it scanned), else repository:tag, the tag defaulting to
the chart's appVersion.
*/}}
{{- define "go-coffee.image" -}}
{{- $image := include "go-coffee.imageValues" . | fromYaml -}}
{{- $repository := required (printf "services.%s.image.repository is required" .name) $image.repository -}}
{{- with .root.Values.global.imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository ($image.tag | default .root.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/*
Version a track runs, as a label value: the image tag, else sha256-<first 12 hex> of the
digest, else the chart's appVersion. Characters a label cannot hold become "-".
*/}}
{{- define "go-coffee.version" -}}
{{- $image := include "go-coffee.imageValues" . | fromYaml -}}
{{- $version := .root.Chart.AppVersion -}}
{{- if $image.tag -}}
{{- $version = toString $image.tag -}}
{{- else if $image.digest -}}
{{- $version = printf "sha256-%s" (substr 7 19 $image.digest) -}}
{{- end -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" $version "-" | trunc 63 | trimAll "-_." -}}
{{- end -}}

{{/* Labels on every object of one service's track. */}}
{{- define "go-coffee.labels" -}}
helm.sh/chart: {{ include "go-coffee.chart" .root }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ .root.Chart.Name }}
app.kubernetes.io/version: {{ include "go-coffee.version" . | quote }}
{{ include "go-coffee.selectorLabels" . }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels on objects that belong to no single service. */}}
{{- define "go-coffee.releaseLabels" -}}
helm.sh/chart: {{ include "go-coffee.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
True ("true") when the service is a key of .Values.services and enabled; "" otherwise.
*/}}
{{- define "go-coffee.enabled" -}}
{{- $svc := index .root.Values.services .name -}}
{{- if and $svc $svc.enabled -}}true{{- end -}}
{{- end -}}

{{/*
Base URL of another service inside the namespace, for variables such as PRODUCER_URL.
*/}}
{{- define "go-coffee.url" -}}
{{- $svc := index .root.Values.services .name -}}
{{- printf "http://%s:%v" (include "go-coffee.objectName" (dict "root" .root "name" .name "track" "stable")) $svc.service.port -}}
{{- end -}}

{{/*
The plain environment of a track as a YAML map: what the chart sets (LISTEN_ADDR,
upstream URLs, managed service endpoints), then the service's env, then on the canary
track canary.env; a later source wins. Names that come from a Secret are left out.
*/}}
{{- define "go-coffee.plainEnv" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values.services .name -}}
{{- $env := dict "LISTEN_ADDR" (printf "0.0.0.0:%v" $root.Values.containerPort) -}}
{{- range $var, $upstream := $svc.upstreams -}}
{{- if include "go-coffee.enabled" (dict "root" $root "name" $upstream) -}}
{{- $_ := set $env $var (include "go-coffee.url" (dict "root" $root "name" $upstream)) -}}
{{- end -}}
{{- end -}}
{{- $managed := $root.Values.managedServices -}}
{{- if and (has "postgres" $svc.uses) $managed.postgres.host -}}
{{- $_ := set $env "DATABASE_HOST" $managed.postgres.host -}}
{{- $_ := set $env "DATABASE_PORT" (toString $managed.postgres.port) -}}
{{- $_ := set $env "DATABASE_NAME" $managed.postgres.database -}}
{{- $_ := set $env "DATABASE_SSLMODE" $managed.postgres.sslMode -}}
{{- end -}}
{{- if and (has "redis" $svc.uses) $managed.redis.host -}}
{{- $_ := set $env "REDIS_ADDR" (printf "%s:%v" $managed.redis.host $managed.redis.port) -}}
{{- $_ := set $env "REDIS_TLS" (toString $managed.redis.tls) -}}
{{- end -}}
{{- if and (has "kafka" $svc.uses) $managed.kafka.bootstrapBrokers -}}
{{- $_ := set $env "KAFKA_BROKERS" $managed.kafka.bootstrapBrokers -}}
{{- $_ := set $env "KAFKA_TLS" (toString $managed.kafka.tls) -}}
{{- end -}}
{{- range $var, $value := $svc.env -}}
{{- $_ := set $env $var $value -}}
{{- end -}}
{{- if eq (.track | default "stable") "canary" -}}
{{- range $var, $value := $root.Values.canary.env -}}
{{- $_ := set $env $var $value -}}
{{- end -}}
{{- end -}}
{{- $secret := include "go-coffee.secretEnv" . | fromYaml -}}
{{- range $var, $value := $env -}}
{{- if or (kindIs "invalid" $value) (hasKey $secret $var) -}}
{{- $_ := unset $env $var -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/*
Variables read from Secrets as a YAML map NAME -> {secretName, key}: the managed
services' credentials, then the service's own secretEnv (which wins).
*/}}
{{- define "go-coffee.secretEnv" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values.services .name -}}
{{- $refs := dict -}}
{{- $managed := $root.Values.managedServices -}}
{{- if and (has "postgres" $svc.uses) $managed.postgres.host $managed.postgres.existingSecret -}}
{{- $_ := set $refs "DATABASE_USER" (dict "secretName" $managed.postgres.existingSecret "key" $managed.postgres.usernameKey) -}}
{{- $_ := set $refs "DATABASE_PASSWORD" (dict "secretName" $managed.postgres.existingSecret "key" $managed.postgres.passwordKey) -}}
{{- end -}}
{{- if and (has "redis" $svc.uses) $managed.redis.host $managed.redis.existingSecret -}}
{{- $_ := set $refs "REDIS_AUTH_TOKEN" (dict "secretName" $managed.redis.existingSecret "key" $managed.redis.authTokenKey) -}}
{{- end -}}
{{- range $var, $ref := $svc.secretEnv -}}
{{- $_ := set $refs $var $ref -}}
{{- end -}}
{{- toYaml $refs -}}
{{- end -}}

{{/* One Deployment for one track of one service. */}}
{{- define "go-coffee.deployment" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values.services .name -}}
{{- $track := .track | default "stable" -}}
{{- $values := $root.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "go-coffee.objectName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "go-coffee.labels" . | nindent 4 }}
spec:
  {{- if eq $track "canary" }}
  replicas: {{ $values.canary.replicaCount }}
  {{- else if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      # Never below the wanted count during a rollout: readiness gates the new pods.
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "go-coffee.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "go-coffee.labels" . | nindent 8 }}
        version: {{ include "go-coffee.version" . | quote }}
        {{- with $svc.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $annotations := dict }}
      {{- if $values.metrics.enabled }}
      {{- $_ := set $annotations "prometheus.io/scrape" "true" }}
      {{- $_ := set $annotations "prometheus.io/port" (toString $values.containerPort) }}
      {{- $_ := set $annotations "prometheus.io/path" $values.metrics.path }}
      {{- end }}
      {{- range $key, $value := $svc.podAnnotations }}
      {{- $_ := set $annotations $key $value }}
      {{- end }}
      {{- with $annotations }}
      annotations:
        {{- range $key, $value := . }}
        {{ $key }}: {{ $value | toString | quote }}
        {{- end }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "go-coffee.objectName" (dict "root" $root "name" .name "track" "stable") }}
      # The services never call the Kubernetes API: no token in the pod.
      automountServiceAccountToken: false
      # No *_SERVICE_HOST variables: upstreams come in as explicit URLs.
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      {{- with $values.global.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "go-coffee.image" . | quote }}
          imagePullPolicy: {{ $values.global.imagePullPolicy }}
          ports:
            - name: http
              containerPort: {{ $values.containerPort }}
              protocol: TCP
          env:
            {{- range $var, $value := include "go-coffee.plainEnv" . | fromYaml }}
            - name: {{ $var }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- range $var, $ref := include "go-coffee.secretEnv" . | fromYaml }}
            - name: {{ $var }}
              valueFrom:
                secretKeyRef:
                  name: {{ $ref.secretName }}
                  key: {{ $ref.key }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: {{ $values.probes.liveness.path }}
              port: http
            periodSeconds: {{ $values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $values.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: {{ $values.probes.readiness.path }}
              port: http
            periodSeconds: {{ $values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $values.probes.readiness.failureThreshold }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            runAsGroup: 65532
            privileged: false
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
            seccompProfile:
              type: RuntimeDefault
      affinity:
        podAntiAffinity:
          {{- if eq $values.podAntiAffinity "hard" }}
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  {{- include "go-coffee.serviceLabels" . | nindent 18 }}
          {{- else }}
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "go-coffee.serviceLabels" . | nindent 20 }}
          {{- end }}
      {{- if $values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: {{ $values.topologySpread.maxSkew }}
          topologyKey: {{ $values.topologySpread.topologyKey }}
          whenUnsatisfiable: {{ $values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "go-coffee.selectorLabels" . | nindent 14 }}
      {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* One Service for one track of one service. */}}
{{- define "go-coffee.service" -}}
{{- $svc := index .root.Values.services .name -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "go-coffee.objectName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "go-coffee.labels" . | nindent 4 }}
spec:
  type: {{ $svc.service.type }}
  selector:
    {{- include "go-coffee.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $svc.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* The rules of an Ingress sending ingress.hosts to one Service. */}}
{{- define "go-coffee.ingressRules" -}}
{{- $backend := .backend -}}
{{- $port := .port -}}
rules:
  {{- range .root.Values.ingress.hosts }}
  - host: {{ .host | quote }}
    http:
      paths:
        {{- range .paths }}
        - path: {{ .path }}
          pathType: {{ .pathType }}
          backend:
            service:
              name: {{ $backend }}
              port:
                number: {{ $port }}
        {{- end }}
  {{- end }}
{{- end -}}
