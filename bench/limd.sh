#!/usr/bin/env bash
# limd overhead against no monitor and against fapolicyd, interleaved round by round
# (bench/interleave.sh: medians, min–max spread, ratio to the first command). Needs root;
# never run from .ci/run. Marks only its own loop mounts:
#   bare  — ext3 image, unwatched            limd — ext4 image, limd --watch (filesystem mark)
#   fapo  — ext2 image, fapolicyd watch_fs=ext2 (mount marks on ext2 mounts: the script
#           refuses to start when any other ext2 mount exists)
# All three are the kernel's ext4 driver on identical loop images. Workloads: 200 spawns of
# /bin/true (limd: tcb rules, cached path), dd bs=4k read (page cache) and write of a
# 64 MiB file, the same spawn and open+close loops without a shell (lim_op_loop), `tar cf - | cat` of 5,000 small files (tar skips reading when the archive is
# /dev/null itself, so it is piped), the first measurement of a new 64 MiB file against
# `openssl dgst -sha256`, and of 100 new small files under limd with a private swtpm vs a
# bare cat and `openssl dgst` of the same files (the extend alone: tpm_bench).
# limd runs with the tcb rules without the tmpfs exclusion, under `timeout -k 2 600`, and
# is stopped by its own pid; fapolicyd 1.1 (Debian) runs in the foreground, permissive, one
# allow-all rule, its config swapped in and restored afterwards. fapolicyd is installed
# here if missing (service start suppressed); it is a bench dependency only.
# Usage: bench/limd.sh [ROUNDS] (default 7).  LIMD=build/src/daemon/limd  FAPOLICYD=0 skips it.
#   LIMD_B=PATH adds a second limd build (its own ext4 image, same flags) to every round, for
#   before/after comparisons in one run.  ONLY=REGEX runs only the sections whose title
#   matches (e.g. ONLY='spawn|open\+close|CPU').  TPM_PEER=1 gives limd and limd B the
#   private swtpm instead of --no-tpm: a TPM server peer is set (the per-event exemption check
#   of docs/limd.md "The TPM server" is then on every event's path).
# Build first: ninja -C build limd lim_op_loop
set -euo pipefail
rounds=${1:-7}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
oploop=${OPLOOP:-$here/../build/bench/lim_op_loop}
[ -x "$limd" ] && [ -x "$oploop" ] || { echo "build first: ninja -C build limd lim_op_loop" >&2; exit 2; }
use_fapo=${FAPOLICYD:-1}
limd_b=${LIMD_B:-}
only=${ONLY:-.}
tpm_peer=${TPM_PEER:-0}
want() { [[ $1 =~ $only ]]; }
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify)" >&2; exit 2; }
W=$(mktemp -d)
. "$here/fapolicyd_lib.sh"
pids=() mounts=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  fapo_restore_config "$W"
  rm -rf "$W"
}
trap cleanup EXIT

[ "$use_fapo" = 1 ] && fapo_install
if [ "$use_fapo" = 1 ] && awk '$3 == "ext2"' /proc/mounts | grep -q .; then
  echo "an ext2 mount exists: fapolicyd (watch_fs=ext2) would mark it; refusing" >&2
  exit 2
fi

mkimg() {  # mkimg NAME FSTYPE
  mkdir "$W/$1"
  truncate -s 512M "$W/$1.img"
  "mkfs.$2" -q -F "$W/$1.img"
  mount -t "$2" -o loop "$W/$1.img" "$W/$1"
  mounts+=("$W/$1")
  cp /bin/true "$W/$1/true"
  head -c 64M /dev/urandom >"$W/$1/big"
  head -c 64M /dev/zero >"$W/$1/w"
  mkdir "$W/$1/small"
  for i in $(seq 5000); do echo "small file $i" >"$W/$1/small/f$i"; done
}
mkimg bare ext3
mkimg limd ext4
[ -z "$limd_b" ] || mkimg limdB ext4
[ "$use_fapo" = 1 ] && mkimg fapo ext2
for t in tA tB; do mkdir "$W/$t"; mount -t tmpfs -o size=64m "limdbench$t" "$W/$t"; mounts+=("$W/$t"); done
sync

