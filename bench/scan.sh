#!/usr/bin/env bash
# `lim scan` against the shell pipelines people use for the same job, on the same trees
# (read only): the parallel `find | xargs -0 -P2 sha256sum` and `… openssl dgst -sha256`, and
# the serial `find | xargs -0 sha256sum` — interleaved rounds (bench/interleave.sh), median
# and min–max, with a warm page cache and a cold one. "Cold" evicts the tree's file data
# before every run with posix_fadvise(DONTNEED) — only this tree, not the whole machine's
# cache (drop_caches would slow every other job); pages that running programs have mapped
# stay, and so do the directory and inode caches (cold data, warm metadata).
# First, lim's digests are checked against sha256sum's on every file of each tree.
# Usage: bench/scan.sh [BUILD_DIR] [ROUNDS] [TREE…]   (default: build 3 /usr/share /usr/lib/x86_64-linux-gnu)
# LIM_BASELINE=/path/to/an/older/lim adds it as one more command (a change measured against
# the binary before it, in the same interleaved rounds). Commands' CPU time is shown too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))
trees=("$@")
[[ ${#trees[@]} -gt 0 ]] || trees=(/usr/share /usr/lib/x86_64-linux-gnu)
lim=$(cd "$build/src/cli" && pwd)/lim
evict=$(mktemp /tmp/lim-scan-evict.XXXXXX.py)
trap 'rm -f "$evict"' EXIT
cat >"$evict" <<'PY'
import os, sys
for top, dirs, files in os.walk(sys.argv[1]):
    for f in files:
        try:
            fd = os.open(os.path.join(top, f), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
PY
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $(sha256sum --version | head -1); $(openssl version)"
for tree in "${trees[@]}"; do
  files=$(find "$tree" -xdev -type f | wc -l)
  size=$(du -sh --apparent-size "$tree" 2>/dev/null | cut -f1)
  echo
  echo "### $tree: $files regular files, $size"
  # Same digests as sha256sum on every file (names with a newline are escaped by sha256sum
  # and compared as it writes them).
  "$lim" scan -q --xdev --format keylime "$tree" | python3 -c '
import json, sys
d = json.load(sys.stdin)["digests"]
print("\n".join(sorted(v[0] + "  " + (k.replace("\\", "\\\\").replace("\n", "\\n")) for k, v in d.items())))' >/tmp/lim-scan-bench.lim || true
  find "$tree" -xdev -type f -print0 | xargs -0 sha256sum 2>/dev/null | sed 's/^\\//' | sort >/tmp/lim-scan-bench.sum || true
  if cmp -s <(sort /tmp/lim-scan-bench.lim) /tmp/lim-scan-bench.sum; then
    echo "digests: lim scan = sha256sum on all $(wc -l </tmp/lim-scan-bench.sum) files"
  else
    echo "digests: DIFFER from sha256sum ($(diff <(sort /tmp/lim-scan-bench.lim) /tmp/lim-scan-bench.sum | grep -c '^[<>]') lines)"
  fi
  rm -f /tmp/lim-scan-bench.lim /tmp/lim-scan-bench.sum
  cmds=("lim scan=$lim scan -q --xdev $tree"
        "xargs -P2 sha256sum=find $tree -xdev -type f -print0 | xargs -0 -P2 sha256sum"
        "xargs -P2 openssl dgst=find $tree -xdev -type f -print0 | xargs -0 -P2 openssl dgst -sha256"
        "xargs sha256sum (serial)=find $tree -xdev -type f -print0 | xargs -0 sha256sum")
  if [[ -n ${LIM_BASELINE:-} ]]; then cmds+=("lim scan (baseline $LIM_BASELINE)=$LIM_BASELINE scan -q --xdev $tree"); fi
  echo "warm page cache:"
  "$lim" scan -q --xdev "$tree" >/dev/null || true  # prime
  INTERLEAVE_CPU=1 "$here/interleave.sh" "$rounds" "${cmds[@]}"
  echo "cold page cache (the tree's data evicted before every run):"
  INTERLEAVE_CPU=1 INTERLEAVE_PREPARE="python3 $evict $tree" "$here/interleave.sh" "$rounds" "${cmds[@]}"
done
