"""Dashboard entrypoint: page setup and routing only; each page lives in app_pages/.

Pages sit in app_pages/ rather than pages/ so Streamlit's old automatic page discovery
stays off and st.navigation is the one place that lists them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts only dashboard/ on sys.path; pages import `dashboard.data` and `checks`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

st.set_page_config(page_title="Driftwatch", page_icon=":material/difference:", layout="wide")

page = st.navigation([
    st.Page("app_pages/drift.py", title="Schema drift", icon=":material/difference:", default=True),
])
page.run()
