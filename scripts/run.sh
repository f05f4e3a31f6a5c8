#!/usr/bin/env bash
# lim's main job for a new user (as root, non-interactive): installs what is needed, builds
# lim and limd, starts swtpm on a root-only unix socket when this host has no TPM, starts
# limd in the background with the tcb policy, and shows the live integrated log
# (`lim log --follow`: the firmware's boot log when readable, then every IMA entry limd
# appends). Then the remote-attestation chain on this host (measure → quote → verify): a local
# CA and ECDSA P-256 certificates under the state dir, lim-agent (beside limd, sharing the
# TPM) and a local lim-verifier (SQLite store, loopback only), a policy learnt from limd's
# list, the host enrolled and its first attested round shown (`lim verifier show`). A second
# invocation finds the running limd, agent and verifier (their state) and only shows the log.
#
# Environment (all optional):
#   LIM_WATCH="/srv /home"   mount roots limd watches (space-separated); default: limd's
#                            default filesystem set (ext4, xfs, btrfs, tmpfs, vfat, … in
#                            every mount namespace) including / (--allow-root-fs)
#   LIM_FOLLOW_SECONDS=N     stop showing the log after N seconds (default: until Ctrl-C;
#                            limd keeps running either way)
#   LIM_STATE=DIR            limd's state directory (default /var/lib/lim); limd logs to
#                            DIR/limd.log
#   LIM_CONTROL_SOCKET=PATH  limd's control socket (default /run/lim/limd.sock)
#   LIM_SECURITYFS=DIR       where limd mounts the kernel's IMA files (FUSE; default
#                            /run/lim/securityfs; none: no view)
#   LIM_TCTI=TCTI            use this TPM (default: /dev/tpmrm0 if present, else swtpm)
#   LIM_USE_SWTPM=1          use swtpm even when /dev/tpmrm0 exists
#   LIM_SWTPM_DIR=DIR        swtpm state and socket under DIR (default /var/lib/lim/swtpm
#                            and /run/lim/swtpm)
#   LIM_BUILD_DIR=DIR        build tree (default build)
#   LIM_LIMD_TIMEOUT=N       run limd, lim-agent and lim-verifier under `timeout N` (tests:
#                            processes that outlive them)
#   LIM_ATTEST=0             do not start lim-agent and lim-verifier
#   LIM_AGENT_PORT=N         lim-agent's port on 127.0.0.1 (default 8891; 0: any free one)
#   LIM_VERIFIER_PORT=N      lim-verifier's REST port on 127.0.0.1 (default 8892; 0: any)
#   LIM_AGENT_ID=NAME        this host's name at the verifier (default: the host name)
#   LIM_EK_CA_DIR=DIR        EK certificate CAs (TPM makers) the verifier checks the EK
#                            against; without it, or with swtpm, enrollment is trust-on-first-use
# Stop limd with: kill "$(cat /var/lib/lim/limd.ready)"   (swtpm: lim tpm swtpm stop;
# the agent and verifier: kill "$(cat /var/lib/lim/attest/agent.pid)" and verifier.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "run.sh: run as root (limd needs fanotify permission events and the TPM)" >&2
  exit 1
fi
STATE=${LIM_STATE:-/var/lib/lim}
SOCK=${LIM_CONTROL_SOCKET:-/run/lim/limd.sock}
SFS=${LIM_SECURITYFS:-/run/lim/securityfs}
BUILD=${LIM_BUILD_DIR:-build}

scripts/deps.sh
if [ ! -f "$BUILD/build.ninja" ]; then
  echo "== configuring and building lim and limd in $BUILD (minutes on the first run)" >&2
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
build_log=$(mktemp)
if ! cmake --build "$BUILD" -j"$(nproc)" --target lim limd lim-agent lim-verifier >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  exit 1
fi
rm -f "$build_log"
LIM=$(realpath "$BUILD/src/cli/lim")
LIMD=$(realpath "$BUILD/src/daemon/limd")
AGENT=$(realpath "$BUILD/src/agent/lim-agent")
VERIFIER=$(realpath "$BUILD/src/verifier/lim-verifier")

# Is a limd already running on this state? (control socket first, then the state's lock)
if "$LIM" status --state "$STATE" --socket "$SOCK" >/dev/null 2>&1; then
  echo "== limd already runs on $STATE (pid $(cat "$STATE/limd.ready" 2>/dev/null || echo ?)): showing its log" >&2
