"""Single sign-on end to end: a real OpenID Connect provider, the real dashboard, a real Chromium.

tests/servers/oidc_provider.py is the identity provider (127.0.0.1, a key generated at start).
Its own tests come first and need no browser: Authlib's client signs in against it with PKCE
and verifies the id_token, and each way a token request can be wrong gets its OAuth error.

The browser tests start `streamlit run dashboard/app.py` with `--secrets.files` pointing at
a secrets.toml of their own whose [auth] names the provider (Streamlit fills `{port}` in
redirect_uri), against a real PostgreSQL, and press the real buttons: Sign in goes through
Streamlit's /auth/login, the provider's /authorize, Streamlit's /oauth2callback (the token
exchange and the id_token check, by Authlib) and back, signed in. Screenshots go to
artefacts/screenshots/oidc-*.png. Without Chromium the browser tests skip with the reason.
"""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from browser_support import ARTEFACTS, StreamlitServer, chromium, full_screenshot, needs_chromium
from conftest import SAMPLE_SCHEMA
from servers.oidc_provider import OIDCProvider, User, b64url

CLIENT_ID = "driftwatch-dashboard"
CLIENT_SECRET = "oidc-client-S3cret-do-not-show"
ADA = User("ada-0001", "ada@example.com", "Ada Lovelace")
SCHEMA = str(SAMPLE_SCHEMA.relative_to(SAMPLE_SCHEMA.parents[3]))
CALLBACK = "http://127.0.0.1:8501/oauth2callback"  # for the provider-only tests; nothing listens there


@pytest.fixture
def provider() -> Iterator[OIDCProvider]:
    with OIDCProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[CALLBACK], user=ADA) as p:
        yield p


def authorize(provider: OIDCProvider, **extra: str) -> str:
    """The code /authorize redirects back with (the test plays the browser)."""
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK,
              "scope": "openid email profile", "state": "st4te", **extra}
    answer = httpx.get(f"{provider.issuer}/authorize", params=params)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st4te"]
    return query["code"][0]


# -- the provider on its own ---------------------------------------------------------------------

def test_authlibs_client_signs_in_with_pkce_and_verifies_the_id_token(provider):
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt
    from joserfc.jwk import KeySet

    meta = httpx.get(provider.metadata_url).json()
    client = OAuth2Client(CLIENT_ID, CLIENT_SECRET, scope="openid email profile", redirect_uri=CALLBACK,
                          code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], nonce="n-0nce", code_verifier=verifier)
    back = httpx.get(url).headers["location"]
    assert back.startswith(CALLBACK + "?") and f"state={state}" in back
    token = client.fetch_token(meta["token_endpoint"], authorization_response=back, code_verifier=verifier)
    assert provider.token_requests[-1]["auth"] == "client_secret_basic"

    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json()),
                         algorithms=["RS256"])
    claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"values": [provider.issuer]}},
                         {"nonce": "n-0nce", "client_id": CLIENT_ID, "access_token": token["access_token"]})
    claims.validate()  # iss, aud, exp, iat, nonce, at_hash
    assert (claims["sub"], claims["email"], claims["name"]) == (ADA.sub, ADA.email, ADA.name)
    me = httpx.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.json()["email"] == ADA.email


@pytest.mark.parametrize("wrong, status, error", [
    ("client_secret", 401, "invalid_client"),
    ("code", 400, "invalid_grant"),
    ("code_verifier", 400, "invalid_grant"),
    ("no code_verifier", 400, "invalid_grant"),
    ("redirect_uri", 400, "invalid_grant"),
    ("grant_type", 400, "unsupported_grant_type"),
])
def test_a_wrong_token_request_gets_its_oauth_error_and_no_token(provider, wrong, status, error):
    verifier = secrets.token_urlsafe(48)
    code = authorize(provider, nonce="n", code_challenge_method="S256",
                     code_challenge=b64url(hashlib.sha256(verifier.encode()).digest()))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    auth = (CLIENT_ID, CLIENT_SECRET)
    if wrong == "client_secret":
        auth = (CLIENT_ID, "not-the-secret")
    elif wrong == "no code_verifier":
        del form["code_verifier"]
    elif wrong == "grant_type":
        form["grant_type"] = "password"
    else:
        form[wrong] = form[wrong] + "x"
    answer = httpx.post(f"{provider.issuer}/token", data=form, auth=auth)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert "access_token" not in answer.json() and "id_token" not in answer.json()
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Basic")


