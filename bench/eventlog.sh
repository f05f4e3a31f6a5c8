#!/usr/bin/env bash
# Benchmark: `lim eventlog --format yaml` against `tpm2_eventlog` (tpm2-tools) on the same
# large crypto-agile event log, both writing to /dev/null (hyperfine --output=null).
#
# The log is generated here: the Spec ID header of tpm2-tools' GCE Ubuntu 21.04 fixture
# followed by its 111 events repeated until there are 15,000 events (~4.5 MB).
# To keep the comparison fair, rounds alternate between the tools (ROUNDS hyperfine runs,
# each timing every command RUNS times), and the medians of all runs are reported.
#
# Usage: bench/eventlog.sh            (after building into build/)
#        LIM=path/to/lim EVENTS=15000 ROUNDS=5 RUNS=5 bench/eventlog.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LIM=${LIM:-build/src/cli/lim}
FIXTURES=${LIM_FIXTURES:-../shared/fixtures}
SRC=$FIXTURES/tpm2-tools/test/integration/fixtures/event-gce-ubuntu-2104-log.bin
EVENTS=${EVENTS:-15000}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG=$WORK/big-eventlog.bin

python3 - "$SRC" "$LOG" "$EVENTS" <<'PY'
import struct, sys
src, dst, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = open(src, 'rb').read()
size = struct.unpack_from('<I', d, 28)[0]
head_end = 32 + size
spec = d[32:head_end]
n = struct.unpack_from('<I', spec, 24)[0]
sizes = {}
for i in range(n):
    alg, sz = struct.unpack_from('<HH', spec, 28 + 4 * i)
    sizes[alg] = sz
events, off = [], head_end
while off < len(d):
    start = off
    _, _, count = struct.unpack_from('<III', d, off)
    off += 12
    for _ in range(count):
        alg = struct.unpack_from('<H', d, off)[0]
        off += 2 + sizes[alg]
    off += 4 + struct.unpack_from('<I', d, off)[0]
    events.append(d[start:off])
out = bytearray(d[:head_end])
for i in range(want):
    out += events[i % len(events)]
open(dst, 'wb').write(out)
print(f"generated {dst}: {want} events, {len(out)} bytes")
PY

# Same content check: with tpm2_eventlog's defaults (--eventlog-version 1, device paths as
# hex) lim's YAML equals tpm2_eventlog's except that lim escapes '"' inside strings.
"$LIM" eventlog --format yaml --eventlog-version 1 --raw-device-paths "$LOG" >"$WORK/lim.yaml" 2>/dev/null || true
tpm2_eventlog "$LOG" >"$WORK/tpm2.yaml" 2>/dev/null 2>&1
if diff <(sed 's/\\"/"/g' "$WORK/lim.yaml") "$WORK/tpm2.yaml" >/dev/null; then
  echo "outputs identical (modulo lim's \\\" escaping): $(wc -c <"$WORK/tpm2.yaml") bytes"
else
  echo "WARNING: outputs differ" >&2
fi

for r in $(seq 1 "$ROUNDS"); do
  hyperfine -N --output=null --warmup 2 --runs "$RUNS" --export-json "$WORK/round$r.json" \
    "$LIM eventlog --format yaml --eventlog-version 1 --raw-device-paths $LOG" \
    "tpm2_eventlog $LOG" \
    "$LIM eventlog --format yaml $LOG" >/dev/null 2>&1
done

python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
times = {}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{work}/round{r}.json"))["results"]:
        times.setdefault(res["command"].split(" /")[0].replace(work, "LOG"), []).extend(res["times"])
med = {}
for cmd, ts in times.items():
    ts_ms = sorted(t * 1000 for t in ts)
    med[cmd] = statistics.median(ts_ms)
    q1, q3 = ts_ms[len(ts_ms) // 4], ts_ms[(3 * len(ts_ms)) // 4]
    print(f"{cmd[:80]:80s} median {med[cmd]:8.1f} ms  IQR {q1:.1f}-{q3:.1f} ms  min {ts_ms[0]:.1f}  n={len(ts_ms)}")
tpm2 = next(v for k, v in med.items() if k.startswith("tpm2_eventlog"))
for k, v in med.items():
    if not k.startswith("tpm2_eventlog"):
        print(f"speed-up vs tpm2_eventlog: {tpm2 / v:5.1f}x  ({k[:70]})")
PY
