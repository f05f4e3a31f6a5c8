#!/usr/bin/env bash
# lim's main job for a new user (as root, non-interactive): installs what is needed, builds
# lim and limd, starts swtpm on a root-only unix socket when this host has no TPM, starts
# limd in the background with the tcb policy, and shows the live integrated log
# (`lim log --follow`: the firmware's boot log when readable, then every IMA entry limd
# appends). A second invocation finds the running limd (its control socket or its state
# lock) and only shows the log.
#
# Environment (all optional):
#   LIM_WATCH="/srv /home"   mount roots limd watches (space-separated); default: limd's
#                            default filesystem set (ext4, xfs, btrfs, tmpfs, vfat, … in
#                            every mount namespace) including / (--allow-root-fs)
#   LIM_FOLLOW_SECONDS=N     stop showing the log after N seconds (default: until Ctrl-C;
#                            limd keeps running either way)
#   LIM_STATE=DIR            limd's state directory (default /var/lib/lim); limd logs to
#                            DIR/limd.log
#   LIM_CONTROL_SOCKET=PATH  limd's control socket (default /run/lim/limd.sock)
#   LIM_SECURITYFS=DIR       where limd mounts the kernel's IMA files (FUSE; default
#                            /run/lim/securityfs; none: no view)
#   LIM_TCTI=TCTI            use this TPM (default: /dev/tpmrm0 if present, else swtpm)
#   LIM_USE_SWTPM=1          use swtpm even when /dev/tpmrm0 exists
#   LIM_SWTPM_DIR=DIR        swtpm state and socket under DIR (default /var/lib/lim/swtpm
#                            and /run/lim/swtpm)
#   LIM_BUILD_DIR=DIR        build tree (default build)
#   LIM_LIMD_TIMEOUT=N       run limd under `timeout N` (tests: a limd that outlives them)
# Stop limd with: kill "$(cat /var/lib/lim/limd.ready)"   (swtpm: lim tpm swtpm stop)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "run.sh: run as root (limd needs fanotify permission events and the TPM)" >&2
  exit 1
fi
STATE=${LIM_STATE:-/var/lib/lim}
SOCK=${LIM_CONTROL_SOCKET:-/run/lim/limd.sock}
SFS=${LIM_SECURITYFS:-/run/lim/securityfs}
BUILD=${LIM_BUILD_DIR:-build}

scripts/deps.sh
if [ ! -f "$BUILD/build.ninja" ]; then
  echo "== configuring and building lim and limd in $BUILD (minutes on the first run)" >&2
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
build_log=$(mktemp)
if ! cmake --build "$BUILD" -j"$(nproc)" --target lim limd >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  exit 1
fi
rm -f "$build_log"
LIM=$(realpath "$BUILD/src/cli/lim")
LIMD=$(realpath "$BUILD/src/daemon/limd")

# Is a limd already running on this state? (control socket first, then the state's lock)
if "$LIM" status --state "$STATE" --socket "$SOCK" >/dev/null 2>&1; then
  echo "== limd already runs on $STATE (pid $(cat "$STATE/limd.ready" 2>/dev/null || echo ?)): showing its log" >&2
else
  # The TPM: a given TCTI, the kernel's resource manager, or the embedded swtpm.
  TCTI=${LIM_TCTI:-}
  if [ -z "$TCTI" ] && [ -e /dev/tpmrm0 ] && [ -z "${LIM_USE_SWTPM:-}" ]; then
    TCTI=device:/dev/tpmrm0
  fi
  if [ -z "$TCTI" ]; then
    SWTPM_ARGS=()
    if [ -n "${LIM_SWTPM_DIR:-}" ]; then
      SWTPM_ARGS=(--state "$LIM_SWTPM_DIR/state" --run-dir "$LIM_SWTPM_DIR/run")
    fi
    echo "== no TPM device: starting swtpm (an emulator: no root of trust against root)" >&2
    swtpm_out=$("$LIM" tpm swtpm start "${SWTPM_ARGS[@]}")
    TCTI=$(sed -n 's/^tcti: //p' <<<"$swtpm_out")
    [ -n "$TCTI" ] || { echo "run.sh: swtpm did not start: $swtpm_out" >&2; exit 1; }
  fi
  WATCH=()
  if [ -n "${LIM_WATCH:-}" ]; then
    for m in $LIM_WATCH; do WATCH+=(--watch "$m"); done
  else
    WATCH=(--allow-root-fs)  # no --watch: limd's default filesystem set, / included
  fi
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  rm -f "$STATE/limd.ready"
  WRAP=()
  [ -n "${LIM_LIMD_TIMEOUT:-}" ] && WRAP=(timeout -k 2 "$LIM_LIMD_TIMEOUT")
  echo "== starting limd (tcb policy, TPM $TCTI, ${LIM_WATCH:+watching }${LIM_WATCH:-default filesystem set}, state $STATE, log $STATE/limd.log)" >&2
  # Detached: its own session, no terminal, its own log; it outlives this script.
  setsid "${WRAP[@]}" "$LIMD" --state "$STATE" --tpm "$TCTI" --builtin tcb --control-socket "$SOCK" \
    --securityfs "$SFS" --log-file "$STATE/limd.log" "${WATCH[@]}" </dev/null >>"$STATE/limd.log" 2>&1 &
  limd_job=$!
  for _ in $(seq 1 300); do
    [ -s "$STATE/limd.ready" ] && break
    if ! kill -0 "$limd_job" 2>/dev/null; then
      echo "run.sh: limd did not start; the end of $STATE/limd.log:" >&2
      tail -n 20 "$STATE/limd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -s "$STATE/limd.ready" ] || { echo "run.sh: limd not ready after 30 s (see $STATE/limd.log)" >&2; exit 1; }
  echo "== limd running, pid $(cat "$STATE/limd.ready")" >&2
  if [ "$SFS" != none ] && mountpoint -q "$SFS"; then
    echo "== the kernel's IMA files, served by limd: $SFS/ima/ (evmctl, keylime read them there)" >&2
  fi
fi
"$LIM" status --state "$STATE" --socket "$SOCK" >&2 || true

# The live integrated log: the boot log (when this kernel exposes it) and limd's list.
FOLLOW=("$LIM" log --format table --follow)
BOOT=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -r "$BOOT" ] && [ "$(head -c1 "$BOOT" 2>/dev/null | wc -c)" -gt 0 ]; then
  FOLLOW+=(--boot-log "$BOOT")
fi
FOLLOW+=("$STATE/binary_runtime_measurements")
echo "== the integrated log (${LIM_FOLLOW_SECONDS:+for $LIM_FOLLOW_SECONDS s; }Ctrl-C stops the view, not limd)" >&2
if [ -n "${LIM_FOLLOW_SECONDS:-}" ]; then
  rc=0
  timeout -s INT "$LIM_FOLLOW_SECONDS" "${FOLLOW[@]}" || rc=$?
  [ "$rc" = 124 ] || [ "$rc" = 0 ] || exit "$rc"
else
  exec "${FOLLOW[@]}"
fi
