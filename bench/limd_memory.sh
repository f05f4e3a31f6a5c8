#!/usr/bin/env bash
# limd's memory against the number of distinct inodes opened (issue 18 item 12). Needs root;
# never run from .ci/run. Marks only its own tmpfs. limd --no-tpm (the tcb rules without the tmpfs exclusion) watches
# the tmpfs; then, printing limd's VmRSS and VmHWM (/proc/PID/status) after each step:
#   1. uid 65534 creates and reads N one-byte files (one perl process, no fork per file)
#   2. the same again (a second pass over the same files)
#   3. root reads N new files (tcb measures them: N list entries)
#   4. root reads the same files again (cached or re-hashed; no new entries)
#   5. uid 65534 creates N new files and holds each twice (two opens, then both closed: the
#      two closes merge in fanotify's queue), then reads N more new files once
# After each step also tracked_inodes, count_probes and count_resets from status.json.
# Usage: bench/limd_memory.sh [N] (default 100000; TWICE=M: M files in step 5, default N). LIMD=PATH picks the build; EXTRA="…"
# adds limd flags; WRAP="heaptrack -o FILE" runs limd under heaptrack.
set -euo pipefail
n=${1:-100000}
twice_n=${TWICE:-$n}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify)" >&2; exit 2; }
W=$(mktemp -d)
lpid=
cleanup() {
  if [ -n "$lpid" ]; then kill "$lpid" 2>/dev/null; wait || true; fi
  umount "$W/m" 2>/dev/null || umount -l "$W/m" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
chmod 755 "$W"
mkdir "$W/m" "$W/state"
mount -t tmpfs -o size=1g,nr_inodes=0 limdmemory "$W/m"
mkdir "$W/m/u" "$W/m/u2" "$W/m/r"
chown 65534:65534 "$W/m/u" "$W/m/u2"
# The tcb rules without their tmpfs exclusion (as bench/limd.sh), so root's reads are measured.
printf 'measure func=BPRM_CHECK mask=MAY_EXEC\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=MMAP_CHECK mask=MAY_EXEC\n' >"$W/policy"
timeout -k 2 1800 ${WRAP:-} "$limd" --foreground --config /dev/null --no-tpm --policy "$W/policy" --securityfs none \
  --control-socket none --state "$W/state" --watch "$W/m" --log-file "$W/state/log" ${EXTRA:-} &
for _ in $(seq 400); do [ -s "$W/state/limd.ready" ] && break; sleep 0.05; done
lpid=$(cat "$W/state/limd.ready")
mem() {
  local s t
  sleep 1.2  # status.json is refreshed every second
  s=$(awk '/^VmRSS|^VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$lpid/status")
  t=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("tracked %s probes %s resets %s" % (j.get("tracked_inodes"), j.get("count_probes"), j.get("count_resets")))' "$W/state/status.json" 2>/dev/null || true)
  printf '%-40s %s list %s bytes  %s\n' "$1" "$s" "$(stat -c %s "$W/state/binary_runtime_measurements")" "$t"
}
work='my ($dir, $n, $create) = @ARGV; for my $i (1..$n) { my $f = "$dir/f$i";
  if ($create) { open(my $w, ">", $f) or die "$f: $!"; print $w "x"; close $w; }
  open(my $r, "<", $f) or die "$f: $!"; my $b; read($r, $b, 1); close $r; }'
sleep 1
mem "start"
t0=$(date +%s.%N)
setpriv --reuid 65534 --regid 65534 --clear-groups perl -e "$work" "$W/m/u" "$n" 1
mem "uid 65534 created+read $n"
setpriv --reuid 65534 --regid 65534 --clear-groups perl -e "$work" "$W/m/u" "$n" 0
mem "uid 65534 read them again"
perl -e "$work" "$W/m/r" "$n" 1
mem "root created+read $n new"
perl -e "$work" "$W/m/r" "$n" 0
mem "root read them again"
twice='my ($dir, $n) = @ARGV; for my $i (1..$n) { my $f = "$dir/t$i";
  open(my $w, ">", $f) or die "$f: $!"; print $w "x"; close $w;
  open(my $a, "<", $f) or die; open(my $b, "<", $f) or die; close $a; close $b; }'
setpriv --reuid 65534 --regid 65534 --clear-groups perl -e "$twice" "$W/m/u" "$twice_n"
mem "uid 65534 held $twice_n new files twice"
setpriv --reuid 65534 --regid 65534 --clear-groups perl -e "$work" "$W/m/u2" "$n" 1
mem "uid 65534 created+read $n more"
t1=$(date +%s.%N)
echo "workload seconds: $(echo "$t1 - $t0" | bc)"
