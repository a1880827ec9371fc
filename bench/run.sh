#!/usr/bin/env bash
# make bench / make bench-quick: bench/bench.py at one ledger size.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v sqlite3 >/dev/null && command -v openssl >/dev/null && [ -x /usr/bin/time ] || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq sqlite3 openssl time
}
python3 bench/bench.py "$1" "$2" "${@:3}"
