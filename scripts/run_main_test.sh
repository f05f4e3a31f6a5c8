#!/usr/bin/env bash
# Root test (ctest RunMainCommand): runs the README's main command, scripts/run.sh, in a clean
# environment as a new user would (env -i, PATH only, plus knobs that keep it to this test's
# own resources): LIM_WATCH is this test's own tmpfs (never /), LIM_STATE / LIM_SWTPM_DIR /
# LIM_CONTROL_SOCKET are in its temp dir, and the follow view ends after LIM_FOLLOW_SECONDS.
# Checks: limd becomes ready, a program run from the mount shows up in the live log within
# seconds, a second invocation finds that limd and starts none, `lim status` answers over
# the control socket, which refuses a non-root peer; the attestation chain: lim-agent and a
# loopback lim-verifier (ports 0, so nothing collides) started, the host enrolled with trust on
# first use (swtpm has no EK certificate) and shown attested, a second run finding both, the
# PKI root-only. Then limd, the agent, the verifier and swtpm are stopped by their own PIDs and
# the mount goes.
# Usage: scripts/run_main_test.sh BUILD_DIR   (exit 77: skipped)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:?usage: run_main_test.sh BUILD_DIR}")
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (fanotify permission events, mount)"
  exit 77
fi
T=$(mktemp -d /tmp/lim-runmain.XXXXXX)
MNT=$T/mnt STATE=$T/state SW=$T/swtpm SOCK=$T/limd.sock SFS=$T/securityfs
mkdir "$MNT"
mount -t tmpfs -o size=32m limrunmain "$MNT"
limd_pid=
A=$STATE/attest
stop_pid() {  # by its own PID, TERM then KILL
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "$1"
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$(cat "$A/agent.pid" 2>/dev/null)"
  stop_pid "$(cat "$A/verifier.pid" 2>/dev/null)"
  if [ -n "$limd_pid" ] && kill -0 "$limd_pid" 2>/dev/null; then
    kill "$limd_pid"
    for _ in $(seq 1 50); do kill -0 "$limd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$limd_pid" 2>/dev/null && kill -9 "$limd_pid"
  fi
  if [ -f "$SW/run/swtpm.pid" ]; then
    "$BUILD/src/cli/lim" tpm swtpm stop --state "$SW/state" --run-dir "$SW/run" >/dev/null || true
  fi
  if mountpoint -q "$SFS"; then umount "$SFS" 2>/dev/null || umount -l "$SFS"; fi
  umount "$MNT" 2>/dev/null || umount -l "$MNT"
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$T"/out1 "$T"/out2 "$T"/out3 "$T"/out4 "$STATE/limd.log"; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
  exit 1
}

cp /bin/true "$MNT/lim-main-probe"
run_main() {
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LIM_WATCH="$MNT" LIM_STATE="$STATE" LIM_SWTPM_DIR="$SW" LIM_USE_SWTPM=1 LIM_CONTROL_SOCKET="$SOCK" LIM_SECURITYFS="$SFS" \
    LIM_AGENT_PORT=0 LIM_VERIFIER_PORT=0 LIM_AGENT_ID=runmain-test LIM_BUILD_DIR="$BUILD" LIM_FOLLOW_SECONDS="$1" LIM_LIMD_TIMEOUT=300 ${2:+"$2"} "$SRC/scripts/run.sh"
}

# First invocation: starts swtpm and limd, then follows the log for 8 s.
run_main 8 >"$T/out1" 2>&1 &
main_job=$!
for _ in $(seq 1 1200); do  # deps check + a no-op build + swtpm manufacture: up to 120 s
  [ -s "$STATE/limd.ready" ] && break
  kill -0 "$main_job" 2>/dev/null || break
  sleep 0.1
done
[ -s "$STATE/limd.ready" ] || fail "limd did not become ready"
limd_pid=$(cat "$STATE/limd.ready")
start=$(date +%s.%N)
"$MNT/lim-main-probe" || fail "the probe did not run"
# Measured before exec returned (limd answers after the list append): in the list now.
"$BUILD/src/cli/lim" log "$STATE/binary_runtime_measurements" | grep -q " $MNT/lim-main-probe\$" ||
  fail "the probe is not in the list right after it ran"
seen=
for _ in $(seq 1 600); do  # after the attestation steps (certificates, enrollment, a round)
  if grep -q "$MNT/lim-main-probe" "$T/out1"; then seen=$(date +%s.%N); break; fi
  kill -0 "$main_job" 2>/dev/null || fail "run.sh ended before showing the log"
  sleep 0.1
done
[ -n "$seen" ] || fail "the probe did not appear in the live log within 60 s"
echo "probe in the live log after $(echo "$seen - $start" | bc) s"
wait "$main_job" || fail "run.sh exited with $?"
grep -q "starting swtpm" "$T/out1" || fail "no swtpm start in the first run"
grep -q "starting limd" "$T/out1" || fail "no limd start in the first run"
grep -q "boot_aggregate" "$T/out1" || fail "the log view lacks the chain's first entry"
# The securityfs view in the test's own directory serves the same list.
grep -q " $MNT/lim-main-probe\$" "$SFS/ima/ascii_runtime_measurements" || fail "the probe is not in $SFS/ima"
grep -q "the kernel's IMA files, served by limd: $SFS/ima/" "$T/out1" || fail "run.sh does not point at the view"

