#!/usr/bin/env bash
# limd on the ROOT filesystem (--allow-root-fs, the README main command's default): spawn of
# /bin/true and open+close of /etc/hostname, bare vs under limd with the built-in tcb policy.
# MARKS `/`: never run from .ci/run or on a machine others are using. limd runs under
# `timeout -k 2 120` and is stopped by its own pid after each round; a wedged host recovers
# when timeout kills it (the kernel then allows its pending events).
#
# Rounds alternate: bare, then limd started (tcb, software bank, own state dir in a tmpfs so
# its list and lock are not on `/`), warmed once, timed, stopped. Start-up (the start scan of
# every running process) is not in the timed part. Prints medians and min–max per row.
# Usage: bench/limd_root.sh [ROUNDS] (default 7). LIMD=build/src/daemon/limd OPLOOP=build/bench/lim_op_loop
set -euo pipefail
rounds=${1:-7}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
[ "$(id -u)" = 0 ] || { echo "needs root (fanotify on /)" >&2; exit 2; }
[ -x "$limd" ] && [ -x "$oploop" ] || { echo "build limd and lim_op_loop first" >&2; exit 2; }
S=$(mktemp -d /dev/shm/limd-root-bench.XXXXXX)
pid=
stop_limd() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    pid=
  fi
}
trap 'stop_limd; rm -rf "$S"' EXIT
start_limd() {
  rm -f "$S/limd.ready"
  timeout -k 2 120 "$limd" --foreground --config /dev/null --securityfs none --control-socket none \
    --builtin tcb --no-tpm --allow-root-fs --watch / --state "$S" --log-file "$S/log" &
  for _ in $(seq 400); do [ -s "$S/limd.ready" ] && break; sleep 0.05; done
  pid=$(cat "$S/limd.ready")
}
declare -a bare_spawn limd_spawn bare_open limd_open
for ((r = 0; r < rounds; r++)); do
  bare_spawn+=("$("$oploop" spawn /bin/true 500)")
  bare_open+=("$("$oploop" open /etc/hostname 5000)")
  start_limd
  "$oploop" spawn /bin/true 20 >/dev/null
  "$oploop" open /etc/hostname 20 >/dev/null
  limd_spawn+=("$("$oploop" spawn /bin/true 500)")
  limd_open+=("$("$oploop" open /etc/hostname 5000)")
  stop_limd
done
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f", a[int((NR+1)/2)], a[1], a[NR]}'; }
read -r bsm bsmin bsmax <<<"$(stats "${bare_spawn[@]}")"
read -r lsm lsmin lsmax <<<"$(stats "${limd_spawn[@]}")"
read -r bom bomin bomax <<<"$(stats "${bare_open[@]}")"
read -r lom lomin lomax <<<"$(stats "${limd_open[@]}")"
echo "| workload ($rounds rounds) | bare µs/op (min–max) | limd on / µs/op (min–max) | ratio |"
echo "|---|---|---|---|"
printf '| spawn /bin/true | %s (%s–%s) | %s (%s–%s) | %.2f |\n' "$bsm" "$bsmin" "$bsmax" "$lsm" "$lsmin" "$lsmax" "$(echo "$lsm / $bsm" | bc -l)"
printf '| open+close /etc/hostname | %s (%s–%s) | %s (%s–%s) | %.2f |\n' "$bom" "$bomin" "$bomax" "$lom" "$lomin" "$lomax" "$(echo "$lom / $bom" | bc -l)"
grep -E '"(entries|hashes|cache_hits|permission_events|timeouts|marks)"' "$S/status.json" 2>/dev/null | tr -d ' \n'; echo
