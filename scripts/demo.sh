#!/usr/bin/env bash
# The demo: a dev Vault with the plugin, the AWS secret imported into a
# transit key in that same Vault, and MinIO standing in for AWS. It
# configures the engine, mints credentials, lists a bucket with them, and
# has Vault sign a request that MinIO accepts.
#
# With AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set it talks to real AWS
# instead (region AWS_REGION, default us-east-1): GetSessionToken credentials
# and a signed STS GetCallerIdentity call.
#
# VAULT_BIN, MINIO_BIN and MC_BIN name the binaries to use (default: the
# pinned ones `make tools` builds). It needs no terminal: with its output
# in a pipe or a file it prints no escape codes. Ctrl-C (SIGINT or SIGTERM)
# stops it, and the servers it started, at any point.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
for tool in "$VAULT_BIN" curl jq; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing: run make deps tools" >&2; exit 1; }
done

if [ -t 1 ]; then
  bold=$'\033[1m' plain=$'\033[0m'
else
  # Neither this script nor the tools it runs colour a pipe or a file.
  bold='' plain=''
  export VAULT_CLI_NO_COLOR=1 NO_COLOR=1 MC_NO_COLOR=1
fi

work=$(mktemp -d)
pids=()  # the servers, stopped at exit
child='' # the command running now, stopped on Ctrl-C
interrupted=''

