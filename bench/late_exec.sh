#!/usr/bin/env bash
# The window of issue 17 item 1, measured: uid 65534 in `unshare -Urm` mounts a fresh tmpfs
# below limd's --watch root and executes from it at once, TRIES times per scenario:
#   copy  — `mount -t tmpfs x D && cp /bin/true D/evade && D/evade` (issue 17's reproduction)
#   fsmnt — a tmpfs filled while detached (fsmount), attached with move_mount and its static
#           binary executed the next instant (the test's evader): the exec nearly always
#           beats discovery; the binary exits at once (lives well under a millisecond).
#   static — `mount -t tmpfs x D && cp QUICK D/e && D/e` with QUICK a static binary that
#           returns at once: often gone before limd looks at /proc/<pid>/exe
#   detach — a tmpfs made with fsmount and never attached, QUICK written to it and run with
#           execveat(mount_fd, "prog") at once (the test's `detached` helper)
#   umount — fsmount, move_mount, umount at once: how long limd's pin of the detached mount
#           (dropped when it reads the move_mount record) makes umount fail with EBUSY
#           (not in the default set)
# Per scenario: execs with an ima-ng entry (before it ran, or late), lim-late-exec entries,
# gaps, and limd's late-entry delay p50/p99 (status.json); for static and detach each try
# is classified: a content entry, a gap entry, or nothing. Needs root, cc with static libc.
# SCENARIOS="copy fsmnt static detach" (the default) picks scenarios.
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
P=$T/pids && mkdir -m 1777 "$P" && : >"$P/detach_pids" && chmod 666 "$P/detach_pids"
# The test's evader, one source: the raw string in limd_late_exec_root_test.cc.
sed -n '/^constexpr const char\* kEvader = R"(/,/^)";/p' "$here/../src/daemon/limd_late_exec_root_test.cc" | sed '1d;$d' \
  > "$T/evader.c"
sed -n '/^constexpr const char\* kDetached = R"(/,/^)";/p' "$here/../src/daemon/limd_late_exec_root_test.cc" | sed '1d;$d' \
  > "$T/detached.c"
printf '#include <unistd.h>\nint main(void) { return 0; }\n' > "$T/quick.c"
# umount: fsmount (limd pins the detached mount at the syscall's exit), move_mount to DIR,
# close the fd, then umount DIR at once and again until it succeeds: prints how long limd's
# pin kept it EBUSY (0 when the first umount succeeded). The pin is dropped when limd reads
# the move_mount record.
cat > "$T/umount.c" <<'CEOF'
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/mount.h>
static long long now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000LL + t.tv_nsec / 1000; }
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) return 2;
  int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
  if (mnt < 0 || syscall(SYS_move_mount, mnt, "", AT_FDCWD, argv[1], MOVE_MOUNT_F_EMPTY_PATH) != 0) return 2;
  close(mnt);
  close(fs);
  long long start = now_us();
  int busy = 0;
  while (umount2(argv[1], 0) != 0) {
    if (errno != EBUSY || now_us() - start > 5000000) { perror("umount"); return 2; }
    busy++;
    usleep(200);
  }
  printf("umount_busy_us %lld %d\n", busy ? now_us() - start : 0, busy);
  return 0;
}
CEOF
cc -O2 -o "$T/evader" "$T/evader.c" && cc -O2 -o "$T/detached" "$T/detached.c" && cc -O2 -static -o "$T/quick" "$T/quick.c" &&
  cc -O2 -o "$T/umount" "$T/umount.c"
scenarios=" ${SCENARIOS:-copy fsmnt static detach} "
on() { case "$scenarios" in *" $1 "*) return 0 ;; esac; return 1; }
mkdir "$T/state"
timeout -k 2 3600 "$limd" --foreground --securityfs none --control-socket none --no-tpm --state "$T/state" \
  --watch "$W" --log-file "$T/state/log" &
