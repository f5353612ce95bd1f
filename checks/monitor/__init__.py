"""Monitoring: what the on-call engineer watches per environment, continuously.

Every probe — a Coolify deployment, a health endpoint, a smoke scenario, the database's drift
and migration history — returns one `CheckResult` (results.py); the poller derives states from
them with pure functions, stores them in the history store, and the dashboard and the report
read them from there. Nothing here imports Streamlit.
"""
