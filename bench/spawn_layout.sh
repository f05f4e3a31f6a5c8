# Sourced by spawn_rt.sh and spawn_gap.sh: spawn_layout DIR OPLOOP fills the mounted
# filesystem DIR with what a chrooted spawn of /bin/true and the op loop need (each binary
# and every library it loads, at the same paths; /op_loop; an ld.so.cache from
# `ldconfig -r`; /etc/hostname) and checks that /bin/true runs there. Returns 1 with a
# message when it cannot.
spawn_layout() {
  local m=$1 oploop=$2 f
  for f in /bin/true "$oploop" $(ldd /bin/true "$oploop" | grep -o '/[^ ]*' | sort -u); do
    [ -e "$f" ] || continue
    mkdir -p "$m$(dirname "$f")"
    cp -L "$f" "$m$f"
  done
  cp "$oploop" "$m/op_loop"
  mkdir -p "$m/etc"
  echo bench >"$m/etc/hostname"
  ldconfig -r "$m" 2>/dev/null || true
  [ -s "$m/etc/ld.so.cache" ] || { echo "ldconfig -r made no ld.so.cache" >&2; return 1; }
  chroot "$m" /bin/true || { echo "the chroot layout does not run /bin/true" >&2; return 1; }
}
