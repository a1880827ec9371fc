#!/usr/bin/env bash
# make bench / make bench-quick: bench/bench.py at each ledger size given
# (smallest first; each writes bench/results/latest-N.md and .json), then
# bench/report.py combines them into bench/results/latest.md, latest.json
# and scaling.svg.
# Usage: bench/run.sh [--memory] MILESTONES_BINARY N [N ...] [--projection]
# (--memory: bench.py's memory tier at each N, and no combined report;
# a --flag among the sizes is passed on to bench.py)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0  # the whole suite's time, for the report
command -v sqlite3 >/dev/null && command -v openssl >/dev/null && [ -x /usr/bin/time ] || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq sqlite3 openssl time
}
memory=()
if [ "$1" = --memory ]; then memory=(--memory); shift; fi
binary="$1"
shift
sizes=()
for a in "$@"; do
  case "$a" in --*) memory+=("$a") ;; *) sizes+=("$a") ;; esac
done
set -- "${sizes[@]}"
for n in "$@"; do
  python3 bench/bench.py "$binary" "$n" ${memory[@]+"${memory[@]}"}
done
if [ ${#memory[@]} -gt 0 ] && [ "${memory[0]}" = --memory ]; then exit 0; fi
# The combined report (latest.md, latest.json, scaling.svg) needs several
# tiers: `make bench-quick` leaves the committed one alone.
if [ "$#" -gt 1 ]; then BENCH_SECONDS=$SECONDS python3 bench/report.py "$@"; fi
