#!/usr/bin/env bash
# The cost of a first appraisal (what limd does once per file before its verdict is
# cached, and the kernel's ima_appraise_measurement: read the file, hash it, verify the
# security.ima signature) against openssl doing the same work on the same files:
#   lim appraise          `lim appraise -q --imasig --keys CERT` on all N files, one process
#                         (ima::AppraiseFile: the same read + hash + verify limd's Appraiser does)
#   lim appraise ×N       one `lim appraise` process per file (process start-up as openssl pays it)
#   openssl dgst+pkeyutl  per file `openssl dgst -sha256 -binary` then `openssl pkeyutl -verify`
#                         of the signature taken from security.ima (two processes per file)
# for RSA-2048 and ECDSA P-256 keys made with openssl, files signed with `evmctl ima_sign -a
# sha256`, sizes 4 KiB, 1 MiB and 64 MiB (N files each: 8, 8, 2), page cache warm (every
# file read once before timing: the disk is not what is compared). Interleaved rounds
# (bench/interleave.sh: medians, min–max, ratio to the first row). The files live in a
# directory on the current filesystem (or $DIR): xattrs needed, no fanotify, no mount.
# Needs root (security.ima), evmctl, openssl. Not run by CI (.ci/run): it only measures.
# Usage: bench/appraise_first.sh [ROUNDS] (default 7).  LIM=build/src/cli/lim
set -euo pipefail
rounds=${1:-7}
here=$(cd "$(dirname "$0")" && pwd)
lim=${LIM:-$here/../build/src/cli/lim}
[ -x "$lim" ] || { echo "build first: ninja -C build lim" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (security.ima)" >&2; exit 2; }
command -v evmctl >/dev/null || { echo "evmctl missing (scripts/deps.sh)" >&2; exit 2; }
W=$(mktemp -d "${DIR:-/tmp}/lim-appraise-first.XXXXXX")
trap 'rm -rf "$W"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/rsa.key" -out "$W/rsa.pem" -subj /CN=bench-rsa -days 2 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$W/ec.key" -out "$W/ec.pem" \
  -subj /CN=bench-ec -days 2 2>/dev/null
for k in rsa ec; do openssl x509 -in "$W/$k.pem" -pubkey -noout >"$W/$k.pub"; done

# The openssl side: digest, then verify the v2 signature (security.ima = 03 02 <hash algo>
# <keyid:4> <size:2> <signature>: the signature starts at byte 9) over that digest.
cat >"$W/openssl_verify.sh" <<'EOF'
#!/usr/bin/env bash
# openssl_verify.sh PUBKEY FILE...: per file, openssl dgst + openssl pkeyutl -verify.
set -euo pipefail
pub=$1
shift
for f in "$@"; do
  openssl dgst -sha256 -binary "$f" >"$f.dgst"
  openssl pkeyutl -verify -pubin -inkey "$pub" -pkeyopt digest:sha256 -in "$f.dgst" -sigfile "$f.sig" >/dev/null
done
EOF
cat >"$W/lim_each.sh" <<EOF
#!/usr/bin/env bash
# lim_each.sh CERT FILE...: one lim appraise process per file.
set -euo pipefail
cert=\$1
shift
for f in "\$@"; do "$lim" appraise -q --imasig --keys "\$cert" "\$f" >/dev/null; done
EOF
chmod +x "$W/openssl_verify.sh" "$W/lim_each.sh"

declare -A count=([4k]=8 [1m]=8 [64m]=2) bytes=([4k]=4096 [1m]=1048576 [64m]=67108864)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in rsa ec; do
  for s in 4k 1m 64m; do
    d="$W/$k-$s"
    mkdir "$d"
    files=()
    for ((i = 0; i < count[$s]; i++)); do
      f="$d/f$i"
      head -c "${bytes[$s]}" /dev/urandom >"$f"
      evmctl ima_sign -a sha256 --key "$W/$k.key" "$f" >/dev/null 2>&1
      # The signature alone, for pkeyutl (the value starts 0x03 0x02; hex from getfattr).
      getfattr --absolute-names -n security.ima -e hex "$f" | sed -n 's/^security.ima=0x//p' | cut -c19- | xxd -r -p >"$f.sig"
      files+=("$f")
    done
    cat "${files[@]}" >/dev/null  # page cache warm
    # Both sides must pass before anything is timed.
    "$lim" appraise -q --imasig --keys "$W/$k.pem" "${files[@]}" >/dev/null ||
      { echo "lim appraise rejected the $k $s files" >&2; exit 1; }
    "$W/openssl_verify.sh" "$W/$k.pub" "${files[@]}" || { echo "openssl rejected the $k $s signatures" >&2; exit 1; }
    echo
    echo "### $k, ${count[$s]} files of $s"
    "$here/interleave.sh" "$rounds" \
      "openssl dgst+pkeyutl=$W/openssl_verify.sh $W/$k.pub ${files[*]}" \
      "lim appraise ×N=$W/lim_each.sh $W/$k.pem ${files[*]}" \
      "lim appraise=$lim appraise -q --imasig --keys $W/$k.pem ${files[*]}"
  done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
