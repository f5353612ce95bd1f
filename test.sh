#!/usr/bin/env bash
# Run the whole test suite against real PostgreSQL servers the tests start themselves:
# PostgreSQL 16 from the pgserver wheel, then the system's PostgreSQL (15 on Debian)
# when pg_ctl is installed. Extra arguments go to pytest (e.g. ./test.sh -k drift).
source "$(dirname "$0")/tools/bootstrap.sh"
# Prisma's own schema engine (../shared/tools/prisma-oracle) lets the conformance tests
# round-trip through Prisma; they skip with a reason when Node or the oracle is absent.
oracle_src="$ROOT/../shared/tools/prisma-oracle"
if [ -z "${PRISMA_ORACLE_DIR:-}" ] && [ -f "$oracle_src/oracle.mjs" ] && command -v npm >/dev/null; then
  oracle="$ROOT/.cache/prisma-oracle"
  if [ ! -d "$oracle/node_modules" ]; then
    echo "driftwatch: installing the Prisma oracle into $oracle" >&2
    mkdir -p "$oracle" && cp -r "$oracle_src/." "$oracle/" && chmod -R u+w "$oracle"
    (cd "$oracle" && npm install --no-audit --no-fund --silent >&2) || rm -rf "$oracle/node_modules"
  fi
  [ -d "$oracle/node_modules" ] && export PRISMA_ORACLE_DIR="$oracle"
fi
# tests/test_browser.py opens the dashboard in Debian's chromium through Playwright's
# executable_path (never `playwright install`): install the package when root can; otherwise
# those tests skip and say why.
if [ ! -x "${DRIFTWATCH_CHROMIUM:-/usr/bin/chromium}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "driftwatch: installing Debian's chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } >&2 \
    || echo "driftwatch: could not install chromium: the browser tests will skip" >&2
fi
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