else
  # The TPM: a given TCTI, the kernel's resource manager, or the embedded swtpm.
  TCTI=${LIM_TCTI:-}
  if [ -z "$TCTI" ] && [ -e /dev/tpmrm0 ] && [ -z "${LIM_USE_SWTPM:-}" ]; then
    TCTI=device:/dev/tpmrm0
  fi
  if [ -z "$TCTI" ]; then
    SWTPM_ARGS=()
    if [ -n "${LIM_SWTPM_DIR:-}" ]; then
      SWTPM_ARGS=(--state "$LIM_SWTPM_DIR/state" --run-dir "$LIM_SWTPM_DIR/run")
    fi
    echo "== no TPM device: starting swtpm (an emulator: no root of trust against root)" >&2
    swtpm_out=$("$LIM" tpm swtpm start "${SWTPM_ARGS[@]}")
    TCTI=$(sed -n 's/^tcti: //p' <<<"$swtpm_out")
    [ -n "$TCTI" ] || { echo "run.sh: swtpm did not start: $swtpm_out" >&2; exit 1; }
  fi
  WATCH=()
  if [ -n "${LIM_WATCH:-}" ]; then
    for m in $LIM_WATCH; do WATCH+=(--watch "$m"); done
  else
    WATCH=(--allow-root-fs)  # no --watch: limd's default filesystem set, / included
  fi
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  rm -f "$STATE/limd.ready"
  WRAP=()
  [ -n "${LIM_LIMD_TIMEOUT:-}" ] && WRAP=(timeout -k 2 "$LIM_LIMD_TIMEOUT")
  echo "== starting limd (tcb policy, TPM $TCTI, ${LIM_WATCH:+watching }${LIM_WATCH:-default filesystem set}, state $STATE, log $STATE/limd.log)" >&2
  # Detached: its own session, no terminal, its own log; it outlives this script.
  setsid "${WRAP[@]}" "$LIMD" --state "$STATE" --tpm "$TCTI" --builtin tcb --control-socket "$SOCK" \
    --securityfs "$SFS" --log-file "$STATE/limd.log" "${WATCH[@]}" </dev/null >>"$STATE/limd.log" 2>&1 &
  limd_job=$!
  echo "$TCTI" >"$STATE/tpm.tcti"  # the agent's TPM, also on a later run that finds limd
  for _ in $(seq 1 300); do
    [ -s "$STATE/limd.ready" ] && break
    if ! kill -0 "$limd_job" 2>/dev/null; then
      echo "run.sh: limd did not start; the end of $STATE/limd.log:" >&2
      tail -n 20 "$STATE/limd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -s "$STATE/limd.ready" ] || { echo "run.sh: limd not ready after 30 s (see $STATE/limd.log)" >&2; exit 1; }
  echo "== limd running, pid $(cat "$STATE/limd.ready")" >&2
  if [ "$SFS" != none ] && mountpoint -q "$SFS"; then
    echo "== the kernel's IMA files, served by limd: $SFS/ima/ (evmctl, keylime read them there)" >&2
  fi
fi
"$LIM" status --state "$STATE" --socket "$SOCK" >&2 || true

