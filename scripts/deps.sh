#!/usr/bin/env bash
# Installs every Debian 12 package lim needs to build, test and run. Idempotent; needs root.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libssl-dev openssl libtss2-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libfuse3-dev fuse3 libsqlite3-dev libpq-dev libpcre2-dev
  tpm2-tools swtpm swtpm-tools ima-evm-utils fsverity attr hyperfine bc
  libjemalloc-dev  # lim-verifier's malloc (src/verifier/allocator.h: glibc malloc was a fifth of its CPU under fleet load)
  libbpf-dev  # limd's BPF loader: InodeOpenCounts reads an inode's open counts from the kernel (src/daemon/inode_open_counts.h); clang above compiles the program
  libarchive-dev  # .deb reading in process (src/debs: ar, data.tar.{xz,zst,gz}), `lim policy from-debs`
  libboost-dev  # Boost.Beast/Asio: lim-agent's and the verifier's async mutual-TLS transport (src/net)
  sqlite3  # the shell the store tests use to look at a verifier's SQLite file from another process
  postgresql  # the server the PostgreSQL store tests start privately (initdb in a temp dir; libpq-dev is the client)
  chromium chromium-driver python3-selenium  # the verifier web view's browser test (headless chromium driven by selenium)
  btrfs-progs  # mkfs.btrfs for limd's btrfs test: a btrfs's kernel device is none of its subvolumes' st_dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  echo "deps.sh: installing ${missing[*]}" >&2
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi
