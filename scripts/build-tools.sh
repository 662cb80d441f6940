#!/usr/bin/env bash
# Builds the pinned Vault server, MinIO and mc into the git-ignored cache
# (.cache/bin), once per machine. A cached binary of the right version is
# reused; delete .cache to force a rebuild.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CACHE:-$root/.cache}
bin=$cache/bin
mkdir -p "$bin"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

VAULT_VERSION=v1.21.0
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9

# link NAME VERSIONED: point bin/NAME at the versioned binary.
link() { ln -sfn "$(basename "$2")" "$bin/$1"; }

build_vault() {
  local out=$bin/vault-$VAULT_VERSION
  if [ -x "$out" ]; then echo "build-tools: vault $VAULT_VERSION cached"; link vault "$out"; return; fi
  echo "build-tools: building vault $VAULT_VERSION (about 10 minutes cold)"
  local start=$SECONDS
  (cd "$root/tools/vault" && go build -o "$out.tmp" .)
  mv "$out.tmp" "$out"
  link vault "$out"
  echo "build-tools: vault built in $((SECONDS - start))s"
}

# go_install NAME MODULE VERSION
go_install() {
  local name=$1 module=$2 version=$3
  local out=$bin/$name-$version
  if [ -x "$out" ]; then echo "build-tools: $name $version cached"; link "$name" "$out"; return; fi
  echo "build-tools: building $name $version"
  local start=$SECONDS tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp go install "$module@$version"
  mv "$tmp/$name" "$out"
  rmdir "$tmp"
  link "$name" "$out"
  echo "build-tools: $name built in $((SECONDS - start))s"
}

case "${1:-all}" in
  vault) build_vault ;;
  minio) go_install minio github.com/minio/minio "$MINIO_VERSION" ;;
  mc) go_install mc github.com/minio/mc "$MC_VERSION" ;;
  all)
    build_vault
    go_install minio github.com/minio/minio "$MINIO_VERSION"
    go_install mc github.com/minio/mc "$MC_VERSION"
    ;;
  *) echo "usage: $0 [vault|minio|mc|all]" >&2; exit 2 ;;
esac