for _ in $(seq 100); do [ -s "$T/state/limd.ready" ] && break; sleep 0.1; done
limd_pid=$(cat "$T/state/limd.ready")
nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups unshare -Urm sh -c "$1"; }
for i in $(seq "$tries"); do
  mkdir "$W/a$i" "$W/b$i" "$W/c$i" "$W/u$i" && chown 65534:65534 "$W/a$i" "$W/b$i" "$W/c$i" "$W/u$i"
  if on copy; then nobody "mount -t tmpfs x $W/a$i && cp /bin/true $W/a$i/evade && $W/a$i/evade"; fi
  if on fsmnt; then nobody "$T/evader $W/b$i $T/quick"; fi
  if on static; then nobody "mount -t tmpfs x $W/c$i && cp $T/quick $W/c$i/e && $W/c$i/e"; fi
  # The detached exec's pid (the shell execs the helper, which execs prog): tries are told
  # apart by it, every detached exec's path being /prog.
  if on umount; then nobody "$T/umount $W/u$i" >>"$T/umount.txt"; fi
  if on detach; then nobody "echo $i \$\$ >>$P/detach_pids; exec $T/detached name $T/quick 0"; fi
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
echo "execs gone without a mapping (late_exec_missed), first 3 of $(grep -c 'no executable mapping' "$T/state/log" || true):"
grep 'no executable mapping' "$T/state/log" | head -3 || true
echo "  of them copy: $(grep -c "late exec $W/a" "$T/state/log" || true), fsmnt: $(grep -c "late exec $W/b" "$T/state/log" || true)"
python3 - "$T/list.txt" "$W" "$tries" "$scenarios" "$P/detach_pids" "$T/state/log" <<'EOF'
import collections, sys
rows = [l.split() for l in open(sys.argv[1])]
W, tries, scen = sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
detach_pid = dict(l.split() for l in open(sys.argv[5]) if len(l.split()) == 2)  # try -> pid
log = open(sys.argv[6], errors="replace").read().splitlines()
regular = set(r[4] for r in rows if r[2] == "ima-ng")
late = collections.defaultdict(list)  # path -> buffers
for r in rows:
    if r[2] == "ima-buf" and r[4] == "lim-late-exec":
        b = bytes.fromhex(r[5]).decode(errors="replace")
        f = dict(kv.split("=", 1) for kv in b.split(";") if "=" in kv)
        late[f.get("path", "")].append(f)
def show(name, content, gap, none, after_exit):
    print("%-6s: %d tries: content entry %d (of them read by name after the process exited: %d), gap entry %d, nothing %d"
          % (name, tries, content, after_exit, gap, none))
def classify(name, tries_bufs, explain):
    """tries_bufs: (try, regular entry?, its lim-late-exec buffers) per try."""
    c = g = n = ax = 0
    nothing = []
    for i, has_regular, bufs in tries_bufs:
        if has_regular or any("digest" in f for f in bufs):
            c += 1
            ax += any(f.get("source") == "name-after-exit" for f in bufs)
        elif bufs:
            g += 1
        else:
            n += 1
            nothing.append(i)
    show(name, c, g, n, ax)
    for i in nothing[:5]:
        label, words = explain(i)
        print("  nothing: try %d (%s); limd's log on it:" % (i, label))
        for l in log:
            if any(w in l for w in words):
                print("    " + l)
        for r in rows:
            if any(w in " ".join(r[:5]) for w in words):
                print("    list: " + " ".join(r[:5]))
if "static" in scen:
    path = lambda i: "%s/c%d/e" % (W, i)
    classify("static", [(i, path(i) in regular, late.get(path(i), [])) for i in range(1, tries + 1)],
             lambda i: (path(i), [path(i), "/c%d " % i]))
if "detach" in scen:
    by_pid = collections.defaultdict(list)
    for f in late.get("/prog", []):
        by_pid[f.get("pid")].append(f)
    pid = lambda i: detach_pid.get(str(i), "?")
    classify("detach", [(i, False, by_pid.get(pid(i), [])) for i in range(1, tries + 1)],
             lambda i: ("pid " + pid(i), ["pid %s " % pid(i), "pid %s)" % pid(i), "pid %s," % pid(i), "pid %s:" % pid(i)]))
other = [f for p, bufs in late.items() if p != "/prog" and not p.startswith(W + "/") for f in bufs]
print("lim-late-exec entries for other paths (other programs on the host, or a path limd could not read): %d%s"
      % (len(other), ("; e.g. %s" % other[0]) if other else ""))
why = collections.Counter(f["error"] for bufs in late.values() for f in bufs if "error" in f)
for e, n in why.most_common():
    print("  gap: %d x %s" % (n, e))
    print("    e.g. %s" % next(f for bufs in late.values() for f in bufs if f.get("error") == e))
EOF
if on umount; then
  python3 - "$T/umount.txt" <<'EOF'
import sys
v = [(int(l.split()[1]), int(l.split()[2])) for l in open(sys.argv[1]) if l.startswith("umount_busy_us")]
busy = sorted(us for us, n in v if n)
pct = lambda p: busy[min(len(busy) - 1, int(p * len(busy)))] if busy else 0
print("umount: %d tries, %d got EBUSY from limd's pin at first; time until umount succeeded: p50 %d us, p99 %d us, max %d us"
      % (len(v), len(busy), pct(0.5), pct(0.99), busy[-1] if busy else 0))
EOF
fi
python3 - "$T/status.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
print("status: tracepoints=%s late_execs=%s (after exit: %s) late_exec_gaps=%s late_exec_missed=%s mount_pokes=%s trace_lost=%s" % (
    j.get("tracepoints"), j.get("late_execs"), j.get("late_execs_after_exit"), j.get("late_exec_gaps"),
    j.get("late_exec_missed"), j.get("mount_pokes"), j.get("trace_lost")))
print("late entry delay after the exec (us): %s" % j.get("late_exec_delay_us"))
print("mount tracepoint to mark (us): %s" % j.get("poke_to_mark_us"))
EOF
