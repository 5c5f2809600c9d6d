#!/usr/bin/env bash
# Compare vigil binaries on the machine: each round runs every binary once,
# one after the other, on the same file (GOMAXPROCS=1), so that the
# machine's own drift falls on all of them alike. Prints each binary's
# events/s sorted, then, against the first binary, in how many rounds the
# others were faster and the geometric mean of their ratios.
#
#   bash detect/sigma/ab.sh ROUNDS ./vigil-before ./vigil-after ...
#
# RULES and INPUT default to the sigbase subset and events
# (docs/benchmarks.md says how to make them).
set -euo pipefail
rounds=$1; shift
rules=${RULES:-/tmp/sb/rules}
input=${INPUT:-/tmp/sb/events.jsonl}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq 1 "$rounds"); do
  for b in "$@"; do
    eps=$(GOMAXPROCS=1 "$b" detect --rules "$rules" --input "$input" 2>&1 >/dev/null | sed -n 's/.*events_per_second=//p')
    echo "$b $eps" >> "$out"
  done
done
for b in "$@"; do
  echo "$b: $(awk -v b="$b" '$1 == b {print $2}' "$out" | sort -n | tr '\n' ' ')"
done
first=$1; shift
for b in "$@"; do
  paste <(awk -v b="$first" '$1 == b {print $2}' "$out") <(awk -v b="$b" '$1 == b {print $2}' "$out") |
    awk -v b="$b" '{ if ($2 > $1) w++; s += log($2 / $1) } END { printf "%s faster in %d of %d, geometric mean %.4f\n", b, w, NR, exp(s / NR) }'
done
