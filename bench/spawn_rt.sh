#!/usr/bin/env bash
# Round trips of one cached spawn and one cached open+close under limd, in a realistic
# layout: an ext4 loop mount (pre-content events, like `/` here) holding /bin/true, its ELF
# interpreter, libc and an ld.so.cache (ldconfig -r), entered with chroot, so every exec-open,
# open and PROT_EXEC mmap of a dynamic spawn lands on the watched mount. limd (tcb, software
# bank, --watch that mount only) runs under `timeout -k` and is stopped by its own pid.
# Round trips = limd's answers (status.json "answered": content-group permission events and
# pre-content events alike), per operation, over N operations after a warm-up; also the
# content group's permission events and pre-content events apart, and limd's CPU per
# operation (time on a CPU from /proc/PID/task/TID/schedstat: all its threads — which
# includes its exec tracepoint work for every exec on the machine — and the busiest thread
# alone, the event reader, also per round trip; and the exec tracepoint thread limd-trace alone).
# Usage: bench/spawn_rt.sh [N] (default 2000). LIMD=build/src/daemon/limd OPLOOP=build/bench/lim_op_loop
# Needs root; never run from .ci/run.
set -euo pipefail
n=${1:-2000}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify, chroot)" >&2; exit 2; }
[ -x "$limd" ] && [ -x "$oploop" ] || { echo "build limd and lim_op_loop first" >&2; exit 2; }
W=$(mktemp -d /tmp/spawn-rt.XXXXXX)
lpid=
cleanup() {
  if [ -n "$lpid" ]; then
    kill "$lpid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.05; done
  fi
  umount "$W/m" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
truncate -s 64M "$W/img"
mkfs.ext4 -q -F "$W/img"
mkdir "$W/m" "$W/s"
mount -o loop "$W/img" "$W/m"
M=$W/m
# The spawned binary and the loop's own binary with every library they load, same paths.
# shellcheck source=spawn_layout.sh
. "$here/spawn_layout.sh"
spawn_layout "$M" "$oploop" || exit 1
timeout -k 2 600 "$limd" --foreground --config /dev/null --securityfs none --control-socket none --no-tpm \
  --builtin tcb --state "$W/s" --watch "$M" --log-file "$W/s/log" &
for _ in $(seq 400); do [ -s "$W/s/limd.ready" ] && break; sleep 0.05; done
lpid=$(cat "$W/s/limd.ready")
field() { tr -d ' \n' <"$W/s/status.json" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
snap() { sleep 1.2; echo "$(field answered) $(field permission_events) $(field precontent_events) $(awk '{print $14 + $15}' /proc/$lpid/stat)"; }
threads() {  # threads FILE: "tid ns comm" of every limd thread (time on a CPU, /proc/.../schedstat)
  for t in /proc/$lpid/task/*; do echo "${t##*/} $(cut -d' ' -f1 "$t/schedstat") $(cat "$t/comm")"; done >"$1"
}
cpu_ns() {  # cpu_ns BEFORE AFTER: "all busiest trace": ns all threads, the busiest one (the event reader) and limd-trace spent between
  awk 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; s += d; if (d > m) m = d; if ($3 == "limd-trace") tr += d } END { print s + 0, m + 0, tr + 0 }' "$1" "$2"
}
run() {  # run spawn|open PATH: per-operation round trips, permission events, pre-content events, CPU µs
  chroot "$M" /op_loop "$1" "$2" 20 >/dev/null  # warm-up: verdicts cached
  read -r a0 p0 c0 _ <<<"$(snap)"
  threads "$W/t0"
  local us
  us=$(chroot "$M" /op_loop "$1" "$2" "$n")
  threads "$W/t1"
  read -r a1 p1 c1 _ <<<"$(snap)"
  local all r tr
  read -r all r tr <<<"$(cpu_ns "$W/t0" "$W/t1")"
  # The chroot and op_loop's own start (one exec, its libraries) are in the window: counted
  # once, not per operation; subtract them with a run of 0 operations.
  read -r a2 p2 c2 _ <<<"$(snap)"
  chroot "$M" /op_loop "$1" "$2" 0 >/dev/null || true
  read -r a3 p3 c3 _ <<<"$(snap)"
  local fa=$((a3 - a2)) fp=$((p3 - p2)) fc=$((c3 - c2))
  awk -v a=$((a1 - a0 - fa)) -v p=$((p1 - p0 - fp)) -v c=$((c1 - c0 - fc)) -v t="$all" -v r="$r" -v tr="$tr" -v n="$n" -v us="$us" -v what="$1 $2" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %s |\n", what, a / n, p / n, c / n, t / 1e3 / n, r / 1e3 / n, r / 1e3 / (a > 0 ? a : 1), tr / 1e3 / n, us }'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); limd: $limd; N=$n"
echo "| operation | round trips per op | content-group permission events | pre-content events | limd CPU µs per op (all threads) | event reader CPU µs per op | event reader CPU µs per round trip | exec tracer (limd-trace) CPU µs per op | wall µs per op |"
echo "|---|---|---|---|---|---|---|---|---|"
run spawn /bin/true
run open /etc/hostname
echo "status: $(tr -d ' \n' <"$W/s/status.json" | grep -o '"\(hashes\|cache_hits\|entries\|exec_open_reuses\|timeouts\|violations\)":[0-9]*' | tr '\n' ' ')"
