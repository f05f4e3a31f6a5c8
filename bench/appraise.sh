#!/usr/bin/env bash
# limd with appraisal enforced against limd measuring only, against no monitor and against
# fapolicyd enforcing its trust db, on the cached path, interleaved round by round
# (bench/interleave.sh: medians, min–max spread, ratio to the first). Needs root, evmctl,
# openssl (and fapolicyd, installed if missing — FAPOLICYD=0 leaves it out); never run from
# .ci/run. Four loop images made alike (mkfs.ext3), each its own mount:
#   bare     — unwatched (mounted -t ext4)
#   measure  — limd --watch, measure rules only (BPRM_CHECK, FILE_CHECK uid=0, MMAP_CHECK)
#   enforce  — limd --watch --appraise enforce, the same measure rules plus
#              appraise func=BPRM_CHECK|FILE_CHECK appraise_type=imasig
#   fapo     — fapolicyd, mounted -t ext3: its watch_fs is ext3 and nothing else on the
#              machine may have an ext3 mount (checked before and after: the script refuses
#              to run otherwise), so it never marks `/` or /work. trust = file with
#              integrity = sha256, the trust db lists only this mount's `true`; rules: trusted
#              files allowed, untrusted execs and opens denied (bench/fapolicyd_lib.sh).
# /bin/true is copied to each and signed with evmctl ima_sign (RSA-2048, sha256). Before
# timing, a sanity check that both enforcers enforce: an unlisted copy on fapo and an
# unsigned copy on enforce must fail to exec (EPERM: bash exit 126) while the signed/trusted
# one runs. Workloads (after a warm-up, so every verdict is cached): spawns without a shell
# and open+close of one file (lim_op_loop). Then, per workload, the CPU time each daemon
# spent (utime+stime from /proc/PID/stat, all threads) over all timed rounds — every daemon
# saw the same accesses on its own mount; it includes limd's exec tracepoint work for every
# exec on the machine, the other peers' too, so it is split: the tracepoint consumer's thread
# (limd-trace; the same code in both modes) and the rest (the fanotify path, where appraisal
# happens; its enforce/measure ratio is printed) — and limd's round trips per operation (its
# answers: permission and pre-content events), measure vs enforce: the script fails unless
# they are equal. Last, per round and daemon, its CPU while it alone serves its workload
# (perf stat -e task-clock -p PID), and the per-round enforce/measure ratio.
# Config files fapolicyd reads are swapped in and restored at exit (trap); every daemon runs
# under `timeout -k` and is stopped by its own pid.
# Usage: bench/appraise.sh [ROUNDS] (default 9).  LIMD=build/src/daemon/limd
# Build first: ninja -C build limd lim_op_loop
set -euo pipefail
rounds=${1:-9}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
use_fapo=${FAPOLICYD:-1}
[ -x "$limd" ] && [ -x "$oploop" ] || { echo "build first: ninja -C build limd lim_op_loop" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify, security.ima)" >&2; exit 2; }
command -v evmctl >/dev/null || { echo "evmctl missing (scripts/deps.sh)" >&2; exit 2; }
. "$here/fapolicyd_lib.sh"
fapo_fs=ext3
if [ "$use_fapo" = 1 ] && ! fapo_fstype_unused "$fapo_fs"; then
  echo "an $fapo_fs filesystem is mounted already: fapolicyd (watch_fs = $fapo_fs) would mark it; not running" >&2
  findmnt -t "$fapo_fs" >&2
  exit 2
fi
W=$(mktemp -d)
pids=() mounts=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  fapo_stop
  fapo_restore_config "$W"
  sleep 0.5
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

names=(bare measure enforce)
[ "$use_fapo" = 1 ] && names+=(fapo)
mkdir -m 0700 "$W/keys"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ima.key" -out "$W/keys/ima.pem" -subj /CN=bench -days 2 2>/dev/null
for d in "${names[@]}"; do
  mkdir "$W/$d"
  truncate -s 64M "$W/$d.img"
  mkfs.ext3 -q -F "$W/$d.img"
  t=ext4
  [ "$d" = fapo ] && t=$fapo_fs
  mount -t "$t" -o loop "$W/$d.img" "$W/$d"
  mounts+=("$W/$d")
  cp /bin/true "$W/$d/true"
  evmctl ima_sign -a sha256 --key "$W/ima.key" "$W/$d/true" >/dev/null 2>&1
done
cp /bin/true "$W/enforce/unsigned"
measure='measure func=BPRM_CHECK mask=MAY_EXEC\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n'
printf "$measure" >"$W/measure.policy"
printf "${measure}appraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK appraise_type=imasig\n" >"$W/enforce.policy"
start_limd() {  # start_limd NAME ARGS...: sets lpid
  local s="$W/state.$1" w="$W/$1" p="$W/$1.policy"
  shift
  mkdir -p "$s"
  timeout -k 2 1800 "$limd" --foreground --config /dev/null --securityfs none --control-socket none --no-tpm \
    --policy "$p" --state "$s" --watch "$w" --log-file "$s/log" "$@" &
  for _ in $(seq 200); do [ -s "$s/limd.ready" ] && break; sleep 0.05; done
  lpid=$(cat "$s/limd.ready")
  pids+=("$lpid")
}
# ENFORCE_FIRST=1 starts the enforcing limd first: the start order moves the tracepoint
# consumers' whole-run CPU between the two (docs/performance.md), the mode does not.
if [ "${ENFORCE_FIRST:-0}" = 1 ]; then
  start_limd enforce --appraise enforce --keys "$W/keys"
  enforce_pid=$lpid
  start_limd measure
  measure_pid=$lpid
