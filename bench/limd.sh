#!/usr/bin/env bash
# limd overhead, interleaved (bench/interleave.sh): spawn of /bin/true copied to a tmpfs
# watched by limd vs the same binary on an identical unwatched tmpfs, and the first
# measurement of a new 64 MiB file (cat of a fresh copy) vs `openssl dgst -sha256` and a
# bare cat. limd runs with a software bank (--no-tpm), the tcb rules without tmpfs
# exclusion, under `timeout -k 2 60`, and is stopped by its own pid. Needs root.
# Usage: bench/limd.sh [ROUNDS] (default 7).  LIMD=build/src/daemon/limd
set -euo pipefail
rounds=${1:-7}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify)" >&2; exit 2; }
A=$(mktemp -d) B=$(mktemp -d) S=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && sleep 0.5
  umount "$A" "$B" 2>/dev/null || true
  rmdir "$A" "$B" 2>/dev/null || true
}
trap cleanup EXIT
mount -t tmpfs -o size=600m limdbenchA "$A"
mount -t tmpfs -o size=600m limdbenchB "$B"
for d in "$A" "$B"; do cp /bin/true "$d/true"; head -c 64M /dev/urandom > "$d/big"; done
printf 'measure func=BPRM_CHECK mask=MAY_EXEC\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n' > "$S/policy"
timeout -k 2 60 "$limd" --no-tpm --foreground --securityfs none --policy "$S/policy" --state "$S" --watch "$A" --log-file "$S/log" &
for _ in $(seq 100); do [ -s "$S/limd.ready" ] && break; sleep 0.05; done
pid=$(cat "$S/limd.ready")
echo "limd pid $pid watching $A; bare tmpfs $B"
echo
echo "### spawn of /bin/true, 200 spawns per round"
"$here/interleave.sh" "$rounds" \
  "bare=for i in \$(seq 200); do $B/true; done" \
  "limd (cached)=for i in \$(seq 200); do $A/true; done"
echo
echo "### 64 MiB file: first measurement (cat of a fresh copy) vs openssl"
n=0
"$here/interleave.sh" "$rounds" \
  "openssl dgst -sha256=openssl dgst -sha256 $B/big" \
  "bare cat of a fresh copy=cp $B/big $B/c && cat $B/c; rm -f $B/c" \
  "limd cat of a fresh copy=cp $A/big $A/c && cat $A/c; rm -f $A/c"
echo
grep -E '"(hashes|cache_hits|entries|permission_events)"|p50|p99|max' "$S/status.json" || true