policy="$W/policy"
printf 'measure func=BPRM_CHECK mask=MAY_EXEC\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n' >"$policy"
start_limd() {  # start_limd STATE WATCH ARGS...: sets lpid
  local s=$1 w=$2
  shift 2
  mkdir -p "$s"
  timeout -k 2 600 "${LIMD_BIN:-$limd}" --foreground --config /dev/null --securityfs none --control-socket none --policy "$policy" --state "$s" --watch "$w" --log-file "$s/log" "$@" &
  for _ in $(seq 200); do [ -s "$s/limd.ready" ] && break; sleep 0.05; done
  lpid=$(cat "$s/limd.ready")
  pids+=("$lpid")
}
# A private swtpm for the extend cost (own socket, stopped by its pid).
mkdir -m 0700 "$W/tpm"
timeout -k 2 600 swtpm socket --tpm2 --tpmstate dir="$W/tpm" --flags startup-clear --log file="$W/tpm/log" \
  --server type=unixio,path="$W/tpm/sock",mode=0600 --ctrl type=unixio,path="$W/tpm/sock.ctrl",mode=0600 >/dev/null 2>&1 &
tpid=$!
for _ in $(seq 100); do [ -S "$W/tpm/sock" ] && break; sleep 0.05; done
pids+=("$(pgrep -P "$tpid")")
tpm_arg=(--no-tpm)
[ "$tpm_peer" = 1 ] && tpm_arg=(--tpm "swtpm:path=$W/tpm/sock")
start_limd "$W/s1" "$W/limd" "${tpm_arg[@]}"
limd_pid=$lpid
if [ -n "$limd_b" ]; then
  # One swtpm, one PCR per limd (each refuses a PCR something else extends).
  tpm_arg_b=("${tpm_arg[@]}")
  [ "$tpm_peer" = 1 ] && tpm_arg_b+=(--pcr 11)
  LIMD_BIN=$limd_b start_limd "$W/s2" "$W/limdB" "${tpm_arg_b[@]}"
  limdb_pid=$lpid
  echo "limd B ($limd_b) pid $limdb_pid watching $W/limdB (ext4)"
fi
tpm_arg_c=()
[ "$tpm_peer" = 1 ] && tpm_arg_c=(--pcr 12)
start_limd "$W/s3" "$W/tB" --tpm "swtpm:path=$W/tpm/sock" "${tpm_arg_c[@]}"
echo "limd pid $limd_pid watching $W/limd (ext4); bare $W/bare (ext3)"

if [ "$use_fapo" = 1 ]; then
  fapo_swap_config "$W" ext2
  fapo_start "$W" 600
  fpid=$fapo_pid
  pids+=("$fpid")
  grep -q "added $W/fapo mount point" "$W/fapolicyd.log" || { cat "$W/fapolicyd.log" >&2; echo "fapolicyd did not mark $W/fapo" >&2; exit 1; }
  echo "fapolicyd pid $fpid watching $W/fapo (ext2)"
fi

# Warm-up: first measurements and page cache, outside the timed rounds.
dirs=(bare limd)
[ -z "$limd_b" ] || dirs+=(limdB)
[ "$use_fapo" = 1 ] && dirs+=(fapo)
for d in "${dirs[@]}"; do
  "$W/$d/true"
  cat "$W/$d/big" "$W/$d/w" >/dev/null
  tar cf - -C "$W/$d" small | cat >/dev/null
done

run() {  # run TITLE 'CMD with %D for the mount directory'
  local title=$1 cmd=$2 specs=()
  want "$title" || return 0
  for d in "${dirs[@]}"; do
    specs+=("$d=${cmd//%D/$W/$d}")
  done
  echo
  echo "### $title"
  "$here/interleave.sh" "$rounds" "${specs[@]}"
}
run "spawn of /bin/true, 200 spawns per round" 'for i in $(seq 200); do %D/true; done'
run "500 spawns of /bin/true without a shell (lim_op_loop spawn)" "$oploop spawn %D/true 500"
run "2,000 open+close of one file (lim_op_loop open)" "$oploop open %D/true 2000"
run "dd bs=4k read of a 64 MiB file (page cache)" 'dd if=%D/big of=/dev/null bs=4k status=none'
run "dd bs=4k write of a 64 MiB file (overwrite in place)" 'dd if=/dev/zero of=%D/w bs=4k count=16384 conv=notrunc status=none'
run "tar of 5,000 small files (tar cf - | cat >/dev/null)" 'tar cf - -C %D small | cat >/dev/null'

