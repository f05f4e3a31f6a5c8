# Sourced by the limd benchmarks: fapolicyd (Debian 1.1) as the peer limd is compared with —
# installed if missing (its service start suppressed), its config swapped for ours watching
# one filesystem type, run in the foreground under `timeout -k`, and the config restored.
# Two configs:
#   permissive — a single allow-all rule, `permissive = 1` (the cost of the event path alone)
#   enforcing  — its trust db (trust = file, integrity = sha256) lists only the files given;
#                rules: trusted files allowed, untrusted execs and opens denied. Give it a
#                filesystem type nothing else has mounted (fapo_fstype_unused): it marks
#                every mount of that type, and a deny on someone else's mount would break it.
# Functions:
#   fapo_install                   apt-get install fapolicyd when missing
#   fapo_fstype_unused FSTYPE [MNT] true when no mount but MNT (if given) has type FSTYPE
#   fapo_swap_config DIR FSTYPE [TRUSTED_FILE...]
#                                  save the config (conf, compiled.rules, fapolicyd.trust)
#                                  into DIR and write ours (watch_fs = FSTYPE): permissive
#                                  without files, enforcing its trust db with them
#   fapo_restore_config DIR        put the saved config back (safe to call twice)
#   fapo_start DIR SECONDS         start it; sets fapo_pid (its own pid, not the wrapper's)
#   fapo_stop                      SIGTERM to fapo_pid and wait for it
fapo_install() {
  command -v fapolicyd >/dev/null && return 0
  # policy-rc.d 101: the package's service is installed but not started.
  local made_policy=
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q fapolicyd >/dev/null
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
}

fapo_fstype_unused() {
  local fstype=$1 mine=${2:-} m
  while read -r m; do
    [ -n "$mine" ] && [ "$m" = "$mine" ] && continue
    return 1
  done < <(findmnt -n -l -t "$fstype" -o TARGET)
  return 0
}

fapo_swap_config() {
  local dir=$1 fstype=$2 permissive=1 integrity=none f
  shift 2
  [ $# -eq 0 ] || { permissive=0 integrity=sha256; }
  cp /etc/fapolicyd/fapolicyd.conf "$dir/fapolicyd.conf.orig"
  [ -e /etc/fapolicyd/compiled.rules ] && cp /etc/fapolicyd/compiled.rules "$dir/compiled.rules.orig"
  [ -e /etc/fapolicyd/fapolicyd.trust ] && cp /etc/fapolicyd/fapolicyd.trust "$dir/fapolicyd.trust.orig"
  touch "$dir/fapolicyd.saved"
  echo "$permissive" >"$dir/fapolicyd.permissive"
  cat >/etc/fapolicyd/fapolicyd.conf <<EOF
permissive = $permissive
nice_val = 0
q_size = 640
uid = root
gid = root
do_stat_report = 0
detailed_report = 0
db_max_size = 50
subj_cache_size = 1549
obj_cache_size = 8191
watch_fs = $fstype
trust = file
integrity = $integrity
syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust
allow_filesystem_mark = 0
EOF
  if [ "$permissive" = 1 ]; then
    echo 'allow perm=any all : all' >/etc/fapolicyd/compiled.rules
    return 0
  fi
  # The trust db: path, size, sha256 of only the files given (trust.d is read too: its
  # entries name files elsewhere, never on the one filesystem type watched here).
  : >/etc/fapolicyd/fapolicyd.trust
  for f in "$@"; do
    echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)" >>/etc/fapolicyd/fapolicyd.trust
  done
  printf '%s\n' 'allow perm=any all : trust=1' 'deny perm=execute all : all' 'deny perm=open all : all' \
    >/etc/fapolicyd/compiled.rules
}

fapo_restore_config() {
  local dir=$1
  [ -e "$dir/fapolicyd.saved" ] || return 0
  cp "$dir/fapolicyd.conf.orig" /etc/fapolicyd/fapolicyd.conf
  if [ -e "$dir/compiled.rules.orig" ]; then cp "$dir/compiled.rules.orig" /etc/fapolicyd/compiled.rules
  else rm -f /etc/fapolicyd/compiled.rules; fi
  if [ -e "$dir/fapolicyd.trust.orig" ]; then cp "$dir/fapolicyd.trust.orig" /etc/fapolicyd/fapolicyd.trust
  else rm -f /etc/fapolicyd/fapolicyd.trust; fi
  rm -f "$dir/fapolicyd.saved"
}

fapo_start() {
  local dir=$1 seconds=$2 wrap mode=--permissive
  [ "$(cat "$dir/fapolicyd.permissive" 2>/dev/null)" = 0 ] && mode=
  timeout -k 2 "$seconds" fapolicyd $mode --debug-deny >"$dir/fapolicyd.log" 2>&1 &
  wrap=$!
  for _ in $(seq 200); do grep -q "Starting to listen" "$dir/fapolicyd.log" && break; sleep 0.05; done
  fapo_pid=$(pgrep -P "$wrap")
}

fapo_stop() {
  [ -n "${fapo_pid:-}" ] || return 0
  kill "$fapo_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$fapo_pid" 2>/dev/null || break; sleep 0.05; done
  fapo_pid=
}
