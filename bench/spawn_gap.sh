#!/usr/bin/env bash
# Where a cached spawn's time goes between the floor listener and limd, without marking `/`:
# spawn_rt.sh's layout (an ext4 loop mount holding /bin/true, its ELF interpreter, libc, an
# ld.so.cache and the loop binary, entered with chroot), timed in interleaved rounds under
# nothing (bare), the floor listener (bench/fanotify_floor.cc: 4 round trips, nothing else)
# and limd (tcb, software bank, --watch that mount only). Per row and round: wall µs per
# spawn (lim_op_loop), machine busy µs per spawn (/proc/stat user+nice+system+irq+softirq,
# both CPUs) and context switches per spawn (/proc/stat ctxt). On this 2-CPU VM a spawn loop
# keeps about one CPU busy, so busy µs is the CPU a listener adds wherever it runs (its
# threads, the kernel's work for its groups and tracepoints in the spawner).
# LIMD_ALT=another limd binary adds a row "limd-alt" in the same rounds (e.g. an experiment
# build); LIMD_ALT_ENV="VAR=value ..." is set in its environment.
# OP=syscall times N getppid() calls per row instead of spawns (what every system call on the
# host pays for the tracepoints a listener enables); busy µs then is per call too.
# Usage: bench/spawn_gap.sh [ROUNDS] [N] (default 5, 1000 spawns per row and round).
# Needs root (mount, fanotify, chroot); every listener runs under `timeout -k` and is stopped
# by its own pid; the mount is the script's own. Never run from .ci/run (a benchmark).
set -euo pipefail
rounds=${1:-5}
n=${2:-1000}
[[ $rounds =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 100 ] || { echo "ROUNDS: 1..100" >&2; exit 2; }
[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 10 ] && [ "$n" -le 1000000 ] || { echo "N: 10..1000000" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
floorbin=${FLOORBIN:-$here/../build/bench/lim_fanotify_floor}
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify, chroot)" >&2; exit 2; }
for b in "$limd" "$oploop" "$floorbin" ${LIMD_ALT:+"$LIMD_ALT"}; do
  [ -x "$b" ] || { echo "missing $b (build limd, lim_op_loop, lim_fanotify_floor)" >&2; exit 2; }
done
W=$(mktemp -d /tmp/spawn-gap.XXXXXX)
M=$W/m
lpid=
stop_listener() {
  [ -n "$lpid" ] || return 0
  kill "$lpid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.05; done
  lpid=
}
cleanup() {
  stop_listener
  umount "$M" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
truncate -s 64M "$W/img"
mkfs.ext4 -q -F "$W/img"
mkdir "$M"
mount -o loop "$W/img" "$M"
# shellcheck source=spawn_layout.sh
. "$here/spawn_layout.sh"
spawn_layout "$M" "$oploop" || exit 1
busy_ctxt() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 } /^ctxt/{ print $2 }' /proc/stat | tr '\n' ' '; }
hz=$(getconf CLK_TCK)
op=${OP:-spawn}
[ "$op" = spawn ] || [ "$op" = syscall ] || { echo "OP: spawn or syscall" >&2; exit 2; }
measure() {  # measure LABEL: one line "LABEL wall_us busy_us ctxt" per operation into $W/res
  chroot "$M" /op_loop spawn /bin/true 50 >/dev/null  # warm: verdicts cached
  local b0 c0 b1 c1 us
  read -r b0 c0 <<<"$(busy_ctxt)"
  us=$(chroot "$M" /op_loop "$op" /bin/true "$n")
  read -r b1 c1 <<<"$(busy_ctxt)"
  awk -v l="$1" -v us="$us" -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v n="$n" -v hz="$hz" \
    'BEGIN { printf "%s %s %.4f %.4f\n", l, us, b * 1e6 / hz / n, c / n }' >>"$W/res"
}
start_limd() {  # start_limd BINARY [ENV...]
  local bin=$1
  shift
  rm -rf "$W/s"
  mkdir "$W/s"
  env "$@" timeout -k 2 600 "$bin" --foreground --config /dev/null --securityfs none --control-socket none --no-tpm \
    --builtin tcb --state "$W/s" --watch "$M" --log-file "$W/s/log" &
  for _ in $(seq 400); do [ -s "$W/s/limd.ready" ] && break; sleep 0.05; done
  [ -s "$W/s/limd.ready" ] || { echo "limd did not start: $(cat "$W/s/log" 2>/dev/null)" >&2; exit 1; }
  lpid=$(cat "$W/s/limd.ready")
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); N=$n, $rounds rounds"
for _ in $(seq "$rounds"); do
  measure bare
  timeout -k 2 600 "$floorbin" "$M" >"$W/floor.out" 2>/dev/null &
  lpid=$!
  for _ in $(seq 100); do grep -q ready "$W/floor.out" 2>/dev/null && break; sleep 0.05; done
  measure floor
  stop_listener
  start_limd "$limd"
  measure limd
  stop_listener
  if [ -n "${LIMD_ALT:-}" ]; then
    # shellcheck disable=SC2086
    start_limd "$LIMD_ALT" ${LIMD_ALT_ENV:-}
    measure limd-alt
    stop_listener
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| per spawn | wall µs, median (min–max) | busy µs, median | context switches, median |"
echo "|---|---|---|---|"
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)], v[1], v[NR] }'; }
for l in bare floor limd limd-alt; do
  grep -q "^$l " "$W/res" || continue
  read -r wm wlo whi <<<"$(awk -v l="$l" '$1 == l { print $2 }' "$W/res" | median)"
  read -r bm _ <<<"$(awk -v l="$l" '$1 == l { print $3 }' "$W/res" | median)"
  read -r cm _ <<<"$(awk -v l="$l" '$1 == l { print $4 }' "$W/res" | median)"
  if [ "$op" = syscall ]; then
    printf '| %s | %.3f (%.3f–%.3f) | %.3f | %.4f |\n' "$l" "$wm" "$wlo" "$whi" "$bm" "$cm"
  else
    printf '| %s | %.0f (%.0f–%.0f) | %.0f | %.1f |\n' "$l" "$wm" "$wlo" "$whi" "$bm" "$cm"
  fi
done
