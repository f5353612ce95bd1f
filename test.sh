#!/usr/bin/env bash
# Run the whole test suite against real PostgreSQL servers the tests start themselves:
# PostgreSQL 16 from the pgserver wheel, then the system's PostgreSQL (15 on Debian)
# when pg_ctl is installed. Extra arguments go to pytest (e.g. ./test.sh -k drift).
source "$(dirname "$0")/tools/bootstrap.sh"
status=0
echo "== tests on PostgreSQL from the pgserver wheel" >&2
DRIFTWATCH_TEST_PG=pgserver python -m pytest -q "$@" || status=$?
if [ -z "${DRIFTWATCH_TEST_DATABASE_URL:-}" ] && python -c 'import sys; from checks.localpg import find_pg_ctl; sys.exit(0 if find_pg_ctl() else 1)'; then
  echo "== tests on the system PostgreSQL ($(pg_ctl --version 2>/dev/null || echo pg_ctl))" >&2
  DRIFTWATCH_TEST_PG=system python -m pytest -q "$@" || status=$?
else
  echo "== no system PostgreSQL (pg_ctl) found: ran on the pgserver wheel only" >&2
fi
exit $status
