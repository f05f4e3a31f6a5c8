# Sourced by the limd benchmarks: fapolicyd (Debian 1.1) as the peer limd is compared with —
# installed if missing (its service start suppressed), its config swapped for a permissive
# one with a single allow-all rule watching one filesystem type, run in the foreground under
# `timeout -k`, and the config restored. Functions:
#   fapo_install                   apt-get install fapolicyd when missing
#   fapo_swap_config DIR FSTYPE    save the config into DIR, write ours (watch_fs = FSTYPE)
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

fapo_swap_config() {
  local dir=$1 fstype=$2
  cp /etc/fapolicyd/fapolicyd.conf "$dir/fapolicyd.conf.orig"
  [ -e /etc/fapolicyd/compiled.rules ] && cp /etc/fapolicyd/compiled.rules "$dir/compiled.rules.orig"
  touch "$dir/fapolicyd.saved"
  cat >/etc/fapolicyd/fapolicyd.conf <<EOF
permissive = 1
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
integrity = none
syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust
allow_filesystem_mark = 0
EOF
  echo 'allow perm=any all : all' >/etc/fapolicyd/compiled.rules
}

fapo_restore_config() {
  local dir=$1
  [ -e "$dir/fapolicyd.saved" ] || return 0
  cp "$dir/fapolicyd.conf.orig" /etc/fapolicyd/fapolicyd.conf
  if [ -e "$dir/compiled.rules.orig" ]; then cp "$dir/compiled.rules.orig" /etc/fapolicyd/compiled.rules
  else rm -f /etc/fapolicyd/compiled.rules; fi
  rm -f "$dir/fapolicyd.saved"
}

fapo_start() {
  local dir=$1 seconds=$2 wrap
  timeout -k 2 "$seconds" fapolicyd --permissive --debug-deny >"$dir/fapolicyd.log" 2>&1 &
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
