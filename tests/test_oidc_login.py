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
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from servers.oidc_provider import OIDCProvider, User, b64url

CLIENT_ID = "driftwatch-dashboard"
CLIENT_SECRET = "oidc-client-S3cret-do-not-show"
ADA = User("ada-0001", "ada@example.com", "Ada Lovelace")
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