else
  start_limd measure
  measure_pid=$lpid
  start_limd enforce --appraise enforce --keys "$W/keys"
  enforce_pid=$lpid
fi
fapo_pid=
if [ "$use_fapo" = 1 ]; then
  fapo_install
  cp /bin/true "$W/fapo/untrusted"  # before fapolicyd starts: it denies opens of untrusted files there
  fapo_fstype_unused "$fapo_fs" "$W/fapo" || { echo "another $fapo_fs mount appeared; not starting fapolicyd" >&2; exit 2; }
  fapo_swap_config "$W" "$fapo_fs" "$W/fapo/true"
  fapo_start "$W" 1800
  [ -n "$fapo_pid" ] || { echo "fapolicyd did not start:" >&2; cat "$W/fapolicyd.log" >&2; exit 1; }
fi

for d in "${names[@]}"; do "$W/$d/true"; cat "$W/$d/true" >/dev/null; done  # warm-up: verdicts cached
if grep -q appraise_data "$W/state.enforce/log"; then
  echo "the signed /bin/true failed its appraisal:" >&2
  grep appraise_data "$W/state.enforce/log" >&2
  exit 1
fi
# Sanity: both enforcers deny what they must (bash: 126 "Operation not permitted").
rc=0
"$W/enforce/unsigned" 2>/dev/null || rc=$?
[ "$rc" = 126 ] || { echo "limd enforce let an unsigned exec through (rc $rc)" >&2; exit 1; }
grep -q 'cause=IMA-signature-required.*unsigned' "$W/state.enforce/log" ||
  { echo "limd enforce: no audit line for the unsigned exec" >&2; exit 1; }
echo "sanity: limd enforce denied the unsigned exec (exit 126, audited IMA-signature-required)"
if [ "$use_fapo" = 1 ]; then
  rc=0
  "$W/fapo/untrusted" 2>/dev/null || rc=$?
  [ "$rc" = 126 ] || { echo "fapolicyd let an untrusted exec through (rc $rc)" >&2; exit 1; }
  "$W/fapo/true" || { echo "fapolicyd denied its trusted binary" >&2; exit 1; }
  grep -q 'dec=deny.*untrusted' "$W/fapolicyd.log" || { echo "fapolicyd: no deny line for the untrusted exec" >&2; exit 1; }
  echo "sanity: fapolicyd denied the untrusted exec (exit 126): $(grep -m1 'dec=deny.*untrusted' "$W/fapolicyd.log")"
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
trace_cpu() {  # CPU ticks of PID's tracepoint consumer threads (comm limd-trace)
  local t s=0
  for t in /proc/"$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = limd-trace ] && s=$((s + $(awk '{print $14 + $15}' "$t/stat")))
  done
  echo "$s"
}
events() {  # limd's answers so far — one per round trip an opener waited on: permission
  # events of the content group and pre-content events (reads, mmaps) alike — from
  # status.json (refreshed every second)
  sleep 1.2
  tr -d ' \n' <"$W/state.$1/status.json" | grep -o '"answered":[0-9]*' | cut -d: -f2
}
daemons=(measure enforce)
declare -A dpid=([measure]=$measure_pid [enforce]=$enforce_pid)
[ "$use_fapo" = 1 ] && { daemons+=(fapo); dpid[fapo]=$fapo_pid; }
hz=$(getconf CLK_TCK)
specs() { for d in "${names[@]}"; do echo "$d=${1//%D/$W/$d}"; done; }
workload() {  # workload TITLE OPS SPEC: the interleaved table, then CPU and round trips
  local title=$1 ops=$2 spec=$3 d
  declare -A c0 e0 t0
  for d in "${daemons[@]}"; do c0[$d]=$(cpu "${dpid[$d]}"); done
  for d in measure enforce; do t0[$d]=$(trace_cpu "${dpid[$d]}"); done
  for d in measure enforce; do e0[$d]=$(events "$d"); done
  echo
  echo "### $title"
  mapfile -t s < <(specs "$spec")
  "$here/interleave.sh" "$rounds" "${s[@]}"
  local total=$((ops * rounds))
  declare -A de
  for d in measure enforce; do de[$d]=$(($(events "$d") - e0[$d])); done
  echo
  echo "| daemon | CPU s over $rounds rounds | CPU µs per op | round trips per op (limd's answers) |"
  echo "|---|---|---|---|"
  for d in "${daemons[@]}"; do
    local c=$(($(cpu "${dpid[$d]}") - c0[$d])) ev=—
    [ -n "${de[$d]:-}" ] && ev=$(printf '%.2f' "$(echo "${de[$d]} / $total" | bc -l)")
    printf '| %s | %.2f | %.1f | %s |\n' "$d" "$(echo "$c / $hz" | bc -l)" "$(echo "$c * 1000000 / $hz / $total" | bc -l)" "$ev"
  done
  local mc=$(($(cpu "$measure_pid") - c0[measure])) ec=$(($(cpu "$enforce_pid") - c0[enforce]))
  [ "$mc" -gt 0 ] && printf 'enforce CPU / measure CPU: %.3f\n' "$(echo "$ec / $mc" | bc -l)"
  local mt=$(($(trace_cpu "$measure_pid") - t0[measure])) et=$(($(trace_cpu "$enforce_pid") - t0[enforce]))
  printf 'of it, the tracepoint consumer (limd-trace: every exec on the machine): measure %.2f s, enforce %.2f s\n' \
    "$(echo "$mt / $hz" | bc -l)" "$(echo "$et / $hz" | bc -l)"
  [ $((mc - mt)) -gt 0 ] && printf 'the rest (fanotify path), enforce / measure: %.2f s / %.2f s = %.3f\n' \
    "$(echo "($ec - $et) / $hz" | bc -l)" "$(echo "($mc - $mt) / $hz" | bc -l)" "$(echo "($ec - $et) / ($mc - $mt)" | bc -l)"
  if [ "${de[measure]}" != "${de[enforce]}" ]; then
    echo "enforce took ${de[enforce]} round trips, measure ${de[measure]}: enforce adds round trips" >&2
    exit 1
  fi
  echo "round trips: measure ${de[measure]} = enforce ${de[enforce]} over $total operations"
}
workload "500 spawns of a signed /bin/true without a shell (lim_op_loop spawn)" 500 "$oploop spawn %D/true 500"
workload "2,000 open+close of one signed file (lim_op_loop open)" 2000 "$oploop open %D/true 2000"