if want 'first measurement'; then
echo
echo "### first measurement of a new 64 MiB file (cp + cat) vs openssl dgst -sha256"
"$here/interleave.sh" "$rounds" \
  "openssl dgst -sha256=openssl dgst -sha256 $W/bare/big" \
  "bare cp + cat=cp $W/bare/big $W/bare/c && cat $W/bare/c; rm -f $W/bare/c" \
  "limd cp + cat (hash before open returns)=cp $W/limd/big $W/limd/c && cat $W/limd/c; rm -f $W/limd/c"

echo
echo "### first measurement of 100 new small files with a TPM: one cat, each open waits for hash, append, extend"
# Unique contents (no duplicate suppression), written with a shell builtin. tA: an unwatched
# tmpfs; tB: limd with a private swtpm (sha1 + sha256 banks). The --no-tpm software bank is
# no zero-cost baseline (it rewrites software_pcrs.json after each extend). The extend alone:
# build/bench/tpm_bench --benchmark_filter=BM_LimExtendHeld (docs/performance.md).
newfiles='for i in $(seq 100); do echo "$EPOCHREALTIME $i" >%T/n$i; done; %C %T/n* >/dev/null; rm -f %T/n*'
nf=${newfiles//%C/cat}
os=${newfiles//%C/openssl dgst -sha256}
"$here/interleave.sh" "$rounds" \
  "bare cat=${nf//%T/$W/tA}" \
  "openssl dgst -sha256 of the same files=${os//%T/$W/tA}" \
  "limd + swtpm cat=${nf//%T/$W/tB}"
fi
if want 'monitor CPU' && command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
  # CPU time of the monitor itself per operation (perf stat on its pid while the loop
  # runs): steadier than wall time on a loaded machine. Median of the rounds.
  echo
  echo "### monitor CPU per operation (perf stat -e task-clock -p PID), median of $rounds"
  echo "| monitor | µs CPU per open+close, median (min–max) | µs CPU per spawn, median (min–max) |"
  echo "|---|---|---|"
  # Round-robin over the monitors (as interleave.sh does for wall time), so host noise in
  # one stretch of the run hits every monitor alike.
  mons=("limd|$limd_pid|$W/limd")
  [ -z "$limd_b" ] || mons+=("limd B|$limdb_pid|$W/limdB")
  [ "$use_fapo" = 1 ] && mons+=("fapolicyd|$fpid|$W/fapo")
  declare -A cpu_open cpu_spawn
  cpu_once() {  # cpu_once PID ARGS...: µs of PID's CPU per operation of lim_op_loop ARGS
    local pid=$1 n=${*: -1}
    shift
    perf stat -x, -e task-clock -p "$pid" -- "$oploop" "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ {printf "%.1f", $1 * 1000 / '"$n"'}'
  }
  for _ in $(seq "$rounds"); do
    for m in "${mons[@]}"; do
      IFS='|' read -r name pid dir <<<"$m"
      cpu_open[$name]+="$(cpu_once "$pid" open "$dir/true" 2000) "
      cpu_spawn[$name]+="$(cpu_once "$pid" spawn "$dir/true" 300) "
    done
  done
  med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {printf "%s (%s–%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
  for m in "${mons[@]}"; do
    IFS='|' read -r name pid dir <<<"$m"
    echo "| $name | $(echo "${cpu_open[$name]}" | med) | $(echo "${cpu_spawn[$name]}" | med) |"
  done
fi

echo
echo "limd counters (ext4 mount):"
grep -E '"(hashes|cache_hits|entries|permission_events|p50|p99|max)"' "$W/s1/status.json" || true
