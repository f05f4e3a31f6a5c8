#!/usr/bin/env bash
# The window of issue 17 item 1, measured: uid 65534 in `unshare -Urm` mounts a fresh tmpfs
# below limd's --watch root and executes from it at once, TRIES times per scenario:
#   copy  — `mount -t tmpfs x D && cp /bin/true D/evade && D/evade` (issue 17's reproduction)
#   fsmnt — a tmpfs filled while detached (fsmount), attached with move_mount and its static
#           binary executed the next instant (the test's evader): the exec nearly always
#           beats discovery; the binary exits at once (lives well under a millisecond).
# Per scenario: execs with an ima-ng entry (before it ran, or late), lim-late-exec entries,
# gaps, and limd's late-entry delay p50/p99 (status.json). Needs root, cc with static libc.
# Marks only its own tmpfs; limd under `timeout -k`, stopped by its own pid.
# Usage: bench/late_exec.sh [TRIES] (default 1000).  LIMD=path/to/limd (e.g. main's build).
set -euo pipefail
tries=${1:-1000}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
lim=${LIM:-$here/../build/src/cli/lim}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
W=$(mktemp -d /tmp/late_exec_w.XXXXXX) T=$(mktemp -d /tmp/late_exec_t.XXXXXX)
limd_pid=
cleanup() {
  [ -n "$limd_pid" ] && kill "$limd_pid" 2>/dev/null || true
  sleep 0.5
  umount "$W" 2>/dev/null || umount -l "$W" || true
  rm -rf "$W" "$T"
}
trap cleanup EXIT
mount -t tmpfs late_exec "$W" && chmod 1777 "$W" && chmod 755 "$T"
# The test's evader, one source: the raw string in limd_late_exec_root_test.cc.
sed -n '/^constexpr const char\* kEvader = R"(/,/^)";/p' "$here/../src/daemon/limd_late_exec_root_test.cc" | sed '1d;$d' \
  > "$T/evader.c"
printf '#include <unistd.h>\nint main(void) { return 0; }\n' > "$T/quick.c"
cc -O2 -o "$T/evader" "$T/evader.c" && cc -O2 -static -o "$T/quick" "$T/quick.c"
mkdir "$T/state"
timeout -k 2 3600 "$limd" --foreground --securityfs none --control-socket none --no-tpm --state "$T/state" \
  --watch "$W" --log-file "$T/state/log" &
for _ in $(seq 100); do [ -s "$T/state/limd.ready" ] && break; sleep 0.1; done
limd_pid=$(cat "$T/state/limd.ready")
nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups unshare -Urm sh -c "$1"; }
for i in $(seq "$tries"); do
  mkdir "$W/a$i" "$W/b$i" && chown 65534:65534 "$W/a$i" "$W/b$i"
  nobody "mount -t tmpfs x $W/a$i && cp /bin/true $W/a$i/evade && $W/a$i/evade"
  nobody "$T/evader $W/b$i $T/quick"
done
sleep 1
cp "$T/state/status.json" "$T/status.json"
kill "$limd_pid"; for _ in $(seq 100); do kill -0 "$limd_pid" 2>/dev/null || break; sleep 0.05; done; limd_pid=
"$lim" log "$T/state/binary_runtime_measurements" > "$T/list.txt"
count() { grep -c -E "$1" "$T/list.txt" || true; }
late_paths=$(grep ' lim-late-exec ' "$T/list.txt" | awk '{print $NF}' | xxd -r -p 2>/dev/null | tr ';' '\n' | grep -c '^path=' || true)
echo "tries per scenario: $tries   limd: $limd"
echo "copy : ima-ng entries for evade: $(count "ima-ng .* $W/a[0-9]+/evade\$") / $tries"
echo "fsmnt: ima-ng entries for prog : $(count "ima-ng .* $W/b[0-9]+/prog\$") / $tries"
echo "lim-late-exec entries: $(count ' lim-late-exec ') (with a path: $late_paths)"
echo "  of them copy: $(grep -c "late exec $W/a" "$T/state/log" || true), fsmnt: $(grep -c "late exec $W/b" "$T/state/log" || true)"
python3 - "$T/status.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
print("status: tracepoints=%s late_execs=%s late_exec_gaps=%s late_exec_missed=%s mount_pokes=%s trace_lost=%s" % (
    j.get("tracepoints"), j.get("late_execs"), j.get("late_exec_gaps"), j.get("late_exec_missed"),
    j.get("mount_pokes"), j.get("trace_lost")))
print("late entry delay after the exec (us): %s" % j.get("late_exec_delay_us"))
print("mount tracepoint to mark (us): %s" % j.get("poke_to_mark_us"))
EOF
