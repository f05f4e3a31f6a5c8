#!/usr/bin/env bash
# Test UnitVerifies: dist/limd.service passes `systemd-analyze verify` (no error, no warning)
# with ExecStart pointed at the built limd, and `limd --config dist/limd.conf` accepts the
# example config. Needs no running systemd. Exit 77 (skipped) without systemd-analyze.
# Usage: scripts/unit_verify_test.sh BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:?usage: unit_verify_test.sh BUILD_DIR}")
LIMD=$BUILD/src/daemon/limd
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# The example config: every key is known and every value converts (--help parses it all).
"$LIMD" --config "$SRC/dist/limd.conf" --help >/dev/null 2>"$T/conf.err" || { cat "$T/conf.err"; exit 1; }
printf 'watch = /srv\nwatchh = /x\n' >"$T/bad.conf"
if "$LIMD" --config "$T/bad.conf" --version >"$T/bad.out" 2>&1 ||
  ! grep -q "$T/bad.conf:2: unknown key 'watchh'" "$T/bad.out"; then
  echo "FAIL: a bad key is not reported as FILE:LINE: $(cat "$T/bad.out")"
  exit 1
fi

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed (Debian: the systemd package)"
  exit 77
fi
sed "s|/usr/sbin/limd|$LIMD|" "$SRC/dist/limd.service" >"$T/limd.service"
rc=0
systemd-analyze verify --man=no "$T/limd.service" >"$T/out" 2>&1 || rc=$?
if [ "$rc" != 0 ] || [ -s "$T/out" ]; then
  echo "FAIL: systemd-analyze verify (exit $rc):"
  cat "$T/out"
  exit 1
fi
echo "PASS: systemd-analyze verify dist/limd.service"
