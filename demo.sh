#!/usr/bin/env bash
# Start the dashboard on an embedded PostgreSQL (pgserver wheel) seeded with the sample
# app in the incident's state. Open http://localhost:8501. Arguments go to tools/demo.py
# (e.g. ./demo.sh --scenario healthy).
source "$(dirname "$0")/tools/bootstrap.sh"
exec python tools/demo.py "$@"
