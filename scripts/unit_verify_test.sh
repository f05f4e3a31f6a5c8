#!/usr/bin/env bash
# Test UnitVerifies: dist/limd.service, dist/lim-verifier.service and dist/lim-agent.service
# pass `systemd-analyze verify` (no error, no warning) with ExecStart pointed at the built
# binaries, and each binary accepts its example config (dist/limd.conf, verifier.conf,
# agent.conf) and reports a bad key as FILE:LINE. Needs no running systemd. Exit 77
# (skipped) without systemd-analyze.
# Usage: scripts/unit_verify_test.sh BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:?usage: unit_verify_test.sh BUILD_DIR}")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# unit binary config key
for row in "limd $BUILD/src/daemon/limd limd.conf watch" \
           "lim-verifier $BUILD/src/verifier/lim-verifier verifier.conf interval-ms" \
           "lim-agent $BUILD/src/agent/lim-agent agent.conf port"; do
  read -r unit bin conf key <<<"$row"
  # The example config: every key is known and every value converts (--help parses it all).
  "$bin" --config "$SRC/dist/$conf" --help >/dev/null 2>"$T/conf.err" || { echo "FAIL: dist/$conf:"; cat "$T/conf.err"; exit 1; }
  printf '%s = 1\n%sh = 1\n' "$key" "$key" >"$T/bad.conf"
  if "$bin" --config "$T/bad.conf" --version >"$T/bad.out" 2>&1 ||
    ! grep -q "$T/bad.conf:2: unknown key '${key}h'" "$T/bad.out"; then
    echo "FAIL: $unit: a bad key is not reported as FILE:LINE: $(cat "$T/bad.out")"
    exit 1
  fi
done

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed (Debian: the systemd package)"
  exit 77
fi
for row in "limd $BUILD/src/daemon/limd" "lim-verifier $BUILD/src/verifier/lim-verifier" \
           "lim-agent $BUILD/src/agent/lim-agent"; do
  read -r unit bin <<<"$row"
  sed "s|/usr/sbin/$unit |$bin |" "$SRC/dist/$unit.service" >"$T/$unit.service"
  grep -q "^ExecStart=$bin " "$T/$unit.service" || { echo "FAIL: $unit.service: ExecStart not found"; exit 1; }
  rc=0
  systemd-analyze verify --man=no "$T/$unit.service" >"$T/out" 2>&1 || rc=$?
  if [ "$rc" != 0 ] || [ -s "$T/out" ]; then
    echo "FAIL: systemd-analyze verify $unit.service (exit $rc):"
    cat "$T/out"
    exit 1
  fi
  echo "PASS: systemd-analyze verify dist/$unit.service"
done
