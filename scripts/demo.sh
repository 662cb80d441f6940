#!/usr/bin/env bash
# The demo: a dev Vault with the plugin, the AWS secret imported into a
# transit key in that same Vault, and MinIO standing in for AWS. It
# configures the engine, mints credentials, lists a bucket with them, and
# has Vault sign a request that MinIO accepts.
#
# With AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set it talks to real AWS
# instead (region AWS_REGION, default us-east-1): GetSessionToken credentials
# and a signed STS GetCallerIdentity call.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
for tool in "$VAULT_BIN" curl jq; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing: run make deps tools" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# freeport prints a TCP port on 127.0.0.1 that nothing listens on.
freeport() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# waitfor URL: poll until it answers 2xx, for up to two minutes.
waitfor() {
  local deadline=$((SECONDS + 120))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "demo: $1 did not come up" >&2; exit 1; }
    sleep 0.2
  done
}

step "Building the plugin"
mkdir -p "$work/plugins"
(cd "$root" && go build -o "$work/plugins/vault-plugin-aws-hmac" ./cmd/vault-plugin-aws-hmac)

step "Starting a dev Vault on 127.0.0.1"
vport=$(freeport)
export VAULT_ADDR=http://127.0.0.1:$vport VAULT_TOKEN=demo-root-$RANDOM$RANDOM HOME=$work
"$VAULT_BIN" server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:$vport" \
  -dev-plugin-dir="$work/plugins" -dev-no-store-token >"$work/vault.log" 2>&1 &
pids+=($!)
waitfor "$VAULT_ADDR/v1/sys/health"

step "Registering the plugin by SHA-256 and mounting it at aws-hmac/"
sha=$(sha256sum "$work/plugins/vault-plugin-aws-hmac" | cut -d' ' -f1)
"$VAULT_BIN" plugin register -sha256="$sha" -command=vault-plugin-aws-hmac secret vault-plugin-aws-hmac
"$VAULT_BIN" secrets enable -path=aws-hmac vault-plugin-aws-hmac
"$VAULT_BIN" secrets enable transit >/dev/null

# The plugin reaches transit with a token that can HMAC and import, but never
# touch the key's config (which could make it exportable), export or back it up.
"$VAULT_BIN" policy write aws-hmac-transit - >/dev/null <<'POLICY'
path "transit/hmac/*"        { capabilities = ["update"] }
path "transit/keys/*"        { capabilities = ["read", "create", "update"] }
path "transit/wrapping_key"  { capabilities = ["read"] }
path "transit/keys/+/config" { capabilities = ["deny"] }
path "transit/export/*"      { capabilities = ["deny"] }
path "transit/backup/*"      { capabilities = ["deny"] }
POLICY
transit_token=$("$VAULT_BIN" token create -policy=aws-hmac-transit -orphan -field=token)

if [ -n "${AWS_ACCESS_KEY_ID:-}" ] && [ -n "${AWS_SECRET_ACCESS_KEY:-}" ]; then
  region=${AWS_REGION:-us-east-1}
  step "Importing the AWS secret into transit and proving it with STS GetCallerIdentity ($region)"
  "$VAULT_BIN" write aws-hmac/config access_key="$AWS_ACCESS_KEY_ID" secret_key="$AWS_SECRET_ACCESS_KEY" \
    key_store=transit transit_address="$VAULT_ADDR" transit_token="$transit_token" region="$region"
  unset AWS_SECRET_ACCESS_KEY
  "$VAULT_BIN" write aws-hmac/roles/demo credential_type=session_token default_sts_ttl=15m \
    allowed_services=sts allowed_actions=sts:GetCallerIdentity allowed_regions="$region" allowed_hosts="sts.$region.amazonaws.com"

  step "Minting GetSessionToken credentials"
  "$VAULT_BIN" read -format=json aws-hmac/creds/demo | jq '{lease_duration, access_key: .data.access_key, expiration: .data.expiration}'

  step "Vault signs GetCallerIdentity; the request goes to AWS unchanged"
  body='Action=GetCallerIdentity&Version=2011-06-15'
  # Through the HTTP API, as an application would call it.
  signed=$(curl -fsS -H "X-Vault-Token: $VAULT_TOKEN" -X POST "$VAULT_ADDR/v1/aws-hmac/sign/demo" \
    -d "$(jq -n --arg u "https://sts.$region.amazonaws.com/" --arg b "$(printf %s "$body" | base64 -w0)" \
      '{method: "POST", url: $u, service: "sts", body: $b, headers: {"Content-Type": "application/x-www-form-urlencoded"}}')")
  args=(); while IFS= read -r h; do args+=(-H "$h"); done < <(echo "$signed" | jq -r '.data.headers | to_entries[] | "\(.key): \(.value)"')
  curl -fsS "${args[@]}" -H 'Content-Type: application/x-www-form-urlencoded' --data "$body" "$(echo "$signed" | jq -r .data.url)"
  echo
  exit 0