# The attestation chain: agent and verifier started, trust on first use said, host attested.
grep -q "starting lim-verifier" "$T/out1" || fail "no lim-verifier start in the first run"
grep -q "starting lim-agent" "$T/out1" || fail "no lim-agent start in the first run"
grep -q "TRUST ON FIRST USE" "$T/out1" || fail "the first run does not say the enrollment is trust on first use"
agent_pid=$(cat "$A/agent.pid") verifier_pid=$(cat "$A/verifier.pid")
[ "$(readlink "/proc/$agent_pid/exe")" = "$BUILD/src/agent/lim-agent" ] || fail "agent.pid $agent_pid is not lim-agent"
[ "$(readlink "/proc/$verifier_pid/exe")" = "$BUILD/src/verifier/lim-verifier" ] || fail "verifier.pid $verifier_pid is not lim-verifier"
aaddr=$(cat "$A/agent.addr") vaddr=$(cat "$A/verifier.addr")
case "$aaddr $vaddr" in 127.0.0.1:[0-9]*\ 127.0.0.1:[0-9]*) ;; *) fail "not loopback: $aaddr $vaddr" ;; esac
grep -q "^runmain-test attested address=$aaddr policy=host .*tofu" "$T/out1" ||
  fail "the first run does not show the host attested (tofu)"
[ "$(stat -c %a "$A")" = 700 ] || fail "$A is not 0700"
for f in "$A"/*.key "$A"/*.pem; do [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not 0600"; done
openssl x509 -in "$A/agent.pem" -noout -text | grep -q "ASN1 OID: prime256v1" || fail "the agent's key is not P-256"
openssl verify -CAfile "$A/ca.pem" "$A/agent.pem" "$A/verifier.pem" "$A/operator.pem" >/dev/null || fail "the leaves do not chain to the CA"
ca_before=$(sha256sum "$A/ca.pem")

# Second invocation: finds the running limd, starts nothing, still shows the log.
run_main 3 >"$T/out2" 2>&1 || fail "second run.sh exited with $?"
grep -q "limd already runs on $STATE (pid $limd_pid)" "$T/out2" || fail "the second run did not find limd $limd_pid"
if grep -q "starting limd\|starting swtpm" "$T/out2"; then fail "the second run started something"; fi
grep -q "$MNT/lim-main-probe" "$T/out2" || fail "the second run does not show the log"
grep -q "lim-agent already runs (pid $agent_pid, $aaddr)" "$T/out2" || fail "the second run did not find lim-agent $agent_pid"
grep -q "lim-verifier already runs (pid $verifier_pid, $vaddr)" "$T/out2" || fail "the second run did not find lim-verifier $verifier_pid"
if grep -q "starting lim-\|making a local CA\|enrolling" "$T/out2"; then fail "the second run started or enrolled again"; fi
grep -q "^runmain-test attested address=$aaddr" "$T/out2" || fail "the second run does not show the host attested"
[ "$(sha256sum "$A/ca.pem")" = "$ca_before" ] || fail "the second run made a new CA"
# LIM_ATTEST=0: the log only, no word of the agent or the verifier.
run_main 1 LIM_ATTEST=0 >"$T/out3" 2>&1 || fail "run.sh with LIM_ATTEST=0 exited with $?"
if grep -q "lim-agent\|lim-verifier\|lim verifier show" "$T/out3"; then fail "LIM_ATTEST=0 still attests"; fi
grep -q "limd already runs on $STATE" "$T/out3" || fail "LIM_ATTEST=0: limd not found"
# The agent stopped: the next run starts it again (a new port: port 0) and enrolls it there.
kill "$agent_pid"
for _ in $(seq 1 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
run_main 1 >"$T/out4" 2>&1 || fail "run.sh after the agent stopped exited with $?"
grep -q "starting lim-agent" "$T/out4" || fail "the agent was not started again"
grep -q "lim-verifier already runs (pid $verifier_pid" "$T/out4" || fail "the verifier was not found"
grep -q "^runmain-test attested address=$(cat "$A/agent.addr") " "$T/out4" || fail "not attested at the agent's new address"
n=0
for c in /proc/[0-9]*/cmdline; do
  if { tr '\0' ' ' <"$c"; } 2>/dev/null | grep -q "^[^ ]*/limd .*--state $STATE "; then n=$((n + 1)); fi
done
[ "$n" = 1 ] || fail "$n limd processes on $STATE"
[ "$(cat "$STATE/limd.ready")" = "$limd_pid" ] || fail "limd.ready changed"

# lim status over the control socket.
"$BUILD/src/cli/lim" status --state "$STATE" --socket "$SOCK" >"$T/status" || fail "lim status: not running"
grep -q "read from control socket $SOCK" "$T/status" || fail "lim status did not use the socket: $(cat "$T/status")"
grep -q "tpm: swtpm" "$T/status" || fail "lim status: not on swtpm: $(cat "$T/status")"
grep -q "root of trust: none" "$T/status" || fail "lim status does not say swtpm is no root of trust"
# A non-root peer: the socket file (0600) refuses the connect; opened up, limd's own
# SO_PEERCRED check still refuses it, and logs it.
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
chmod 755 "$T"
if "${NOBODY[@]}" "$BUILD/src/cli/lim" status --socket "$SOCK" --state "$STATE" >"$T/nobody" 2>&1; then
  fail "uid 65534 got a status"
fi
grep -q "control socket $SOCK: Permission denied" "$T/nobody" || fail "not refused by the file mode: $(cat "$T/nobody")"
chmod 666 "$SOCK"
"${NOBODY[@]}" "$BUILD/src/cli/lim" status --socket "$SOCK" --state "$STATE" >"$T/nobody" 2>&1 || true
grep -q "permission denied: the control socket serves uid 0 only" "$T/nobody" ||
  fail "limd served uid 65534: $(cat "$T/nobody")"
grep -q "control socket: refused pid=[0-9]* uid=65534" "$STATE/limd.log" || fail "the refusal is not in limd's log"
echo "--- what the first run showed of the attestation chain"
sed -n '/making a local CA/,/the integrated log/p' "$T/out1"
echo "PASS"
