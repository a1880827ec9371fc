#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server beside it (make test):
# initdb into a temporary folder, pg_ctl on 127.0.0.1 and a free port, as the
# postgres user when run as root; stopped and removed on exit, failure included.
# The command sees MILESTONES_TEST_PG (postgresql://postgres:PASSWORD@127.0.0.1:PORT,
# no database: each test makes its own), MILESTONES_TEST_PG_REQUIRED=1, so
# the PostgreSQL tests fail rather than skip if the server is missing, and
# MILESTONES_TEST_PG_CA, the CA of the server's TLS certificate.
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
# TLS, so that the tests can check every sslmode: a throw-away CA, and a certificate from it
# for 127.0.0.1 only. The server listens on 127.0.0.2 too, an address the certificate does not
# name. The role tls_only (made by the tests) may connect over TLS only, from either.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=milestones test CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
  -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
chmod 600 "$dir/server.key"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/server.key" "$dir/server.crt"
hba="$dir/data/pg_hba.conf"
{ printf 'hostnossl all tls_only 127.0.0.0/30 reject\nhostssl all tls_only 127.0.0.0/30 scram-sha-256\n'; cat "$hba"; } > "$dir/hba"
cat "$dir/hba" > "$hba"
"${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1,127.0.0.2 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" start >/dev/null
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
export MILESTONES_TEST_PG="postgresql://postgres:$password@127.0.0.1:$port"
export MILESTONES_TEST_PG_REQUIRED=1
export MILESTONES_TEST_PG_CA="$dir/ca.crt"
"$@"