fi

step "Starting MinIO, standing in for AWS"
command -v "$MINIO_BIN" >/dev/null && command -v "$MC_BIN" >/dev/null || { echo "demo: MinIO is missing: run make tools" >&2; exit 1; }
mport=$(freeport)
minio=http://127.0.0.1:$mport
root_password=root-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
user_secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
MINIO_ROOT_USER=rootadmin MINIO_ROOT_PASSWORD=$root_password MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION=us-east-1 \
  "$MINIO_BIN" server --quiet --address "127.0.0.1:$mport" --certs-dir "$work/certs" "$work/minio" >"$work/minio.log" 2>&1 &
pids+=($!)
waitfor "$minio/minio/health/live"
export MC_CONFIG_DIR=$work/mc
"$MC_BIN" --quiet alias set local "$minio" rootadmin "$root_password" >/dev/null
"$MC_BIN" --quiet admin user add local demouser "$user_secret" >/dev/null
"$MC_BIN" --quiet admin policy attach local readwrite --user demouser >/dev/null
"$MC_BIN" --quiet mb local/demo-bucket >/dev/null
echo "MinIO at $minio with user demouser and bucket demo-bucket"

step "Importing the user's secret into transit (it is never stored by the plugin)"
# MinIO has no GetCallerIdentity, so this write skips the STS check.
"$VAULT_BIN" write aws-hmac/config access_key=demouser secret_key="$user_secret" key_store=transit \
  transit_address="$VAULT_ADDR" transit_token="$transit_token" sts_endpoint="$minio" region=us-east-1 skip_verification=true
unset user_secret
"$VAULT_BIN" read aws-hmac/config
"$VAULT_BIN" read -format=json transit/keys/aws-hmac-demouser | jq '{type: .data.type, exportable: .data.exportable, allow_plaintext_backup: .data.allow_plaintext_backup}'

step "A role that assumes a role and may sign S3 requests to MinIO"
"$VAULT_BIN" write aws-hmac/roles/demo credential_type=assumed_role role_arns=arn:aws:iam::123456789012:role/demo \
  default_sts_ttl=15m max_sts_ttl=1h allowed_services=s3 allowed_regions=us-east-1 allowed_hosts=127.0.0.1

step "vault read aws-hmac/creds/demo"
creds=$("$VAULT_BIN" read -format=json aws-hmac/creds/demo)
echo "$creds" | jq '{lease_duration, renewable, access_key: .data.access_key, expiration: .data.expiration}'

step "Listing buckets with those credentials"
curl -fsS --aws-sigv4 "aws:amz:us-east-1:s3" \
  --user "$(echo "$creds" | jq -r .data.access_key):$(echo "$creds" | jq -r .data.secret_key)" \
  -H "X-Amz-Security-Token: $(echo "$creds" | jq -r .data.session_token)" "$minio/" | grep -o '<Name>[^<]*</Name>'

step "Vault signs a ListObjects request; MinIO accepts it as sent"
signed=$("$VAULT_BIN" write -format=json aws-hmac/sign/demo url="$minio/demo-bucket/?list-type=2" service=s3)
echo "$signed" | jq '.data | {url, signed_headers}'
args=(); while IFS= read -r h; do args+=(-H "$h"); done < <(echo "$signed" | jq -r '.data.headers | to_entries[] | "\(.key): \(.value)"')
curl -fsS -o /dev/null -w 'MinIO answered HTTP %{http_code}\n' "${args[@]}" "$(echo "$signed" | jq -r .data.url)"

step "Outside the role's scope, Vault refuses"
"$VAULT_BIN" write aws-hmac/sign/demo url=https://iam.amazonaws.com/ service=iam 2>&1 | tail -n 3 || true

step "Done"
