"""A small, real OpenID Connect provider on 127.0.0.1 (port 0), for the single sign-on tests.

    provider = OIDCProvider(client_id="driftwatch", client_secret="s3cret",
                            redirect_uris=["http://127.0.0.1:8501/oauth2callback"],
                            user=User("ada", "ada@example.com", "Ada Lovelace")).start()
    provider.metadata_url   # what [auth] server_metadata_url points at
    ...; provider.stop()

    /.well-known/openid-configuration   the discovery document (S256 PKCE, RS256, end_session)
    /authorize    auto-approves `user`: 302 to redirect_uri with `code` and the `state` given;
                  remembers `nonce` and the PKCE `code_challenge` for the code
    /token        authorization_code only; client_secret_basic or _post; one use per code;
                  checks redirect_uri and the PKCE verifier; an RS256 id_token and an access_token
    /jwks         the public key (generated at start, never written anywhere)
    /userinfo     the user's claims for a Bearer access_token
    /logout       RP-initiated logout: 302 to a registered post_logout_redirect_uri

It is honest so that failures can be tested: a wrong client secret is 401 `invalid_client`;
an unknown, reused or expired code, another redirect_uri or a wrong code_verifier is 400
`invalid_grant` (RFC 6749 §5.2, RFC 7636 §4.6); an unknown client_id or redirect_uri at
/authorize is an error page, never a redirect (RFC 6749 §4.1.2.1). What was asked is kept in
`authorizations`, `token_requests` and `logouts` for the tests to read.

Signing uses `cryptography` directly rather than Authlib's JOSE code (joserfc), so the provider
does not share an implementation, and thus a bug, with the client it is testing.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from examples.services.background import BackgroundServer

__all__ = ["OIDCProvider", "User"]

CODE_TTL_S = 60  # RFC 6749 §4.1.2: short-lived; a minute is plenty for a test's redirect
TOKEN_TTL_S = 3600


@dataclass(frozen=True)
class User:
    sub: str
    email: str
    name: str


@dataclass
class _Grant:
    """What /authorize promised, redeemed once at /token."""

    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


class OAuthError(Exception):
    """An OAuth error answer: JSON `{"error", "error_description"}` with its status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class OIDCProvider(BackgroundServer):
    """The provider on a background thread (start/stop/context manager: `BackgroundServer`);
    `user` may be changed while it runs."""

    thread_name = "oidc-provider"
    poll_interval = 0.05  # tests start and stop one per test

    def __init__(self, *, client_id: str, client_secret: str, redirect_uris: list[str], user: User,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the test provider serves on the loopback interface only")
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris = list(redirect_uris)
        self.user = user
        super().__init__(host=host, port=port)
        self.authorizations: list[dict[str, str]] = []  # each /authorize query, as given
        self.token_requests: list[dict[str, Any]] = []  # each /token: the form (no secrets) and the answer
        self.logouts: list[dict[str, str]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, User] = {}
        self._lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"provider": self})

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    # -- documents ----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        i = self.issuer
        return {
            "issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks", "userinfo_endpoint": f"{i}/userinfo", "end_session_endpoint": f"{i}/logout",
            "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self._kid,
                          "n": b64url(_int_bytes(numbers.n)), "e": b64url(_int_bytes(numbers.e))}]}

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS, RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3)."""
        header = {"alg": "RS256", "typ": "JWT", "kid": self._kid}
        signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    def _claims(self, user: User) -> dict[str, Any]:
        return {"sub": user.sub, "email": user.email, "email_verified": True, "name": user.name}

    # -- endpoints ----------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect target for an approved request; OAuthError(status=400) means an error page."""
        self.authorizations.append(dict(query))
        client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if client_id != self.client_id:
            raise OAuthError("invalid_client", f"unknown client_id {client_id!r}")
        if redirect_uri not in self.redirect_uris:
            raise OAuthError("invalid_request", f"redirect_uri {redirect_uri!r} is not registered")

        def back(**params: str) -> str:
            if query.get("state") is not None:
                params["state"] = query["state"]
            return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}"

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="only response_type=code")
        if "openid" not in query.get("scope", "").split():
            return back(error="invalid_scope", error_description="an OpenID Connect request needs scope openid")
        method = query.get("code_challenge_method") or ("plain" if query.get("code_challenge") else None)
        if method not in (None, "S256"):
            return back(error="invalid_request", error_description="code_challenge_method must be S256")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(client_id, redirect_uri, query.get("scope", ""), query.get("nonce"),
                                       query.get("code_challenge"), method, time.time() + CODE_TTL_S)
        return back(code=code)

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """The token answer, or OAuthError with the RFC 6749 §5.2 error."""
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id != self.client_id or not secrets.compare_digest(secret.encode(), self.client_secret.encode()):
            raise OAuthError("invalid_client", "client authentication failed", status=401)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code")
        with self._lock:  # one use per code, even when this use fails (RFC 6749 §4.1.2)
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            raise OAuthError("invalid_grant", "the code is unknown, used or expired")
        if grant.client_id != client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier")
        if grant.code_challenge is not None:
            if not verifier:
                raise OAuthError("invalid_grant", "code_verifier is missing")
            expected = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
            if not secrets.compare_digest(expected, grant.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        elif verifier:
            raise OAuthError("invalid_grant", "code_verifier given, but the authorization had no code_challenge")

        user, now = self.user, int(time.time())
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = user
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims = {"iss": self.issuer, "aud": client_id, "azp": client_id, "iat": now, "auth_time": now,
                  "exp": now + TOKEN_TTL_S, "at_hash": b64url(digest[: len(digest) // 2]), **self._claims(user)}
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S,
                "scope": grant.scope, "id_token": self.sign(claims)}

    def userinfo(self, authorization: str | None) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        user = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            raise OAuthError("invalid_token", "no valid Bearer access token", status=401)
        return self._claims(user)

    def logout(self, query: dict[str, str]) -> str:
        self.logouts.append(dict(query))
        target = query.get("post_logout_redirect_uri", "")
        if target not in self.redirect_uris:
            raise OAuthError("invalid_request", f"post_logout_redirect_uri {target!r} is not registered")
        return target


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    provider: OIDCProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _error(self, exc: OAuthError) -> None:
        headers = {}
        if exc.status == 401:  # RFC 6749 §5.2, RFC 6750 §3
            headers["WWW-Authenticate"] = ('Bearer error="invalid_token"' if exc.error == "invalid_token"
                                           else 'Basic realm="oidc-provider"')
        self._json(exc.status, {"error": exc.error, "error_description": exc.description}, headers)

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", {"Location": location})

    def _error_page(self, exc: OAuthError) -> None:
        page = (f"<!doctype html><title>Sign-in refused</title><h1>{html.escape(exc.error)}</h1>"
                f"<p>{html.escape(exc.description)}</p>")
        self._send(exc.status, page.encode(), "text/html; charset=utf-8")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        p = self.provider
        try:
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, p.metadata())
            elif parts.path == "/jwks":
                self._json(200, p.jwks())
            elif parts.path == "/authorize":
                self._redirect(p.authorize(query))
            elif parts.path == "/logout":
                self._redirect(p.logout(query))
            elif parts.path == "/userinfo":
                self._json(200, p.userinfo(self.headers.get("Authorization")))
            else:
                self._json(404, {"error": "not_found", "error_description": parts.path})
        except OAuthError as exc:
            (self._error if parts.path == "/userinfo" else self._error_page)(exc)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True).items()}
        p = self.provider
        if parts.path == "/userinfo":
            try:
                self._json(200, p.userinfo(self.headers.get("Authorization")))
            except OAuthError as exc:
                self._error(exc)
            return
        if parts.path != "/token":
            self._json(404, {"error": "not_found", "error_description": parts.path})
            return
        record: dict[str, Any] = {k: v for k, v in form.items() if k != "client_secret"}
        record["auth"] = "client_secret_basic" if self._basic() else "client_secret_post"
        p.token_requests.append(record)
        try:
            answer = p.token(form, self._basic())
        except OAuthError as exc:
            record["error"] = exc.error
            self._error(exc)
            return
        record["error"] = None
        self._json(200, answer, {"Pragma": "no-cache"})

    def _basic(self) -> tuple[str, str] | None:
        """client_secret_basic: both halves form-urlencoded before base64 (RFC 6749 §2.3.1)."""
        from urllib.parse import unquote_plus

        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            return None
        return unquote_plus(user), unquote_plus(password)
