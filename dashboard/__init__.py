"""The Streamlit dashboard: `python -m streamlit run dashboard/app.py` from the repository root."""
