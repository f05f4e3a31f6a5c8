#!/usr/bin/env bash
# TPM layer benchmark driver: runs build/bench/tpm_bench (its own private swtpm) with
# repetitions, interleaved with `openssl speed -seconds 3 ecdsap256` (verify/s) in the same
# run, and prints medians, spread and the ratios the TPM issue asks for.
# Usage: bench/tpm.sh [BUILD_DIR] [REPETITIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
REPS=${2:-3}
BIN="$BUILD/bench/tpm_bench"
[ -x "$BIN" ] || { echo "build $BIN first (ninja -C $BUILD tpm_bench)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 1; i <= REPS; i++)); do
  "$BIN" --benchmark_format=json --benchmark_out="$tmp/bench.$i.json" --benchmark_out_format=json >/dev/null 2>"$tmp/err" \
    || { cat "$tmp/err" >&2; exit 1; }
  openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/nistp256/ {print $NF}' >"$tmp/openssl.$i"
done
python3 - "$tmp" "$REPS" <<'PY'
import json, statistics, sys
tmp, reps = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{tmp}/bench.{i}.json")) for i in range(1, reps + 1)]
def times(name):
    out = []
    for r in runs:
        for b in r["benchmarks"]:
            if b["name"].startswith(name + "/"):
                out.append(b["real_time"])
    return out
def rate(name):
    return [b["checks/s"] for r in runs for b in r["benchmarks"] if b["name"].startswith(name + "/")]
def show(label, xs, unit):
    print(f"{label:44s} median {statistics.median(xs):9.1f} {unit}  (min {min(xs):.1f}, max {max(xs):.1f}, n={len(xs)})")
    return statistics.median(xs)
raw = show("extend, raw Esys_PCR_Extend (held)", times("BM_RawEsysExtendHeld"), "us")
lim = show("extend, lim Tpm::Extend (held burst)", times("BM_LimExtendHeld"), "us")
rawr = show("extend + reconnect, raw TCTI+ESAPI setup", times("BM_RawEsysExtendReconnect"), "us")
limr = show("extend + reconnect, lim (idle_release=0)", times("BM_LimExtendReconnect"), "us")
q = show("quote checks/s, lim CheckQuote (ECDSA P-256)", rate("BM_CheckQuoteEcdsaP256"), "/s")
o = show("openssl speed ecdsap256 verify/s", [float(open(f"{tmp}/openssl.{i}").read()) for i in range(1, reps + 1)], "/s")
print(f"extend: lim / raw floor = {lim / raw:.2f}x;  reconnect: lim / raw = {limr / rawr:.2f}x")
print(f"quote checks: lim / openssl verify = {q / o:.2f}x (target >= 0.5x)")
PY
