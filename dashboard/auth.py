"""Who may press what: viewers read, operators act.

One of three ways makes someone an operator, chosen by what is configured:

    [auth] in .streamlit/secrets.toml     st.login (OIDC); a signed-in user is an operator
                                          (DRIFTWATCH_OPERATORS, comma-separated emails, narrows it)
    DRIFTWATCH_OPERATOR_PASSWORD          a password form in the sidebar (secrets or environment),
                                          compared in constant time, never logged or echoed
    DRIFTWATCH_DEMO_OPERATOR=1            `driftwatch demo` only: every visitor is the clearly
                                          labelled "demo operator"

With none of them every visitor is a viewer, and each action button is disabled with a help
text that says how to enable it (`ENABLE_HINT`). The name returned by `current()` is what the
audit log records as the actor.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

import streamlit as st

from dashboard.data import setting

DEMO_NAME = "demo operator"
ENABLE_HINT = ("Actions are disabled: nobody can sign in as an operator. Set DRIFTWATCH_OPERATOR_PASSWORD "
               "(in .streamlit/secrets.toml or the environment), or configure [auth] in "
               ".streamlit/secrets.toml for single sign-on.")
_SESSION_KEY = "driftwatch_operator"
_LOGIN_ERROR = "driftwatch_login_error"


@dataclass(frozen=True)
class Visitor:
    name: str | None  # None: an anonymous viewer
    operator: bool
    how: str  # "oidc" | "password" | "demo" | "none"

    @property
    def label(self) -> str:
        if self.how == "demo":
            return "Signed in as the demo operator (demo only: anyone may act)"
        if self.operator:
            return f"Signed in as {self.name} (operator)"
        if self.name:
            return f"Signed in as {self.name} (viewer)"
        return "Viewer (read only)"

    @property
    def disabled_reason(self) -> str | None:
        """Why this visitor's action buttons are disabled, or None when they may act."""
        if self.operator:
            return None
        if self.how == "none":
            return ENABLE_HINT
        if self.how == "oidc" and self.name:
            return f"{self.name} is not among DRIFTWATCH_OPERATORS: viewers cannot act."
        return "Sign in as an operator (sidebar) to act."


def mode() -> str:
    """Which way operators sign in, from what is configured."""
    if (setting("DRIFTWATCH_DEMO_OPERATOR") or "").lower() in ("1", "true", "yes"):
        return "demo"
    if _oidc_configured():
        return "oidc"
    if setting("DRIFTWATCH_OPERATOR_PASSWORD"):
        return "password"
    return "none"


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all
        return False


def current() -> Visitor:
    """The visitor of this session, without drawing anything."""
    how = mode()
    if how == "demo":
        return Visitor(DEMO_NAME, True, "demo")
    if how == "oidc":
        user = st.user
        if not user.get("is_logged_in"):
            return Visitor(None, False, "oidc")
        name = str(user.get("email") or user.get("name") or "signed-in user")
        allowed = [e.strip().lower() for e in (setting("DRIFTWATCH_OPERATORS") or "").split(",") if e.strip()]
        return Visitor(name, not allowed or name.lower() in allowed, "oidc")
    if how == "password":
        name = st.session_state.get(_SESSION_KEY)
        return Visitor(name, bool(name), "password") if name else Visitor(None, False, "password")
    return Visitor(None, False, "none")


def _sign_in() -> None:
    """st.login as the button's callback. A callback runs before the script, outside any
    try around the button, so an incomplete [auth] section or a missing Authlib would be a
    traceback on the page; keep the reason for the sidebar instead."""
    try:
        st.login()
    except Exception as exc:  # StreamlitAuthError, StreamlitMissingAuthlibError, …
        from streamlit.errors import StreamlitAuthError, StreamlitMissingAuthlibError

        known = isinstance(exc, (StreamlitAuthError, StreamlitMissingAuthlibError))
        # Streamlit's own messages name missing keys, never their values; anything else by type only.
        st.session_state[_LOGIN_ERROR] = " ".join(str(exc).split()) if known else type(exc).__name__


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times say nothing about the password."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def sidebar() -> Visitor:
    """The sign-in box in the sidebar; returns who the visitor is after it."""
    visitor = current()
    box = st.sidebar.container(border=True)
    if visitor.how == "demo":
        box.warning(visitor.label, icon=":material/science:")
        return visitor
    box.caption(visitor.label)
    if visitor.how == "oidc":
        if visitor.name:
            box.button("Sign out", on_click=st.logout, key="auth_logout")
        else:
            box.button("Sign in", on_click=_sign_in, key="auth_login", type="primary")
            failed = st.session_state.pop(_LOGIN_ERROR, None)
            if failed:
                box.error(f"Single sign-on is configured but cannot start: {failed}")
    elif visitor.how == "password":
        if visitor.operator:
            if box.button("Sign out", key="auth_signout"):
                st.session_state.pop(_SESSION_KEY, None)
                st.rerun()
        else:
            with box.form("operator_sign_in", clear_on_submit=True, border=False):
                name = st.text_input("Your name", key="auth_name", help="Recorded as the actor in the audit log")
                given = st.text_input("Operator password", type="password", key="auth_password")
                if st.form_submit_button("Sign in as operator"):
                    expected = setting("DRIFTWATCH_OPERATOR_PASSWORD") or ""
                    if not name.strip():
                        box.error("Give your name: the audit log records who acted.")
                    elif expected and password_matches(given, expected):
                        st.session_state[_SESSION_KEY] = name.strip()
                        st.rerun()
                    else:
                        box.error("Wrong operator password.")
    else:
        box.caption(ENABLE_HINT)
    return visitor
