#!/usr/bin/env bash
# lim verify vs evmctl ima_measurement on the same 200,000-entry list and PCRs (sha1 and
# sha256 banks; ima-ng, unsigned ima-sig, ima-buf, violations: no local-file work for
# evmctl), interleaved. Run from the repository root after building:
#   bench/verify_vs_evmctl.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-11}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
build/bench/lim_make_list "$dir" 200000
LIM=build/src/cli/lim
"$LIM" verify "$dir/list" --pcrs "$dir/pcrs.json" >/dev/null
evmctl ima_measurement --ignore-violations --pcrs "sha1,$dir/pcrs-sha1.txt" --pcrs "sha256,$dir/pcrs-sha256.txt" \
  "$dir/list" >/dev/null 2>&1
bench/interleave.sh "$rounds" \
  "evmctl ima_measurement=evmctl ima_measurement --ignore-violations --pcrs sha1,$dir/pcrs-sha1.txt --pcrs sha256,$dir/pcrs-sha256.txt $dir/list" \
  "lim verify (2 cores)=$LIM verify $dir/list --pcrs $dir/pcrs.json" \
  "lim verify --single-thread=$LIM verify $dir/list --pcrs $dir/pcrs.json --single-thread"
