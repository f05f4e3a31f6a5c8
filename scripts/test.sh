#!/usr/bin/env bash
# The test command: installs dependencies, builds lim, runs every test (ctest), then runs
# each libFuzzer target briefly. Usage: scripts/test.sh   (as root on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
BUILD=${LIM_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"

# Fuzzers: built with clang in their own tree, each run for a short time on its corpus.
FUZZ_BUILD=${LIM_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$FUZZ_BUILD" -G Ninja -DLIM_BUILD_FUZZ=ON -DLIM_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fuzz_targets=$(for f in fuzz/*_fuzz.cc; do basename "$f" .cc; done)
cmake --build "$FUZZ_BUILD" -j"$(nproc)" --target $fuzz_targets
for name in $fuzz_targets; do
  f="$FUZZ_BUILD/fuzz/$name"
  corpus=$(mktemp -d)
  [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$corpus/"
  # fuzz/corpus/NAME.seeds lists fixture files (relative to ../shared/fixtures) to seed with.
  if [ -f "fuzz/corpus/$name.seeds" ]; then
    while read -r seed; do
      [ -n "$seed" ] && [ -f "../shared/fixtures/$seed" ] && cp "../shared/fixtures/$seed" "$corpus/"
    done <"fuzz/corpus/$name.seeds"
  fi
  echo "fuzz: $name (${LIM_FUZZ_SECONDS:-20}s)"
  # UBSan reports and goes on by default: make undefined behaviour a failure like the rest.
  # A lower rare-feature threshold: libFuzzer's entropic bookkeeping otherwise takes 35–47 %
  # of an execution in the slower targets (docs/fuzzing.md "Speed").
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$f" -max_total_time="${LIM_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 \
    -entropic_feature_frequency_threshold=16 "$corpus" >"$corpus.log" 2>&1 \
    || { tail -40 "$corpus.log"; exit 1; }
  rm -rf "$corpus" "$corpus.log"
done

cd "$BUILD"
ctest --output-on-failure -j"$(nproc)" --timeout 600