# Per round, each daemon's own CPU while it serves one workload on its mount (perf stat
# -e task-clock -p PID over the lim_op_loop run), daemons in turn round by round; the
# enforce/measure ratio is taken per round (the two ran back to back) — its median and
# min–max are what the ≤ 10 % target is judged on.
if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
  declare -A cpus
  task_us() {  # task_us PID OPS ARGS...: µs of PID's CPU per operation of lim_op_loop ARGS
    local pid=$1 ops=$2
    shift 2
    perf stat -x, -e task-clock -p "$pid" -- "$oploop" "$@" 2>&1 >/dev/null |
      awk -F, -v n="$ops" '/task-clock/ {printf "%.2f", $1 * 1000 / n}'
  }
  for ((r = 0; r < rounds; r++)); do
    for d in "${daemons[@]}"; do
      cpus[$d.spawn]+="$(task_us "${dpid[$d]}" 500 spawn "$W/$d/true" 500) "
      cpus[$d.open]+="$(task_us "${dpid[$d]}" 2000 open "$W/$d/true" 2000) "
    done
  done
  mm() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%.1f (%.1f–%.1f)", a[int((NR+1)/2)], a[1], a[NR]}'; }
  ratios() {  # ratios A B: per-round A/B, median (min–max)
    paste -d' ' <(tr ' ' '\n' <<<"${cpus[$1]}" | grep -v '^$') <(tr ' ' '\n' <<<"${cpus[$2]}" | grep -v '^$') |
      awk '{print $1 / $2}' | sort -g | awk '{a[NR]=$1} END {printf "%.3f (%.3f–%.3f)", a[int((NR+1)/2)], a[1], a[NR]}'
  }
  echo
  echo "### daemon CPU per operation, perf stat -e task-clock -p PID, $rounds interleaved rounds"
  echo "| daemon | µs CPU per spawn, median (min–max) | µs CPU per open+close, median (min–max) |"
  echo "|---|---|---|"
  for d in "${daemons[@]}"; do
    echo "| $d | $(echo "${cpus[$d.spawn]}" | mm) | $(echo "${cpus[$d.open]}" | mm) |"
  done
  echo "| enforce / measure, per-round ratio | $(ratios enforce.spawn measure.spawn) | $(ratios enforce.open measure.open) |"
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for d in measure enforce; do
  echo "$d limd: $(tr -d ' \n' <"$W/state.$d/status.json" | grep -o '"\(hashes\|cache_hits\|appraised\|appraise_failures\|appraise_denied\|permission_events\|answered\)":[0-9]*' | tr '\n' ' ')"
done
echo "appraisal failures logged by the enforcing limd: $(grep -c appraise_data "$W/state.enforce/log" || true) (the sanity check's)"
[ "$use_fapo" = 1 ] && echo "fapolicyd denials logged: $(grep -c 'dec=deny' "$W/fapolicyd.log" || true) (the sanity check's)"
if [ "$use_fapo" = 1 ] && ! fapo_fstype_unused "$fapo_fs" "$W/fapo"; then
  echo "warning: another $fapo_fs mount appeared during the run (fapolicyd may have marked it):" >&2
  findmnt -t "$fapo_fs" >&2
fi
