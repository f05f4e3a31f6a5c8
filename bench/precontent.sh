#!/usr/bin/env bash
# Benchmark: the cost of pre-content events (FAN_PRE_ACCESS) on 4 KiB-block reads.
# Two loop-mounted ext4 images of their own: A is watched by limd, B is not (bare). A 32 MiB
# file is read with `dd bs=4k` by an unprivileged user (nobody), so no FILE_CHECK rule
# measures it: on A every read() of the unmeasured file u is a pre-content round trip,
# while m, measured once by a PROT_EXEC mmap, carries an inode ignore mark. Rounds alternate
# bare / unmeasured / measured; medians of ROUNDS runs; the round-trip cost is
# (unmeasured - bare) / number of reads. Root only; limd runs under timeout and is stopped
# by its own pid; both mounts are removed at the end.
#
# Usage: sudo bench/precontent.sh            (after building into build/)
#        ROUNDS=7 SIZE_MIB=32 bench/precontent.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LIMD=${LIMD:-build/src/daemon/limd}
ROUNDS=${ROUNDS:-5}
SIZE_MIB=${SIZE_MIB:-32}
WORK=$(mktemp -d)
chmod 755 "$WORK"  # nobody reads below it
A=$WORK/a B=$WORK/b S=$WORK/state
mkdir -p "$A" "$B" "$S"
LP=
cleanup() {
  [ -n "$LP" ] && kill "$LP" 2>/dev/null && sleep 0.5
  umount "$A" 2>/dev/null || true
  umount "$B" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for m in "$A" "$B"; do
  truncate -s $((SIZE_MIB * 2 + 32))M "$m.img" && mkfs.ext4 -q "$m.img" && mount -o loop "$m.img" "$m" && chmod 755 "$m"
done
head -c $((SIZE_MIB << 20)) /dev/urandom >"$A/u"
cp "$A/u" "$A/m"
cp "$A/u" "$B/u"
printf 'measure func=MMAP_CHECK mask=MAY_EXEC\n' >"$S/policy"
(exec timeout -k 2 600 "$LIMD" --foreground --no-tpm --state "$S" --watch "$A" --policy "$S/policy" \
  --log-file "$S/log" 2>"$S/err") &
for _ in $(seq 100); do [ -s "$S/limd.ready" ] && break; sleep 0.1; done
LP=$(cat "$S/limd.ready")
python3 -c "import mmap,os; mmap.mmap(os.open('$A/m', os.O_RDONLY), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ|mmap.PROT_EXEC)"
secs() { su nobody -s /bin/sh -c "dd if=$1 of=/dev/null bs=4k" 2>&1 | sed -n 's/.*copied, \([0-9.]*\) s.*/\1/p'; }
declare -a bare un me
for _ in $(seq "$ROUNDS"); do
  bare+=("$(secs "$B/u")")
  un+=("$(secs "$A/u")")
  me+=("$(secs "$A/m")")
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
span() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo "-" hi}'; }
reads=$((SIZE_MIB * 256))
mb() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN {printf "%.0f MiB/s", m / s}'; }
echo "4 KiB reads of a ${SIZE_MIB} MiB file, median of $ROUNDS (spread in s):"
echo "  bare (unwatched ext4):        $(med "${bare[@]}") s  $(mb "$(med "${bare[@]}")")  [$(span "${bare[@]}")]"
echo "  limd, unmeasured (round trip): $(med "${un[@]}") s  $(mb "$(med "${un[@]}")")  [$(span "${un[@]}")]"
echo "  limd, measured (ignore mark):  $(med "${me[@]}") s  $(mb "$(med "${me[@]}")")  [$(span "${me[@]}")]"
awk -v u="$(med "${un[@]}")" -v b="$(med "${bare[@]}")" -v n="$reads" \
  'BEGIN {printf "  pre-content round trip: %.1f us per read\n", (u - b) / n * 1e6}'
grep -E '"precontent_(events|quick)"' "$S/status.json" || true
