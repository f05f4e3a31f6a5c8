#!/usr/bin/env bash
# The securityfs view over a long list: limd (software bank, under `timeout -k 2 120`,
# stopped by its own pid) continues a synthetic chain of N entries (bench/make_list.cc) and
# serves it at a fresh view directory; each file is read with cat (open renders the
# snapshot, then FUSE reads) and compared with `lim log`. Prints seconds per file and limd's
# peak RSS. Needs root.  Usage: bench/securityfs.sh [ENTRIES] (default 100000)
set -euo pipefail
n=${1:-100000}
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
[ "$(id -u)" = 0 ] || { echo "needs root (mount, fanotify, FUSE)" >&2; exit 2; }
T=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; sleep 1; fi
  umount "$T/w" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
mkdir "$T/w" "$T/s" "$T/gen"
"$build/bench/lim_make_list" "$T/gen" "$n" >/dev/null
cp "$T/gen/list" "$T/s/binary_runtime_measurements"
# Same boot, software bank (resetCount 0), PCR 10: limd continues the chain (re-extends it).
printf '{"boot_id":"%s","reset_count":0,"pcr":10}\n' "$(cat /proc/sys/kernel/random/boot_id)" > "$T/s/chain.json"
mount -t tmpfs -o size=16m limsfsbench "$T/w"
timeout -k 2 120 "$build/src/daemon/limd" --no-tpm --state "$T/s" --watch "$T/w" --securityfs "$T/v" \
  --boot-log none --log-file "$T/log" &
for _ in $(seq 600); do [ -s "$T/s/limd.ready" ] && break; sleep 0.1; done
pid=$(cat "$T/s/limd.ready")
echo "entries: $(cat "$T/v/ima/runtime_measurements_count"), list $(stat -c %s "$T/s/binary_runtime_measurements") bytes"
for f in binary_runtime_measurements_sha1 ascii_runtime_measurements_sha1 ascii_runtime_measurements_sha256 \
         binary_runtime_measurements_sha256; do
  s=$(date +%s.%N); cat "$T/v/ima/$f" > "$T/out"; e=$(date +%s.%N)
  case $f in
    binary_runtime_measurements_sha1) cmp -s "$T/out" "$T/s/binary_runtime_measurements" && same=yes || same=NO ;;
    *) fmt=${f%%_*}; bank=${f##*_}
       "$build/src/cli/lim" log "$T/s/binary_runtime_measurements" --format "$fmt" --bank "$bank" > "$T/ref"
       cmp -s "$T/out" "$T/ref" && same=yes || same=NO ;;
  esac
  printf '%-36s %6.2f s  %9d bytes  same as lim log: %s\n' "$f" "$(echo "$e - $s" | bc)" "$(stat -c %s "$T/out")" "$same"
done
grep VmHWM "/proc/$pid/status"
