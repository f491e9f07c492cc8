#!/usr/bin/env bash
# Make sure the local PostgreSQL the tests use is accepting connections; start it if not.
set -eu
if pg_isready -q -h 127.0.0.1 -p 5432; then exit 0; fi
version=$(ls /etc/postgresql | sort -n | tail -n 1)
echo "PostgreSQL is down; starting cluster $version/main" >&2
pg_ctlcluster --skip-systemctl-redirect "$version" main start
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
  sleep 1
done
echo "PostgreSQL did not come up on 127.0.0.1:5432 within 30 s" >&2
exit 1