# stop PID...: TERM, CONT (a stopped process acts on TERM only once
# continued), up to five seconds to exit, then KILL.
stop() {
  local p deadline=$((SECONDS + 5))
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; kill -CONT "$p" 2>/dev/null || true; done
  for p in "$@"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
cleanup() {
  trap - INT TERM
  if [ -n "$child" ]; then stop "$child"; fi
  if [ ${#pids[@]} -gt 0 ]; then stop "${pids[@]}"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'interrupted=1; echo "demo: interrupted" >&2; exit 130' INT TERM

# run CMD...: CMD as a child the shell waits for with `wait`, which a signal
# interrupts at once (a foreground command would be waited out first).
run() {
  "$@" <&0 &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=''
  return $rc
}

step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

# freeport prints a TCP port on 127.0.0.1 that nothing listens on, below
# the kernel's ephemeral range, where outgoing connections would take it.
freeport() {
  local port low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 11024 ] 2>/dev/null || low=32768
  while [ -z "$interrupted" ]; do
    port=$((10000 + RANDOM % (low - 10000 - 1)))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# waitfor WHAT URL PID: poll until URL answers 2xx, for up to two minutes,
# at once giving up if the demo is interrupted, or returning 1 if the
# server PID has exited.
waitfor() {
  local deadline=$((SECONDS + 120))
  echo "waiting for $1"
  until curl -fsS --max-time 1 -o /dev/null "$2" 2>/dev/null; do
    [ -z "$interrupted" ] || exit 130
    kill -0 "$3" 2>/dev/null || { wait "$3" 2>/dev/null || true; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "demo: $1 did not come up at $2" >&2; exit 1; }
    run sleep 0.2
  done
}

# serve WHAT URL-PATH CMD...: starts a server on a free port (CMD's {port}),
# waits for it, and sets $port; another process taking the port between
# the choice and the bind costs a retry, not the demo.
serve() {
  local what=$1 path=$2 attempt a args
  shift 2
  for attempt in 1 2 3; do
    port=$(freeport)
    args=()
    for a in "$@"; do args+=("${a//\{port\}/$port}"); done
    "${args[@]}" >"$work/$what.log" 2>&1 </dev/null &
    pids+=($!)
    if waitfor "$what" "http://127.0.0.1:$port$path" "$!"; then return 0; fi
    grep -qi "already in use" "$work/$what.log" || break
  done
  echo "demo: $what exited; its log:" >&2
  cat "$work/$what.log" >&2
  exit 1
}

# vcli ARGS...: the vault CLI, interruptible.
vcli() { run "$VAULT_BIN" "$@"; }

step "Building the plugin"
mkdir -p "$work/plugins"
plugin=$work/plugins/vault-plugin-aws-hmac
# -buildvcs=auto: the version comes from git even when GOFLAGS turns stamping off.
run go -C "$root" build -buildvcs=auto -o "$plugin" ./cmd/vault-plugin-aws-hmac
version=$("$plugin" -version)
echo "vault-plugin-aws-hmac $version"

step "Starting a dev Vault on 127.0.0.1"
export VAULT_TOKEN=demo-root-$RANDOM$RANDOM HOME=$work
serve vault /v1/sys/health "$VAULT_BIN" server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:{port}" \
  -dev-plugin-dir="$work/plugins" -dev-no-store-token
export VAULT_ADDR=http://127.0.0.1:$port

step "Registering the plugin by SHA-256 under its version and mounting it at aws-hmac/"
sha=$(sha256sum "$plugin" | cut -d' ' -f1)
vcli plugin register -sha256="$sha" -command=vault-plugin-aws-hmac -version="$version" secret vault-plugin-aws-hmac
vcli secrets enable -path=aws-hmac -plugin-version="$version" vault-plugin-aws-hmac
vcli secrets enable transit >/dev/null

# The plugin reaches transit with a token that can HMAC and import, but never
# touch a key's config (which could make it exportable), export or back it up.
# No glob: Vault would rank transit/keys/NAME* above a deny on keys/+/config.
# (The README's policy, for a transit mount of the plugin's own.)
vcli policy write aws-hmac-transit - >/dev/null <<'POLICY'
path "transit/wrapping_key"          { capabilities = ["read"] }
path "transit/keys/+"                { capabilities = ["read"] }
path "transit/keys/+/import"         { capabilities = ["update"] }
path "transit/keys/+/import_version" { capabilities = ["update"] }
path "transit/hmac/+"                { capabilities = ["update"] }
path "transit/hmac/+/+"              { capabilities = ["update"] }
path "transit/keys/+/config"         { capabilities = ["deny"] }
path "transit/export/*"              { capabilities = ["deny"] }
path "transit/backup/*"              { capabilities = ["deny"] }
POLICY
transit_token=$("$VAULT_BIN" token create -policy=aws-hmac-transit -orphan -field=token)

if [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ]; then
  region=${AWS_REGION:-us-east-1}
  step "Importing the AWS secret into transit and proving it with STS GetCallerIdentity ($region)"
  # The secret on stdin, not on a command line others can read.
  vcli write aws-hmac/config access_key="$AWS_ACCESS_KEY_ID" secret_key=- \
    key_store=transit transit_address="$VAULT_ADDR" transit_token="$transit_token" region="$region" < <(printf %s "$AWS_SECRET_ACCESS_KEY")
  unset AWS_SECRET_ACCESS_KEY
  vcli write aws-hmac/roles/demo credential_type=session_token default_sts_ttl=15m \
    allowed_services=sts allowed_actions=sts:GetCallerIdentity allowed_regions="$region" allowed_hosts="sts.$region.amazonaws.com"

  step "Minting GetSessionToken credentials"
  vcli read -format=json aws-hmac/creds/demo >"$work/creds.json"
  jq '{lease_duration, access_key: .data.access_key, expiration: .data.expiration}' "$work/creds.json"

  step "Vault signs GetCallerIdentity; the request goes to AWS unchanged"
  body='Action=GetCallerIdentity&Version=2011-06-15'
  # Through the HTTP API, as an application would call it.
  jq -n --arg u "https://sts.$region.amazonaws.com/" --arg b "$(printf %s "$body" | base64 -w0)" \
    '{method: "POST", url: $u, service: "sts", body: $b, headers: {"Content-Type": "application/x-www-form-urlencoded"}}' >"$work/sign.json"
  run curl -fsS --max-time 30 -H "X-Vault-Token: $VAULT_TOKEN" -X POST "$VAULT_ADDR/v1/aws-hmac/sign/demo" -d @"$work/sign.json" >"$work/signed.json"
  args=(); while IFS= read -r h; do args+=(-H "$h"); done < <(jq -r '.data.headers | to_entries[] | "\(.key): \(.value)"' "$work/signed.json")
  run curl -fsS --max-time 30 "${args[@]}" -H 'Content-Type: application/x-www-form-urlencoded' --data "$body" "$(jq -r .data.url "$work/signed.json")"
  echo
  exit 0
fi

step "Starting MinIO, standing in for AWS"
command -v "$MINIO_BIN" >/dev/null && command -v "$MC_BIN" >/dev/null || { echo "demo: MinIO is missing: run make tools" >&2; exit 1; }
root_password=root-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
user_secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
# The root password in MinIO's environment, not on a command line.
MINIO_ROOT_USER=rootadmin MINIO_ROOT_PASSWORD=$root_password MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION=us-east-1 \
  serve minio /minio/health/live "$MINIO_BIN" server --quiet --address "127.0.0.1:{port}" --certs-dir "$work/certs" "$work/minio"
minio=http://127.0.0.1:$port
export MC_CONFIG_DIR=$work/mc
mc() { run "$MC_BIN" --quiet --no-color "$@" >/dev/null; }
mc alias set local "$minio" rootadmin "$root_password"
mc admin user add local demouser "$user_secret"
mc admin policy attach local readwrite --user demouser
mc mb local/demo-bucket
echo "MinIO at $minio with user demouser and bucket demo-bucket"

step "Importing the user's secret into transit (it is never stored by the plugin)"
# MinIO has no GetCallerIdentity, so this write skips the STS check. The
# secret goes on stdin, not on a command line others can read.
vcli write aws-hmac/config access_key=demouser secret_key=- key_store=transit \
  transit_address="$VAULT_ADDR" transit_token="$transit_token" sts_endpoint="$minio" region=us-east-1 skip_verification=true \
  < <(printf %s "$user_secret")
unset user_secret
vcli read aws-hmac/config
vcli read -format=json transit/keys/aws-hmac-demouser >"$work/key.json"
jq '{type: .data.type, exportable: .data.exportable, allow_plaintext_backup: .data.allow_plaintext_backup}' "$work/key.json"

step "A role that assumes a role and may sign S3 requests to MinIO"
vcli write aws-hmac/roles/demo credential_type=assumed_role role_arns=arn:aws:iam::123456789012:role/demo \
  default_sts_ttl=15m max_sts_ttl=1h allowed_services=s3 allowed_regions=us-east-1 allowed_hosts=127.0.0.1

step "vault read aws-hmac/creds/demo"
vcli read -format=json aws-hmac/creds/demo >"$work/creds.json"
jq '{lease_duration, renewable, access_key: .data.access_key, expiration: .data.expiration}' "$work/creds.json"

step "Listing buckets with those credentials"
run curl -fsS --max-time 30 --aws-sigv4 "aws:amz:us-east-1:s3" \
  --user "$(jq -r .data.access_key "$work/creds.json"):$(jq -r .data.secret_key "$work/creds.json")" \
  -H "X-Amz-Security-Token: $(jq -r .data.session_token "$work/creds.json")" "$minio/" >"$work/buckets.xml"
grep -o '<Name>[^<]*</Name>' "$work/buckets.xml"

step "Vault signs a ListObjects request; MinIO accepts it as sent"
vcli write -format=json aws-hmac/sign/demo url="$minio/demo-bucket/?list-type=2" service=s3 >"$work/signed.json"
jq '.data | {url, signed_headers}' "$work/signed.json"
args=(); while IFS= read -r h; do args+=(-H "$h"); done < <(jq -r '.data.headers | to_entries[] | "\(.key): \(.value)"' "$work/signed.json")
run curl -fsS --max-time 30 -o /dev/null -w 'MinIO answered HTTP %{http_code}\n' "${args[@]}" "$(jq -r .data.url "$work/signed.json")"

step "Outside the role's scope, Vault refuses"
# Vault's whole answer: the status, the path and every line of the reason.
if vcli write aws-hmac/sign/demo url=https://iam.amazonaws.com/ service=iam 2>&1; then
  echo "demo: Vault signed a request outside the role's scope" >&2
  exit 1
fi

step "Done"
