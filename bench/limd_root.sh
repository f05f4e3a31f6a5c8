#!/usr/bin/env bash
# limd on the ROOT filesystem (--allow-root-fs, the README main command's default): spawn of
# /bin/true and open+close of /etc/hostname, bare vs under limd with the built-in tcb policy
# vs under fapolicyd (Debian, permissive, one allow-all rule, watch_fs = the root
# filesystem's type: it marks `/` too; FAPOLICYD=0 leaves it out).
# MARKS `/`: never run from .ci/run or on a machine others are using. limd runs under
# `timeout -k 2 120` and is stopped by its own pid after each round; a wedged host recovers
# when timeout kills it (the kernel then allows its pending events).
#
# Rounds alternate: bare, then limd started (tcb, software bank, own state dir in a tmpfs so
# its list and lock are not on `/`), warmed once, timed, stopped; then fapolicyd the same way
# (its config swapped in for the run and restored at exit). Start-up (limd's start scan,
# fapolicyd's trust database) is not in the timed part. Prints medians and min–max per row.
# LIMD_OLD=another limd binary (e.g. a build of an earlier commit) runs in the same rounds,
# right after LIMD, and gets rows of its own: before/after comparisons on one loaded machine.
# MAKE_FILES=N (default 100; 0 leaves it out) adds a realistic workload: `make -j2` of a small C
# project on `/` (N one-function .c files and a main, compiled one by one and linked: gcc, cc1
# and as per file, about 3N+4 spawns, every new object file read by root once), from clean,
# timed per build.
# FLOOR=1 (the default when build/bench/lim_fanotify_floor exists; 0 leaves it out) adds the
# floor: a listener that takes the permission events limd takes on `/` and allows each at
# once (bench/fanotify_floor.cc), timed in the same rounds — the cost of the round trips
# alone, and "limd over floor" the cost of limd's own work.
# FLOOR_LEASE=1 (needs the floor) adds a second floor row: the same listener with read leases
# and inode ignore marks on /etc/ld.so.cache and /bin/true's libc (--lease-ignore), the floor
# of the read-lease design weighed for issue 19 (2 round trips per cached spawn, not 4).
# FLOOR_LEASE_FILES="F1 F2…" leases those files instead (e.g. /etc/ld.so.cache alone).
# Usage: bench/limd_root.sh [ROUNDS] (default 7). LIMD=build/src/daemon/limd OPLOOP=build/bench/lim_op_loop
# FLOORBIN=build/bench/lim_fanotify_floor
set -euo pipefail
rounds=${1:-7}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
floorbin=${FLOORBIN:-$here/../build/bench/lim_fanotify_floor}
use_floor=${FLOOR:-$([ -x "$floorbin" ] && echo 1 || echo 0)}
[[ $use_floor =~ ^[01]$ ]] || { echo "FLOOR: 0 or 1" >&2; exit 2; }
[ "$use_floor" = 0 ] || [ -x "$floorbin" ] || { echo "FLOOR=1 needs $floorbin (ninja lim_fanotify_floor)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (fanotify on /)" >&2; exit 2; }
[ -x "$limd" ] && [ -x "$oploop" ] || { echo "build limd and lim_op_loop first" >&2; exit 2; }
S=$(mktemp -d /dev/shm/limd-root-bench.XXXXXX)
make_files=${MAKE_FILES:-100}
[[ $make_files =~ ^[0-9]+$ ]] && [ "$make_files" -le 100000 ] || { echo "MAKE_FILES: 0..100000" >&2; exit 2; }
P=
if [ "$make_files" -gt 0 ]; then
  command -v make >/dev/null && command -v gcc >/dev/null || { echo "MAKE_FILES needs make and gcc" >&2; exit 2; }
  P=$(mktemp -d /var/tmp/limd-make-bench.XXXXXX)  # on `/`: the project is read and written under watch
  for ((i = 0; i < make_files; i++)); do printf 'int f%d(int x) { return x * %d + 1; }\n' "$i" "$i" >"$P/f$i.c"; done
  { for ((i = 0; i < make_files; i++)); do echo "int f$i(int);"; done
    echo 'int main(void) { int s = 0;'
    for ((i = 0; i < make_files; i++)); do echo "  s += f$i(s);"; done
    echo '  return s == 42; }'; } >"$P/main.c"
  printf 'OBJS := $(patsubst %%.c,%%.o,$(wildcard *.c))\nprog: $(OBJS)\n\tgcc -o $@ $(OBJS)\n%%.o: %%.c\n\tgcc -O1 -c $< -o $@\nclean:\n\trm -f prog *.o\n' >"$P/Makefile"
