#!/bin/sh
# securityfs-ns.sh: runs a command in a private mount namespace in which
# /sys/kernel/security shows limd's securityfs view (docs/securityfs.md), for tools that
# hard-code /sys/kernel/security/ima/… on a kernel without IMA. Nothing changes outside the
# namespace. Root only.
#
#   scripts/securityfs-ns.sh [--view DIR] -- COMMAND [ARGS…]
#   scripts/securityfs-ns.sh -- evmctl ima_measurement /sys/kernel/security/ima/binary_runtime_measurements
#
# When securityfs is mounted, its other entries (lsm, lockdown, tpm0, …) stay visible: a
# tmpfs goes over /sys/kernel/security and every entry but integrity/ima is bind-mounted
# back; the view's integrity and ima take their place (and its tpm0 when securityfs has none).
# Without securityfs the view itself is bind-mounted there.
set -eu
view=/run/lim/securityfs
while [ $# -gt 0 ]; do
  case "$1" in
    --view) view=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--view DIR] -- COMMAND [ARGS…]" >&2; exit 2; }
[ -e "$view/integrity/ima/runtime_measurements_count" ] || {
  echo "securityfs-ns: no limd view at $view (is limd running with --securityfs $view?)" >&2; exit 1; }

if [ -z "${LIM_SECURITYFS_NS_INNER:-}" ]; then
  # Re-run this script inside a new mount namespace whose mounts do not propagate back.
  LIM_SECURITYFS_NS_INNER=1 exec unshare --mount --propagation private -- "$0" --view "$view" -- "$@"
fi

sec=/sys/kernel/security
if mountpoint -q "$sec"; then
  old=$(mktemp -d /tmp/lim-securityfs-ns.XXXXXX)
  mount --bind "$sec" "$old"
  mount -t tmpfs -o mode=0755,size=64k lim-securityfs "$sec"
  for e in "$old"/* "$old"/.[!.]*; do
    [ -e "$e" ] || continue
    name=${e##*/}
    case "$name" in integrity|ima) continue ;; esac
    if [ -d "$e" ]; then mkdir "$sec/$name"; else : > "$sec/$name"; fi
    mount --bind "$e" "$sec/$name"
  done
  umount -l "$old"
  rmdir "$old"
  mkdir "$sec/integrity"
  mount --bind "$view/integrity" "$sec/integrity"
  ln -s integrity/ima "$sec/ima"
  if [ -d "$view/tpm0" ] && [ ! -e "$sec/tpm0" ]; then
    mkdir "$sec/tpm0"
    mount --bind "$view/tpm0" "$sec/tpm0"
  fi
else
  mount --bind "$view" "$sec"
fi
unset LIM_SECURITYFS_NS_INNER
exec "$@"
