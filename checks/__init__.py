"""Driftwatch engine: everything that can be tested without a browser.

This package never imports Streamlit; the dashboard calls into it.
"""
__version__ = "0.1.0"