# Remote attestation on this host: lim-agent serves quotes and the list, a local lim-verifier
# checks them every 2 s against a policy learnt from the list as it is now.
if [ "${LIM_ATTEST:-1}" != 0 ]; then
  A=$STATE/attest
  mkdir -p "$A"
  chmod 700 "$A"
  AGENT_ID=${LIM_AGENT_ID:-$(hostname)}
  TLS=(--cert "$A/operator.pem" --key "$A/operator.key" --ca "$A/ca.pem")
  # The PKI: a local CA and ECDSA P-256 leaves (agent, verifier, operator = the lim CLI), made
  # once; keys 0600 in a 0700 directory.
  if [ ! -s "$A/ca.pem" ] || [ ! -s "$A/agent.pem" ] || [ ! -s "$A/verifier.pem" ] || [ ! -s "$A/operator.pem" ]; then
    echo "== making a local CA and ECDSA P-256 certificates for lim-agent and lim-verifier in $A" >&2
    (
      umask 077
      cd "$A"
      key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
      key ca
      openssl req -x509 -new -key ca.key -subj "/CN=lim local CA" -days 3650 -out ca.pem \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
      for leaf in agent verifier operator; do
        cn=lim-$leaf
        [ "$leaf" = agent ] && cn=$AGENT_ID
        key "$leaf"
        openssl req -new -key "$leaf.key" -subj "/CN=$cn" -out "$leaf.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$leaf.ext"
        openssl x509 -req -in "$leaf.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
          -extfile "$leaf.ext" -out "$leaf.pem" 2>/dev/null
        rm -f "$leaf.csr" "$leaf.ext"
      done
    ) || { echo "run.sh: openssl could not make the certificates in $A" >&2; exit 1; }
  fi
  chmod 600 "$A"/*.key "$A"/*.pem

  # running NAME BINARY: is $A/NAME.pid a live process of BINARY?
  running() {
    local pid exe
    pid=$(cat "$A/$1.pid" 2>/dev/null) || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$2" ]  # (deleted): rebuilt since it started, still the one running
  }
  # start NAME LOG ARGS…: detached like limd; writes NAME.pid (the program's own pid, not a
  # timeout wrapper's) and NAME.addr (from its "listening on HOST:PORT" line).
  start() {
    local name=$1 log=$2 job pid addr= seen
    shift 2
    rm -f "$A/$name.pid" "$A/$name.addr"
    seen=0  # the log is appended to: only new lines count
    [ -f "$log" ] && seen=$(wc -l <"$log")
    setsid "${WRAP[@]}" "$@" </dev/null >>"$log" 2>&1 &
    job=$!
    pid=$job
    for _ in $(seq 1 300); do
      if [ ${#WRAP[@]} -gt 0 ]; then pid=$(awk '{print $1}' "/proc/$job/task/$job/children" 2>/dev/null || true); fi
      addr=$(tail -n +$((seen + 1)) "$log" | sed -n "s/^$name: .*listening on \([0-9.]*:[0-9]*\)\$/\1/p" | tail -n 1)
      [ -n "$addr" ] && [ -n "$pid" ] && break
      kill -0 "$job" 2>/dev/null || break
      sleep 0.1
    done
    if [ -z "$addr" ] || [ -z "$pid" ]; then
      echo "run.sh: $name did not start; the end of $log:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    echo "$pid" >"$A/$name.pid"
    echo "$addr" >"$A/$name.addr"
    echo "== $name running, pid $pid, on $addr (log $log)" >&2
  }
  WRAP=()
  [ -n "${LIM_LIMD_TIMEOUT:-}" ] && WRAP=(timeout -k 2 "$LIM_LIMD_TIMEOUT")

  if running verifier "$VERIFIER"; then
    echo "== lim-verifier already runs (pid $(cat "$A/verifier.pid"), $(cat "$A/verifier.addr"))" >&2
  else
    EKCA=()
    [ -n "${LIM_EK_CA_DIR:-}" ] && EKCA=(--ek-ca-dir "$LIM_EK_CA_DIR")
    echo "== starting lim-verifier (loopback only, store $A/verifier.db)" >&2
    start lim-verifier "$A/verifier.log" "$VERIFIER" --store "sqlite:$A/verifier.db" \
      --listen "127.0.0.1:${LIM_VERIFIER_PORT:-8892}" --cert "$A/verifier.pem" --key "$A/verifier.key" \
      --ca "$A/ca.pem" --interval-ms 2000 "${EKCA[@]}"
    mv "$A/lim-verifier.pid" "$A/verifier.pid"
    mv "$A/lim-verifier.addr" "$A/verifier.addr"
  fi
  VADDR=$(cat "$A/verifier.addr")

  if running agent "$AGENT"; then
    echo "== lim-agent already runs (pid $(cat "$A/agent.pid"), $(cat "$A/agent.addr"))" >&2
  else
    TCTI=${LIM_TCTI:-$(cat "$STATE/tpm.tcti" 2>/dev/null || true)}
    [ -n "$TCTI" ] || { echo "run.sh: which TPM does limd use? set LIM_TCTI" >&2; exit 1; }
    # The firmware log matches a hardware TPM's PCRs 0–7, never swtpm's.
    EVLOG=none
    BOOTLOG=/sys/kernel/security/tpm0/binary_bios_measurements
    if [ "${TCTI#swtpm}" = "$TCTI" ] && [ -r "$BOOTLOG" ]; then EVLOG=$BOOTLOG; fi
    echo "== starting lim-agent (TPM $TCTI shared with limd, 127.0.0.1 only, AK in $A/ak)" >&2
    start lim-agent "$A/agent.log" "$AGENT" --config /dev/null --cert "$A/agent.pem" --key "$A/agent.key" \
      --ca "$A/ca.pem" --agent-id "$AGENT_ID" --verifier-cn lim-verifier --listen 127.0.0.1 \
      --port "${LIM_AGENT_PORT:-8891}" --tpm "$TCTI" --ak-dir "$A/ak" \
      --list "$STATE/binary_runtime_measurements" --event-log "$EVLOG" --control-socket "$SOCK"
    mv "$A/lim-agent.pid" "$A/agent.pid"
    mv "$A/lim-agent.addr" "$A/agent.addr"
  fi
  AADDR=$(cat "$A/agent.addr")

  V=("$LIM" verifier)
  TLS+=(--verifier "$VADDR")
  enrolled=$("${V[@]}" list "${TLS[@]}" 2>/dev/null | awk -v id="$AGENT_ID" '$1 == id' || true)
  if [ -n "$enrolled" ] && ! grep -q " address=$AADDR " <<<"$enrolled " ; then
    # The agent came back on another port (port 0): enroll it again there.
    "${V[@]}" remove "$AGENT_ID" "${TLS[@]}" >/dev/null 2>&1 || true
    enrolled=
  fi
  if [ -z "$enrolled" ]; then
    echo "== learning a policy from limd's list as it is now (every file measured so far is allowed)" >&2
    "$LIM" policy learn "$STATE/binary_runtime_measurements" -o "$A/policy.json"
    "${V[@]}" policy add host "$A/policy.json" "${TLS[@]}" >&2
    echo "== enrolling $AGENT_ID ($AADDR) at lim-verifier" >&2
    if ! "${V[@]}" add "$AGENT_ID" "$AADDR" --policy host "${TLS[@]}" >"$A/enroll.out" 2>&1; then
      cat "$A/enroll.out" >&2
      if ! grep -q "EK certificate" "$A/enroll.out"; then exit 1; fi
      echo "== TRUST ON FIRST USE: this TPM's EK has no certificate the verifier can check (the embedded" >&2
      echo "   swtpm has none; a hardware TPM needs LIM_EK_CA_DIR), so nothing proves the AK lives in a" >&2
      echo "   real TPM. Enrolling with --tofu; the verifier marks this host 'tofu'." >&2
      "${V[@]}" add "$AGENT_ID" "$AADDR" --tofu --policy host "${TLS[@]}" >&2
    else
      cat "$A/enroll.out" >&2
    fi
  fi
  echo "== waiting for the first attested round (quote + list replay + policy)" >&2
  attested=
  for _ in $(seq 1 150); do
    if "${V[@]}" show "$AGENT_ID" "${TLS[@]}" >"$A/show.out" 2>&1; then attested=1; break; fi
    sleep 0.2
  done
  echo "== lim verifier show $AGENT_ID --verifier $VADDR --cert $A/operator.pem --key $A/operator.key --ca $A/ca.pem" >&2
  cat "$A/show.out" >&2
  [ -n "$attested" ] || echo "run.sh: $AGENT_ID is not attested after 30 s (see $A/verifier.log)" >&2
fi

# The live integrated log: the boot log (when this kernel exposes it) and limd's list.
FOLLOW=("$LIM" log --format table --follow)
BOOT=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -r "$BOOT" ] && [ "$(head -c1 "$BOOT" 2>/dev/null | wc -c)" -gt 0 ]; then
  FOLLOW+=(--boot-log "$BOOT")
fi
FOLLOW+=("$STATE/binary_runtime_measurements")
echo "== the integrated log (${LIM_FOLLOW_SECONDS:+for $LIM_FOLLOW_SECONDS s; }Ctrl-C stops the view, not limd)" >&2
if [ -n "${LIM_FOLLOW_SECONDS:-}" ]; then
  rc=0
  timeout -s INT "$LIM_FOLLOW_SECONDS" "${FOLLOW[@]}" || rc=$?
  [ "$rc" = 124 ] || [ "$rc" = 0 ] || exit "$rc"
else
  exec "${FOLLOW[@]}"
fi