fi
make_once() {  # prints ms for one clean build
  make -s -C "$P" clean >/dev/null
  local t0 t1
  t0=$(date +%s%N)
  make -s -j2 -C "$P" >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
pid=
use_fapo=${FAPOLICYD:-1}
. "$here/fapolicyd_lib.sh"
stop_limd() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    pid=
  fi
}
floor_pid=
stop_floor() {
  if [ -n "$floor_pid" ]; then
    kill "$floor_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$floor_pid" 2>/dev/null || break; sleep 0.05; done
    floor_pid=
  fi
}
start_floor() {  # start_floor [ARGS]: under timeout -k; floor_pid is the listener's own pid, not the wrapper's
  rm -f "$S/floor.out"
  timeout -k 2 120 "$floorbin" / "$@" >"$S/floor.out" &
  local wrapper=$!
  for _ in $(seq 200); do grep -q ready "$S/floor.out" 2>/dev/null && break; sleep 0.05; done
  grep -q ready "$S/floor.out" || { echo "lim_fanotify_floor did not start" >&2; exit 1; }
  floor_pid=$(pgrep -P "$wrapper")
}
trap 'stop_floor; stop_limd; fapo_stop; fapo_restore_config "$S"; rm -rf "$S"; [ -z "$P" ] || rm -rf "$P"' EXIT
if [ "$use_fapo" = 1 ]; then
  fapo_install
  fapo_swap_config "$S" "$(findmnt -n -o FSTYPE /)"
fi
limd_old=${LIMD_OLD:-}
start_limd() {  # start_limd [BINARY]
  rm -f "$S/limd.ready"
  timeout -k 2 120 "${1:-$limd}" --foreground --config /dev/null --securityfs none --control-socket none \
    --builtin tcb --no-tpm --allow-root-fs --watch / --state "$S" --log-file "$S/log" &
  for _ in $(seq 400); do [ -s "$S/limd.ready" ] && break; sleep 0.05; done
  pid=$(cat "$S/limd.ready")
}
declare -a bare_spawn limd_spawn bare_open limd_open fapo_spawn fapo_open old_spawn old_open bare_make limd_make fapo_make old_make
declare -a floor_spawn floor_open floor_make lease_spawn lease_open lease_make
use_lease=${FLOOR_LEASE:-0}
[[ $use_lease =~ ^[01]$ ]] || { echo "FLOOR_LEASE: 0 or 1" >&2; exit 2; }
[ "$use_lease" = 0 ] || [ "$use_floor" = 1 ] || { echo "FLOOR_LEASE=1 needs the floor" >&2; exit 2; }
lease_args=()
if [ "$use_lease" = 1 ]; then
  if [ -n "${FLOOR_LEASE_FILES:-}" ]; then
    for f in $FLOOR_LEASE_FILES; do
      [ -f "$f" ] || { echo "FLOOR_LEASE_FILES: no file $f" >&2; exit 2; }
      lease_args+=(--lease-ignore "$(readlink -f "$f")")
    done
  else
    libc=$(ldd /bin/true | awk '/libc\.so/ {print $3}')
    [ -f "$libc" ] || { echo "FLOOR_LEASE: no libc in ldd /bin/true" >&2; exit 2; }
    lease_args=(--lease-ignore /etc/ld.so.cache --lease-ignore "$(readlink -f "$libc")")
  fi
fi
run_workloads() {  # run_workloads NAME: warm up once, then time each workload into NAME_spawn, NAME_open, NAME_make
  local -n spawn_=$1_spawn open_=$1_open make_=$1_make
  "$oploop" spawn /bin/true 20 >/dev/null
  "$oploop" open /etc/hostname 20 >/dev/null
  spawn_+=("$("$oploop" spawn /bin/true 500)")
  open_+=("$("$oploop" open /etc/hostname 5000)")
  [ -z "$P" ] || make_+=("$(make_once)")
}
for ((r = 0; r < rounds; r++)); do
  run_workloads bare
  start_limd
  run_workloads limd
  stop_limd
  if [ -n "$limd_old" ]; then
    start_limd "$limd_old"
    run_workloads old
    stop_limd
  fi
  if [ "$use_floor" = 1 ]; then
    start_floor
    run_workloads floor
    stop_floor
  fi
  if [ "$use_lease" = 1 ]; then
    start_floor "${lease_args[@]}"
    run_workloads lease
    stop_floor
  fi
  if [ "$use_fapo" = 1 ]; then
    fapo_start "$S" 120
    run_workloads fapo
    fapo_stop
  fi
