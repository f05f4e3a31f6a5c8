#!/usr/bin/env bash
# What limd records after the fact (issue 17, items 4 and 5), N tries each (default 1000):
# - keys: `evmctl import cert.der RING` into a fresh keyring per try (keyctl session -, a
#   unique ring name, so the duplicate table keeps none out), then the next command reads
#   the list: counts the tries whose key was there (entry or lim-key-unmeasured gap), the
#   entries and gaps at the end, and limd's key_delay_us (add_key's return → append);
# - memfd: N short-lived memfd programs (/bin/true through memfd_create + fexecve, python3):
#   how many got their `memfd:NAME` entry and how many a lim-exe-unmeasured gap.
# - with `session` as second argument, instead: N `keyctl padd asymmetric "" @s` in one
#   fresh named session (the ring named after the fact from /proc/keys), each replacing
#   the previous key (same certificate: one entry, the rest duplicates); limd's
#   key_delay_us and the gaps by reason.
# limd watches its own tmpfs only (--watch), under `timeout -k`, stopped by its pid.
# Usage: bench/blind_spots.sh [N] [session]. LIMD=build/src/daemon/limd LIM=build/src/cli/lim
set -euo pipefail
n=${1:-1000}
mode=${2:-all}
here=$(cd "$(dirname "$0")" && pwd)
limd=${LIMD:-$here/../build/src/daemon/limd}
lim=${LIM:-$here/../build/src/cli/lim}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in keyctl evmctl openssl python3; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done
S=$(mktemp -d /tmp/lim-blind.XXXXXX)
mkdir "$S/mnt" "$S/state"
mount -t tmpfs limblind "$S/mnt"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  umount "$S/mnt" 2>/dev/null || umount -l "$S/mnt"
  rm -rf "$S"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$S/k.pem" -outform DER -out "$S/c.der" \
  -subj "/O=Lim Bench/CN=lim blind spots" -days 2 2>/dev/null
printf 'measure func=KEY_CHECK\nmeasure func=BPRM_CHECK\n' > "$S/policy"
timeout -k 2 3600 "$limd" --foreground --securityfs none --control-socket none --state "$S/state" --watch "$S/mnt" \
  --log-file "$S/log" --config /dev/null --no-tpm --policy "$S/policy" &
for _ in $(seq 200); do [ -s "$S/state/limd.ready" ] && break; sleep 0.05; done
pid=$(cat "$S/state/limd.ready")
list="$S/state/binary_runtime_measurements"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$mode" = session ]; then
  keyctl session lim_ses_bench sh -c "for i in \$(seq $n); do keyctl padd asymmetric '' @s < $S/c.der >/dev/null; done" \
    >/dev/null 2>&1
  sleep 1
  python3 -c "import json;j=json.load(open('$S/state/status.json'));print('session keys: $n adds; entries',j['keys_measured'],'(the rest duplicates), gaps',j['key_gaps'],'key_delay_us',j['key_delay_us'])"
  grep -o 'not measured ([a-z_]*)' "$S/log" | sort | uniq -c || true
  exit 0
fi
seen=0
for i in $(seq 1 "$n"); do
  gap=$(printf ';keyring=kb_%s;' "$i" | od -An -tx1 | tr -d ' \n')
  c=$(keyctl session - sh -c "id=\$(keyctl newring kb_$i @s) && evmctl import $S/c.der \$id >/dev/null 2>&1 && \
      $lim log $list | grep -c -E ' kb_$i |$gap'" 2>/dev/null || true)
  [ "${c:-0}" -ge 1 ] && seen=$((seen + 1))
done
sleep 1
entries=$("$lim" log "$list" | grep -c ' kb_' || true)
gaps=$("$lim" log "$list" | grep -c ' lim-key-unmeasured ' || true)
delay=$(python3 -c "import json;j=json.load(open('$S/state/status.json'));print(j['key_delay_us'])")
echo "keys: $n imports; in the list when the next command ran: $seen; entries $entries, gaps $gaps; key_delay_us $delay"
grep -o 'not measured ([a-z_]*)' "$S/log" | sort | uniq -c || true
python3 - "$n" <<'PY'
import os, sys
n = int(sys.argv[1])
data = open('/bin/true', 'rb').read()
for i in range(n):
    pid = os.fork()
    if pid == 0:
        fd = os.memfd_create('lim-bench-%d' % i, 0)
        os.write(fd, data)
        ro = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY)
        os.close(fd)
        os.execve(ro, ['true'], {})
    os.waitpid(pid, 0)
PY
sleep 1
m_entries=$("$lim" log "$list" | grep -c ' memfd:lim-bench-' || true)
m_gaps=$("$lim" log "$list" | grep -c ' lim-exe-unmeasured ' || true)
echo "memfd: $n short-lived memfd execs (/bin/true); entries $m_entries, gaps $m_gaps, neither $((n - m_entries - m_gaps))"
