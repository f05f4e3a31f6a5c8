#!/bin/sh
# The fleet load runs of docs/performance.md "Fleet load (issue 15)": simulated agents
# (build/bench/lim_fleet_load: software TPM, ECC P-256 AKs, real quotes over a fresh nonce,
# lists growing by 3 entries a round, 2 in 1000 of them not allowed) against lim-verifier
# processes on SQLite and on a private PostgreSQL cluster, and the list-length check.
#
#   bench/fleet_load.sh [AGENTS] [DURATION_S]      (defaults 10000 and 60)
#   PART=sqlite|pg|length|bench bench/fleet_load.sh …   (one part only)
#
# Needs: cmake --build build --target lim-verifier lim_fleet_load attest_bench; for the
# PostgreSQL part the postgresql package (scripts/deps.sh). Results (text and JSON) go to
# $OUT (default /tmp/lim_fleet_load.results). Run as root, the cluster runs as postgres.
set -eu
AGENTS=${1:-10000}
DURATION=${2:-60}
PART=${PART:-all}
OUT=${OUT:-/tmp/lim_fleet_load.results}
B=${BUILD:-build}
mkdir -p "$OUT"
GEN="$B/bench/lim_fleet_load --verifier $B/src/verifier/lim-verifier --threads 64 --verifier-threads 4 --pull 100"

run() {  # NAME ARGS…: one run, its report on stdout and in $OUT/NAME.{txt,json}
  name=$1
  shift
  echo "== $name: $*"
  uptime
  # shellcheck disable=SC2086
  $GEN "$@" --json "$OUT/$name.json" | tee "$OUT/$name.txt"
}

if [ "$PART" = all ] || [ "$PART" = sqlite ]; then
  run sqlite-1 --agents "$AGENTS" --duration-s "$DURATION" --warmup-s 300
fi

if [ "$PART" = all ] || [ "$PART" = length ]; then
  # The same fleet with every list 1,000 entries long, then 1,000,000: the verifier keeps
  # PCR 10 at the last verified entry, so its CPU per round must not change.
  run length-1k --agents 1000 --duration-s 30 --list-length 1000
  run length-1m --agents 1000 --duration-s 30 --list-length 1000000
fi

if [ "$PART" = all ] || [ "$PART" = pg ]; then
  BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
  PGDIR=$(mktemp -d /tmp/lim_fleet_pg.XXXXXX)
  chmod 0755 "$PGDIR"
  AS=""
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PGDIR"
    AS="runuser -u postgres --"
  fi
  $AS "$BIN/initdb" -D "$PGDIR/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  # A unix socket in PGDIR only (no TCP port); fsync on, as a real server (-F would be off).
  $AS "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 30 -o "-k $PGDIR -h '' -c max_connections=50" start >/dev/null
  trap '$AS "$BIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null; rm -rf "$PGDIR"' EXIT
  $AS "$BIN/psql" -h "$PGDIR" -U postgres -qc "CREATE DATABASE fleet1" postgres
  $AS "$BIN/psql" -h "$PGDIR" -U postgres -qc "CREATE DATABASE fleet2" postgres
  run pg-1 --agents "$AGENTS" --duration-s "$DURATION" --warmup-s "${PG_WARMUP:-120}" --verifiers 1 \
    --store "postgresql:///fleet1?host=$PGDIR&user=postgres"
  run pg-2 --agents "$AGENTS" --duration-s "$DURATION" --warmup-s "${PG_WARMUP:-120}" --verifiers 2 \
    --store "postgresql:///fleet2?host=$PGDIR&user=postgres"
fi

if [ "$PART" = all ] || [ "$PART" = bench ]; then
  uptime
  "$B/bench/attest_bench" --benchmark_filter='BM_VerifyRound|BM_ReplayIncremental' --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true | tee "$OUT/attest_bench.txt"
fi
