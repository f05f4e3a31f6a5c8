#!/usr/bin/env bash
# limd with appraisal enforced against limd measuring only and against no monitor, on the
# cached path, interleaved round by round (bench/interleave.sh: medians, min–max spread,
# ratio to the first). Needs root, evmctl and openssl; never run from .ci/run. Marks only
# its own ext4 loop mounts:
#   bare     — unwatched
#   measure  — limd --watch, measure rules only (BPRM_CHECK, FILE_CHECK, MMAP_CHECK)
#   enforce  — limd --watch --appraise enforce, the same measure rules plus
#              appraise func=BPRM_CHECK|FILE_CHECK appraise_type=imasig
# /bin/true is copied to each and signed with evmctl ima_sign (RSA-2048, sha256). Workloads
# (after a warm-up, so every verdict is cached): spawns without a shell and open+close of
# one file (lim_op_loop). Also the CPU time each limd spent (utime+stime from
# /proc/PID/stat) over all timed rounds: both saw the same accesses.
# Usage: bench/appraise.sh [ROUNDS] (default 9).  LIMD=build/src/daemon/limd
# Build first: ninja -C build limd lim_op_loop
set -euo pipefail
rounds=${1:-9}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
[ -x "$limd" ] && [ -x "$oploop" ] || { echo "build first: ninja -C build limd lim_op_loop" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify, security.ima)" >&2; exit 2; }
command -v evmctl >/dev/null || { echo "evmctl missing (scripts/deps.sh)" >&2; exit 2; }
W=$(mktemp -d)
pids=() mounts=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -m 0700 "$W/keys"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ima.key" -out "$W/keys/ima.pem" -subj /CN=bench -days 2 2>/dev/null
for d in bare measure enforce; do
  mkdir "$W/$d"
  truncate -s 64M "$W/$d.img"
  mkfs.ext4 -q -F "$W/$d.img"
  mount -o loop "$W/$d.img" "$W/$d"
  mounts+=("$W/$d")
  cp /bin/true "$W/$d/true"
  evmctl ima_sign -a sha256 --key "$W/ima.key" "$W/$d/true" >/dev/null 2>&1
done
measure='measure func=BPRM_CHECK mask=MAY_EXEC\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n'
printf "$measure" >"$W/measure.policy"
printf "${measure}appraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK appraise_type=imasig\n" >"$W/enforce.policy"
start_limd() {  # start_limd NAME ARGS...: sets lpid
  local s="$W/state.$1" w="$W/$1" p="$W/$1.policy"
  shift
  mkdir -p "$s"
  timeout -k 2 900 "$limd" --foreground --config /dev/null --securityfs none --control-socket none --no-tpm \
    --policy "$p" --state "$s" --watch "$w" --log-file "$s/log" "$@" &
  for _ in $(seq 200); do [ -s "$s/limd.ready" ] && break; sleep 0.05; done
  lpid=$(cat "$s/limd.ready")
  pids+=("$lpid")
}
start_limd measure
measure_pid=$lpid
start_limd enforce --appraise enforce --keys "$W/keys"
enforce_pid=$lpid

for d in bare measure enforce; do "$W/$d/true"; cat "$W/$d/true" >/dev/null; done  # warm-up: verdicts cached
if grep -q appraise_data "$W/state.enforce/log"; then
  echo "the signed /bin/true failed its appraisal:" >&2
  grep appraise_data "$W/state.enforce/log" >&2
  exit 1
fi
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
m0=$(cpu "$measure_pid") e0=$(cpu "$enforce_pid")

specs() { for d in bare measure enforce; do echo "$d=${1//%D/$W/$d}"; done; }
echo "### 500 spawns of a signed /bin/true without a shell (lim_op_loop spawn)"
mapfile -t s < <(specs "$oploop spawn %D/true 500")
"$here/interleave.sh" "$rounds" "${s[@]}"
echo
echo "### 2,000 open+close of one signed file (lim_op_loop open)"
mapfile -t s < <(specs "$oploop open %D/true 2000")
"$here/interleave.sh" "$rounds" "${s[@]}"

m1=$(cpu "$measure_pid") e1=$(cpu "$enforce_pid")
hz=$(getconf CLK_TCK)
echo
echo "### limd CPU over the timed rounds (same accesses for both)"
echo "| limd | CPU s |"
echo "|---|---|"
printf '| measure | %.2f |\n| enforce | %.2f |\n' "$(echo "($m1 - $m0) / $hz" | bc -l)" "$(echo "($e1 - $e0) / $hz" | bc -l)"
for d in measure enforce; do
  echo "$d limd: $(tr -d ' \n' <"$W/state.$d/status.json" | grep -o '"\(hashes\|cache_hits\|appraised\|unknown_syscall\|answered\)":[0-9]*' | tr '\n' ' ')"
done
echo "appraisal failures logged by the enforcing limd: $(grep -c appraise_data "$W/state.enforce/log" || true)"
