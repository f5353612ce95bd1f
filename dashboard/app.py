"""Dashboard entrypoint: page setup, who is signing in, the environment picker, routing.

Pages sit in app_pages/ rather than pages/ so Streamlit's old automatic page discovery
stays off and st.navigation is the one place that lists them. The sidebar (sign-in and
the environment picker) is drawn here, so every page has it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts only dashboard/ on sys.path; pages import `dashboard.data` and `checks`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from dashboard import auth, environments  # noqa: E402

# A file, not ":material/…": Streamlit fetches a material page icon from fonts.gstatic.com, and
# the dashboard must load nothing from the internet (air-gapped on-call networks, the demo).
st.set_page_config(page_title="Driftwatch", page_icon=str(Path(__file__).resolve().parent / "favicon.png"),
                   layout="wide")

_PAGES = Path(__file__).resolve().parent / "app_pages"
pages = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("app_pages/drift.py", title="Schema drift", icon=":material/difference:"),
    st.Page("app_pages/migrations.py", title="Migrations", icon=":material/history:"),
    st.Page("app_pages/health.py", title="Health & smoke", icon=":material/monitor_heart:"),
    st.Page("app_pages/deployments.py", title="Deployments", icon=":material/rocket_launch:"),
    st.Page("app_pages/actions.py", title="Actions", icon=":material/build:"),
    st.Page("app_pages/audit.py", title="Audit log", icon=":material/receipt_long:"),
]
if (_PAGES / "report.py").is_file():  # the incident report (issue 8) once it is there
    pages.append(st.Page("app_pages/report.py", title="Incident report", icon=":material/description:"))

page = st.navigation(pages)
st.sidebar.title("Driftwatch")
environments.picker()
auth.sidebar()
page.run()
