# Sourced by the Makefile and .ci/run: tells the tests where the pinned
# tools and the Debian-packaged components are.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_bin=${CACHE:-$_root/.cache}/bin
export GOTOOLCHAIN=local
export VAULT_BIN=${VAULT_BIN:-$_bin/vault}
export MINIO_BIN=${MINIO_BIN:-$_bin/minio}
export MC_BIN=${MC_BIN:-$_bin/mc}
if [ -z "${SOFTHSM2_MODULE:-}" ]; then
  for _m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    if [ -e "$_m" ]; then export SOFTHSM2_MODULE=$_m; break; fi
  done
fi
unset _root _bin _m
