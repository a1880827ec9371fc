#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server beside it (make test):
# initdb into a temporary folder, pg_ctl on 127.0.0.1 and a free port, as the
# postgres user when run as root; stopped and removed on exit, failure included.
# The command sees MILESTONES_TEST_PG (postgresql://postgres:PASSWORD@127.0.0.1:PORT,
# no database: each test makes its own) and MILESTONES_TEST_PG_REQUIRED=1, so
# the PostgreSQL tests fail rather than skip if the server is missing.
set -euo pipefail
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "with-postgres: no PostgreSQL server (Debian's postgresql package); run make deps" >&2; exit 69; }
dir=$(mktemp -d /tmp/milestones-pg.XXXXXX)
chmod 755 "$dir"
run=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  run=(runuser -u postgres --)
fi
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
stop() {
  "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
printf '%s\n' "$password" > "$dir/pw"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/pw"
"${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 --auth=scram-sha-256 --pwfile="$dir/pw" >/dev/null
"${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
export MILESTONES_TEST_PG="postgresql://postgres:$password@127.0.0.1:$port"
export MILESTONES_TEST_PG_REQUIRED=1
"$@"
