#!/usr/bin/env bash
# lim's main job for a new user: installs what is needed, builds lim, and shows a real
# measurement list with its integrity checked.
#   - If this kernel runs IMA, the live list is shown, replayed and verified against the TPM's
#     PCR 10 when tpm2_pcrread can read it.
#   - Otherwise the real 362-entry list from the IBM TSS fixtures is shown and verified
#     against the PCR 10 values captured with it (limd, which measures this host itself, is
#     the next milestone).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target lim >/dev/null
LIM=build/src/cli/lim
KERNEL_LIST=/sys/kernel/security/ima/binary_runtime_measurements
# securityfs files report size 0: look for a first byte instead.
if [ -r "$KERNEL_LIST" ] && [ "$(head -c1 "$KERNEL_LIST" 2>/dev/null | wc -c)" -gt 0 ]; then
  echo "== this host's IMA measurement list ($KERNEL_LIST)"
  "$LIM" log "$KERNEL_LIST" --format table | tail -n 25
  echo "== replayed PCRs"
  "$LIM" replay "$KERNEL_LIST" --bank sha1 --bank sha256
  if tpm2_pcrread sha1:10+sha256:10 >/tmp/lim-pcrs.$$ 2>/dev/null; then
    echo "== verified against the TPM"
    "$LIM" verify "$KERNEL_LIST" --pcrs /tmp/lim-pcrs.$$ --allow-tail || true
  fi
  rm -f /tmp/lim-pcrs.$$
  exit 0
fi
FIX=../shared/fixtures/ibmtss/utils
if [ ! -f "$FIX/sha256.log" ]; then
  echo "no kernel IMA list on this host and no fixtures beside the repository" >&2
  exit 1
fi
echo "== no kernel IMA list here: a real list from a vTPM boot (IBM TSS fixture), last 15 entries"
"$LIM" log "$FIX/sha256.log" --format table | tail -n 15
echo "== kernel-format ASCII (first 3 lines)"
("$LIM" log "$FIX/sha256.log" || true) | head -n 3  # lim stops quietly when head closes the pipe
echo "== PCR 10 replayed in four banks"
"$LIM" replay "$FIX/sha256.log" --bank sha1 --bank sha256 --bank sha384 --bank sha512
cat >/tmp/lim-pcrs.$$.json <<'JSON'
{"sha1":{"10":"9be6bac02bf18d09d17e726c2df00bca4e8831ea"},"sha256":{"10":"7fac48c81837d6d29046008aef0cdad8c2745cc98c3340cbba9bfdf39b4124b8"}}
JSON
echo "== verified against the PCR 10 values the TPM reported for that boot"
"$LIM" verify "$FIX/sha256.log" --pcrs /tmp/lim-pcrs.$$.json
rm -f /tmp/lim-pcrs.$$.json
