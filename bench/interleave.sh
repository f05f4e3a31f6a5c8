#!/usr/bin/env bash
# Runs several commands in turn, ROUNDS times (round-robin, so machine noise hits all of
# them alike), and prints for each the median wall time, the min–max spread, and the ratio
# of every command's median to the first one's. Usage:
#   bench/interleave.sh ROUNDS 'name1=command 1' 'name2=command 2' ...
# INTERLEAVE_PREPARE, when set, is a command run untimed before every timed one (bench/scan.sh
# evicts a tree from the page cache with it). INTERLEAVE_CPU=1 adds the CPU time (user +
# system of the command and every process it waited for, from /usr/bin/time) — on a loaded
# machine the steadier measure of work.
set -euo pipefail
prepare=${INTERLEAVE_PREPARE:-}
cpu=${INTERLEAVE_CPU:-}
cpu_file=$(mktemp /tmp/interleave-cpu.XXXXXX)
trap 'rm -f "$cpu_file"' EXIT
rounds=$1
shift
names=()
cmds=()
for spec in "$@"; do
  names+=("${spec%%=*}")
  cmds+=("${spec#*=}")
done
declare -A times cpus
for ((r = 0; r < rounds; r++)); do
  for i in "${!cmds[@]}"; do
    if [[ -n $prepare ]]; then bash -c "$prepare" >/dev/null 2>&1; fi
    start=$(date +%s%N)
    if [[ -n $cpu ]]; then
      /usr/bin/time -f '%U %S' -o "$cpu_file" bash -c "${cmds[$i]}" >/dev/null 2>&1 ||
        { echo "command failed: ${cmds[$i]}" >&2; exit 1; }
    else
      bash -c "${cmds[$i]}" >/dev/null 2>&1 || { echo "command failed: ${cmds[$i]}" >&2; exit 1; }
    fi
    end=$(date +%s%N)
    times[$i]+="$(((end - start) / 1000)) "
    if [[ -n $cpu ]]; then cpus[$i]+="$(awk '{printf "%d", ($1 + $2) * 1000000}' "$cpu_file") "; fi
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minmax() { tr ' ' '\n' | grep -v '^$' | sort -n | awk 'NR==1{min=$1} {max=$1} END {printf "%.1f–%.1f", min/1000, max/1000}'; }
base=$(echo "${times[0]}" | median)
if [[ -n $cpu ]]; then
  cbase=$(echo "${cpus[0]}" | median)
  printf '| command | median ms | spread ms (min–max, %d runs) | ratio to %s | CPU ms median | CPU spread ms | CPU ratio |\n|---|---|---|---|---|---|---|\n' \
    "$rounds" "${names[0]}"
  for i in "${!cmds[@]}"; do
    m=$(echo "${times[$i]}" | median)
    c=$(echo "${cpus[$i]}" | median)
    printf '| %s | %.1f | %s | %.2f | %.1f | %s | %.2f |\n' "${names[$i]}" "$(echo "$m / 1000" | bc -l)" \
      "$(echo "${times[$i]}" | minmax)" "$(echo "$m / $base" | bc -l)" "$(echo "$c / 1000" | bc -l)" \
      "$(echo "${cpus[$i]}" | minmax)" "$(echo "$c / ($cbase + 1)" | bc -l)"
  done
  exit 0
fi
printf '| command | median ms | spread ms (min–max, %d runs) | ratio to %s |\n|---|---|---|---|\n' "$rounds" "${names[0]}"
for i in "${!cmds[@]}"; do
  m=$(echo "${times[$i]}" | median)
  printf '| %s | %.1f | %s | %.2f |\n' "${names[$i]}" "$(echo "$m / 1000" | bc -l)" "$(echo "${times[$i]}" | minmax)" \
    "$(echo "$m / $base" | bc -l)"
done
