#!/usr/bin/env bash
# `lim policy from-debs` on COUNT .debs (default 1,000) against a shell peer doing the same
# work — every .deb's data.tar decompressed and every regular file hashed with SHA-256, two
# .debs at a time (xargs -P2: the machine has 2 CPUs):
#   peer:  dpkg-deb --fsys-tarfile X.deb | tar -x -C TMPFS-DIR; find … | xargs sha256sum
# and the floor under both: the decompression alone (dpkg-deb --fsys-tarfile X.deb >/dev/null).
# Interleaved rounds (bench/interleave.sh, with CPU time), median and min–max.
# The .debs: the first COUNT of /var/cache/apt/archives (by name) when it holds that many,
# else COUNT packages built here with dpkg-deb (xz, as Debian builds them) from synthetic
# trees of Debian-like shape: a few to a few hundred files per package, sizes log-normal
# around 10 KiB with a tail to megabytes, content half compressible text, half binary-like.
# First, lim's (path, digest) pairs are checked against the peer's sha256sum on every file.
# Usage: bench/debs.sh [BUILD_DIR] [ROUNDS] [COUNT]   (default: build 3 1000; DEBS_SYNTHETIC=1 builds
# the synthetic .debs even when the apt cache has enough)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
rounds=${2:-3}
count=${3:-1000}
lim=$(cd "$build/src/cli" && pwd)/lim
work=$(mktemp -d /tmp/lim-debs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/debs"
cache=/var/cache/apt/archives
if [[ -z ${DEBS_SYNTHETIC:-} && $(find "$cache" -maxdepth 1 -name '*.deb' 2>/dev/null | wc -l) -ge $count ]]; then
  find "$cache" -maxdepth 1 -name '*.deb' | sort | sed -n "1,${count}p" | while read -r f; do ln -s "$f" "$work/debs/"; done
  source="the first $count .debs of $cache"
else
  python3 - "$work/trees" "$count" <<'PY'
import os, random, sys
top, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(16)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
for i in range(count):
    name = "synth%04d" % i
    root = os.path.join(top, name)
    os.makedirs(os.path.join(root, "DEBIAN"))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write("Package: %s\nVersion: 1.%d-1\nArchitecture: amd64\nMaintainer: bench <b@example.org>\n"
                "Description: synthetic package for bench/debs.sh\n" % (name, i))
    for j in range(max(1, int(rng.lognormvariate(3.0, 1.2)))):
        d = os.path.join(root, "usr", rng.choice(["bin", "lib/x86_64-linux-gnu", "share/doc/" + name, "share/" + name]))
        os.makedirs(d, exist_ok=True)
        size = min(int(rng.lognormvariate(9.2, 1.6)), 8 << 20)
        if rng.random() < 0.5:
            data = b" ".join(rng.choice(words) for _ in range(size // 5 + 1))[:size]
        else:  # binary-like: random runs and repeats (compresses about 2:1)
            chunk = rng.randbytes(min(size, 4096) // 2 + 1)
            data = (chunk + bytes(len(chunk))) * (size // (2 * len(chunk)) + 1)
            data = data[:size]
        with open(os.path.join(d, "f%d" % j), "wb") as f:
            f.write(data)
PY
  ls "$work/trees" | xargs -P2 -I{} dpkg-deb --root-owner-group -Zxz -b "$work/trees/{}" "$work/debs/{}.deb" >/dev/null
  rm -rf "$work/trees"
  source="$count synthetic .debs built with dpkg-deb -Zxz"
fi
cat >"$work/peer.sh" <<'SH'
#!/usr/bin/env bash
# One .deb: its files extracted to a tmpfs directory, each hashed, the directory removed.
set -euo pipefail
d=$(mktemp -d /dev/shm/lim-debs-peer.XXXXXX)
trap 'rm -rf "$d"' EXIT
dpkg-deb --fsys-tarfile "$1" | tar -x -C "$d"
cd "$d" && find . -type f -print0 | xargs -0 -r sha256sum
SH
chmod +x "$work/peer.sh"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $(dpkg-deb --version | sed -n 1p); $(tar --version | sed -n 1p)"
echo "debs: $source: $(du -shL "$work/debs" | cut -f1) compressed"

# Same digests: lim's (path, digest) pairs (names as shipped: --merged-usr no) against the peer's.
"$lim" policy from-debs --merged-usr no --keep 1000 "$work/debs" 2>/dev/null | python3 -c '
import json, sys
for path, digests in json.load(sys.stdin)["paths"].items():
    for d in digests:
        print(d + "  " + path)' | sort -u >"$work/lim.sums"
find "$work/debs/" -name '*.deb' -print0 | xargs -0 -n1 -P2 "$work/peer.sh" | sed 's|  \./|  /|' | sort -u >"$work/peer.sums"
if cmp -s "$work/lim.sums" "$work/peer.sums"; then
  echo "digests: lim = dpkg-deb | tar | sha256sum on all $(wc -l <"$work/lim.sums") (path, digest) pairs"
else
  echo "digests: DIFFER ($(diff "$work/lim.sums" "$work/peer.sums" | grep -c '^[<>]') lines)"
fi
rm -f "$work/lim.sums" "$work/peer.sums"

INTERLEAVE_CPU=1 "$here/interleave.sh" "$rounds" \
  "lim policy from-debs=$lim policy from-debs $work/debs" \
  "dpkg-deb + tar -x + sha256sum, -P2=find $work/debs/ -name '*.deb' -print0 | xargs -0 -n1 -P2 $work/peer.sh" \
  "decompression only (dpkg-deb --fsys-tarfile, -P2)=find $work/debs/ -name '*.deb' -print0 | xargs -0 -n1 -P2 dpkg-deb --fsys-tarfile"