def test_a_code_is_good_for_one_exchange_only(provider):
    code = authorize(provider)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    post = {**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}  # client_secret_post
    first = httpx.post(f"{provider.issuer}/token", data=post)
    assert first.status_code == 200 and first.json()["id_token"].count(".") == 2
    again = httpx.post(f"{provider.issuer}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_an_unregistered_redirect_uri_is_an_error_page_not_a_redirect(provider):
    answer = httpx.get(f"{provider.issuer}/authorize", params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:9/steal", "scope": "openid"})
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "is not registered" in answer.text


# -- the dashboard in a browser ------------------------------------------------------------------

SIDEBAR = '[data-testid="stSidebar"]'


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def sso_dashboard(tmp_path: Path, provider: OIDCProvider) -> Iterator[Callable[..., StreamlitServer]]:
    """Factory: sso_dashboard(client_secret=…, **settings) -> a healthy dashboard whose
    secrets.toml [auth] points at `provider`, registered there as a redirect_uri."""
    servers: list[StreamlitServer] = []

    def start(client_secret: str = CLIENT_SECRET, **settings: str) -> StreamlitServer:
        folder = tmp_path / f"secrets-{len(servers)}"
        folder.mkdir()
        secrets_file = folder / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            f'client_id = "{CLIENT_ID}"\n'
            f'client_secret = "{client_secret}"\n'
            f'server_metadata_url = "{provider.metadata_url}"\n')
        server = StreamlitServer({"DRIFTWATCH_SCHEMA": SCHEMA, **settings}, tmp_path,
                                 args=["--secrets.files", str(secrets_file)])
        servers.append(server)
        provider.redirect_uris.append(f"{server.url}oauth2callback")
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def history_url(make_db: Callable[..., str]) -> str:
    """The dashboard's audit log and monitoring store: a PostgreSQL database of its own."""
    return make_db()


def settle(page, server: StreamlitServer, timeout: float = 90_000) -> None:
    try:
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
        page.wait_for_selector(f'{SIDEBAR} [data-testid="stButton"]', timeout=timeout)
    except Exception:
        raise AssertionError(f"the page never settled; server log:\n{server.log()}") from None


def sidebar_says(page, text: str, server: StreamlitServer, timeout: float = 90_000) -> None:
    try:
        page.locator(SIDEBAR).get_by_text(text, exact=True).wait_for(timeout=timeout)
    except Exception:
        shown = page.locator(SIDEBAR).inner_text() if page.locator(SIDEBAR).count() else page.inner_text("body")
        raise AssertionError(f"the sidebar never said {text!r}; it says:\n{shown}\nserver log:\n{server.log()}") from None


def no_traceback(page) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, shown.first.inner_text()
    assert "Traceback" not in page.content()


def back_from_the_provider(page, server: StreamlitServer, press) -> None:
    """Press, then wait for the browser to come back through /oauth2callback and the app to run:
    the page it left said the same things, so its text alone cannot tell that the trip is over."""
    with page.expect_response(lambda r: urlsplit(r.url).path == "/oauth2callback", timeout=60_000):
        press()
    page.wait_for_load_state("domcontentloaded")
    settle(page, server)


def sign_in(page, server: StreamlitServer) -> None:
    page.goto(server.url, wait_until="domcontentloaded")
    settle(page, server)
    sidebar_says(page, "Viewer (read only)", server)
    back_from_the_provider(page, server, page.locator(SIDEBAR).get_by_role("button", name="Sign in", exact=True).click)


def open_actions(page, server: StreamlitServer) -> None:
    page.goto(server.url + "actions", wait_until="domcontentloaded")
    settle(page, server)
    page.get_by_role("button", name="Preview and rehearse").wait_for(timeout=60_000)


@needs_chromium
def test_an_operator_signs_in_rehearses_the_fix_as_themselves_and_signs_out(
        incident_db, history_url, provider, sso_dashboard, browser):
    from checks.history import HistoryStore

    server = sso_dashboard(DATABASE_URL=incident_db, DRIFTWATCH_HISTORY_URL=history_url)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    sign_in(page, server)
    sidebar_says(page, f"Signed in as {ADA.email} (operator)", server)
    no_traceback(page)
    asked = provider.authorizations[-1]  # what Streamlit's Authlib sent: PKCE and a nonce
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"] and asked["nonce"]
    assert provider.token_requests[-1]["error"] is None and provider.token_requests[-1]["code_verifier"]
    full_screenshot(page, ARTEFACTS / "oidc-signed-in-operator.png")

    open_actions(page, server)
    sidebar_says(page, f"Signed in as {ADA.email} (operator)", server)  # a new session reads the cookie
    rehearse = page.get_by_role("button", name="Preview and rehearse")
    assert rehearse.is_enabled()
    rehearse.click()
    page.get_by_text("Rehearsal clean", exact=False).wait_for(timeout=90_000)
    no_traceback(page)
    full_screenshot(page, ARTEFACTS / "oidc-operator-rehearsal.png")

    with HistoryStore.open(history_url) as store:
        [action] = store.list_actions(kind="rehearsal")
    assert action.actor == ADA.email
    assert action.outcome == "rehearsed"
    assert CLIENT_SECRET not in page.content()

    sign_out = page.locator(SIDEBAR).get_by_role("button", name="Sign out", exact=True)
    back_from_the_provider(page, server, sign_out.click)
    sidebar_says(page, "Viewer (read only)", server)
    page.locator(SIDEBAR).get_by_role("button", name="Sign in", exact=True).wait_for()
    [logout] = provider.logouts  # RP-initiated logout went through the provider's end_session_endpoint
    assert logout["client_id"] == CLIENT_ID and logout["id_token_hint"].count(".") == 2
    open_actions(page, server)
    assert page.get_by_role("button", name="Preview and rehearse").is_disabled()
    no_traceback(page)
    full_screenshot(page, ARTEFACTS / "oidc-signed-out.png")


@needs_chromium
def test_a_signed_in_user_not_among_the_operators_is_a_viewer_and_told_why(
        incident_db, history_url, provider, sso_dashboard, browser):
    from checks.history import HistoryStore

    server = sso_dashboard(DATABASE_URL=incident_db, DRIFTWATCH_HISTORY_URL=history_url,
                           DRIFTWATCH_OPERATORS="grace@example.com, linus@example.com")
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    sign_in(page, server)
    sidebar_says(page, f"Signed in as {ADA.email} (viewer)", server)
    open_actions(page, server)
    assert page.get_by_role("button", name="Preview and rehearse").is_disabled()
    reason = f"{ADA.email} is not among DRIFTWATCH_OPERATORS: viewers cannot act."
    page.locator('[data-testid="stAlertContainer"]').get_by_text(reason).wait_for()
    no_traceback(page)
    full_screenshot(page, ARTEFACTS / "oidc-signed-in-viewer.png")
    with HistoryStore.open(history_url) as store:
        assert store.list_actions(kind="rehearsal") == []


@needs_chromium
def test_a_sign_in_the_provider_refuses_or_cannot_answer_is_never_a_traceback_nor_shows_the_secret(
        incident_db, history_url, provider, sso_dashboard, browser):
    wrong = "oidc-client-WRONG-secret"
    server = sso_dashboard(client_secret=wrong, DATABASE_URL=incident_db, DRIFTWATCH_HISTORY_URL=history_url)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    sign_in(page, server)
    # The provider refused the exchange (401 invalid_client); Streamlit logs it, clears its
    # cookies and sends the browser home: still a viewer, offered Sign in again.
    sidebar_says(page, "Viewer (read only)", server)
    page.locator(SIDEBAR).get_by_role("button", name="Sign in", exact=True).wait_for()
    assert [r["error"] for r in provider.token_requests] == ["invalid_client"]
    assert "OAuth token exchange failed" in server.log()
    no_traceback(page)
    for secret in (wrong, CLIENT_SECRET):
        assert secret not in page.content()
    full_screenshot(page, ARTEFACTS / "oidc-token-refused.png")

    provider.stop()  # the provider is down: Streamlit's /auth/login cannot read its metadata
    page.locator(SIDEBAR).get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("Authentication error", exact=True).wait_for(timeout=60_000)
    assert urlsplit(page.url).path == "/auth/login"
    assert "Traceback" not in page.content()
    for secret in (wrong, CLIENT_SECRET):
        assert secret not in page.content()
    page.screenshot(path=str(ARTEFACTS / "oidc-provider-down.png"))