done
stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f", a[int((NR+1)/2)], a[1], a[NR]}'; }
row() {  # row TITLE BARE... -- LIMD... -- FAPO...: medians, spreads, ratios, added-cost ratio
  local title=$1
  shift
  local bare=() limd=() fapo=() part=0
  for v in "$@"; do
    if [ "$v" = -- ]; then part=$((part + 1)); continue; fi
    case $part in 0) bare+=("$v") ;; 1) limd+=("$v") ;; *) fapo+=("$v") ;; esac
  done
  read -r bm bmin bmax <<<"$(stats "${bare[@]}")"
  read -r lm lmin lmax <<<"$(stats "${limd[@]}")"
  local fcol="—" share="—"
  if [ "${#fapo[@]}" -gt 0 ]; then
    read -r fm fmin fmax <<<"$(stats "${fapo[@]}")"
    fcol=$(printf '%s (%s–%s) %.2f×' "$fm" "$fmin" "$fmax" "$(echo "$fm / $bm" | bc -l)")
    share=$(printf '%.2f' "$(echo "($lm - $bm) / ($fm - $bm)" | bc -l)")
  fi
  printf '| %s | %s (%s–%s) | %s (%s–%s) %.2f× | %s | %s |\n' "$title" "$bm" "$bmin" "$bmax" "$lm" "$lmin" "$lmax" \
    "$(echo "$lm / $bm" | bc -l)" "$fcol" "$share"
}
echo "| workload ($rounds rounds), µs/op (make: ms/build) | bare (min–max) | limd on / (min–max) ratio | fapolicyd on / (min–max) ratio | limd's added cost / fapolicyd's |"
echo "|---|---|---|---|---|"
row "spawn /bin/true" "${bare_spawn[@]}" -- "${limd_spawn[@]}" -- "${fapo_spawn[@]}"
row "open+close /etc/hostname" "${bare_open[@]}" -- "${limd_open[@]}" -- "${fapo_open[@]}"
[ -z "$P" ] || row "make -j2, $make_files files" "${bare_make[@]}" -- "${limd_make[@]}" -- "${fapo_make[@]}"
if [ -n "$limd_old" ]; then
  row "spawn /bin/true, LIMD_OLD" "${bare_spawn[@]}" -- "${old_spawn[@]}" -- "${fapo_spawn[@]}"
  row "open+close /etc/hostname, LIMD_OLD" "${bare_open[@]}" -- "${old_open[@]}" -- "${fapo_open[@]}"
  [ -z "$P" ] || row "make -j2, $make_files files, LIMD_OLD" "${bare_make[@]}" -- "${old_make[@]}" -- "${fapo_make[@]}"
fi
if [ "$use_floor" = 1 ]; then
  # The floor in limd's column: its ratio to bare, and its added cost over fapolicyd's.
  row "spawn /bin/true, floor listener" "${bare_spawn[@]}" -- "${floor_spawn[@]}" -- "${fapo_spawn[@]}"
  row "open+close /etc/hostname, floor listener" "${bare_open[@]}" -- "${floor_open[@]}" -- "${fapo_open[@]}"
  [ -z "$P" ] || row "make -j2, $make_files files, floor listener" "${bare_make[@]}" -- "${floor_make[@]}" -- "${fapo_make[@]}"
fi
if [ "$use_lease" = 1 ]; then
  row "spawn /bin/true, floor with leases" "${bare_spawn[@]}" -- "${lease_spawn[@]}" -- "${fapo_spawn[@]}"
  row "open+close /etc/hostname, floor with leases" "${bare_open[@]}" -- "${lease_open[@]}" -- "${fapo_open[@]}"
  [ -z "$P" ] || row "make -j2, $make_files files, floor with leases" "${bare_make[@]}" -- "${lease_make[@]}" -- "${fapo_make[@]}"
fi
grep -E '"(entries|hashes|cache_hits|permission_events|timeouts|marks)"' "$S/status.json" 2>/dev/null | tr -d ' \n'; echo
