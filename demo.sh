#!/usr/bin/env bash
# The incident, live: `driftwatch demo` — an embedded PostgreSQL where the migration that creates
# avatar_projects never ran, the sample app's backend, a Coolify-compatible API, a git repository
# of the app, and the dashboard. Arguments go to `driftwatch demo` (see ./demo.sh --help).
for arg in "$@"; do
  case "$arg" in
    -h|--help)  # help needs only the standard library: nothing is installed or started
      cd "$(dirname "$0")" && exec "${PYTHON:-python3}" tools/demo.py --help ;;
  esac
done
source "$(dirname "$0")/tools/bootstrap.sh"
exec python tools/demo.py "$@"
