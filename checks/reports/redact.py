"""Redaction: what a report must never carry, whatever the store or the config held.

The history store already scrubs database passwords, but a report gathers text from many
places (smoke-step excerpts that echo a token, error lines with a URL, an action's SQL
comment, the config's resolved secrets), so every string of a report passes through one
Redactor before any renderer sees it, and each rendered output is scanned once more for the
secret values themselves (their URL-, HTML- and JSON-escaped spellings included).

Removed: the secret values resolved from the config; passwords in URLs (`scheme://user:pw@`);
query or keyword parameters such as `password=`, `token=`, `apikey=`; `Authorization`,
`Proxy-Authorization`, `Cookie`, `Set-Cookie` and API-key headers; `Bearer`/`Basic`
credentials; JSON members whose key names a secret. Each is replaced by `***`.
"""
from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
# Shorter values are not replaced verbatim: a 3-character "secret" would blank ordinary words.
# The patterns below still remove them wherever they sit in a URL, a header or a parameter.
MIN_SECRET_CHARS = 4

_SECRET_NAME = r"(?:[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credential|session[_-]?id|signature)[\w-]*)"
_SECRET_KEY = re.compile(
    r"(?:password|passwd|^pwd$|secret|token|api[_-]?key|apikey|credential|authorization|cookie|session[_-]?id|signature)",
    re.IGNORECASE,
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host (any scheme; the user name stays)
    (re.compile(r"\b([a-z][a-z0-9+.\-]*://[^:/@\s\"'<>]*):[^@\s/\"'<>]*@", re.IGNORECASE), r"\1:" + MASK + "@"),
    # "token": "…" in JSON text (a response body echoing a credential)
    (re.compile(r"(\"" + _SECRET_NAME + r"\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"", re.IGNORECASE), r'\1"' + MASK + '"'),
    # headers, in text or as JSON members: Authorization, Cookie, Set-Cookie, X-Api-Key…
    (re.compile(r"\b((?:proxy-)?authorization|set-cookie|cookie|x-api-key|x-auth-token|api-key)(\"?\s*[:=]\s*\"?)[^\"\n\r|)<>`]*",
                re.IGNORECASE), r"\1\2" + MASK),
    # Bearer / Basic credentials anywhere
    (re.compile(r"\b(bearer|basic|token)\s+[A-Za-z0-9._~+/\-]{6,}=*", re.IGNORECASE), r"\1 " + MASK),
    # password=…, token=…, apikey=… in query strings, DSNs and free text
    (re.compile(r"(\b" + _SECRET_NAME + r"\s*=\s*)(?!\*\*\*)[^\s&#\"'<>,;)]+", re.IGNORECASE), r"\1" + MASK),
)


def _spellings(value: str) -> set[str]:
    """The ways a secret can appear once it went through a URL, an HTML page or a JSON string."""
    out = {value, quote(value, safe=""), quote_plus(value), html.escape(value), html.escape(value, quote=False),
           json.dumps(value)[1:-1], unquote(value)}
    out |= {html.escape(json.dumps(value)[1:-1])}
    return {s for s in out if len(s) >= MIN_SECRET_CHARS}


class Redactor:
    """Removes secrets from text and JSON trees. `secrets` are exact values to remove."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        spelled: set[str] = set()
        for value in secrets:
            if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_CHARS:
                spelled |= _spellings(value.strip())
                spelled |= _spellings(value)
        # Longest first, so a secret that contains another is removed whole.
        self._values = sorted(spelled, key=len, reverse=True)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._values)

    def exact(self, text: str) -> str:
        """Remove the known secret values only: safe on any text, scripts and markup included."""
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def text(self, text: str) -> str:
        text = self.exact(text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def tree(self, value: Any) -> Any:
        """A copy of a JSON-like tree with every string redacted and secret-named members masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and _SECRET_KEY.search(key) and isinstance(item, (str, int, float)) \
                        and not isinstance(item, bool) and item != "" and item is not None:
                    out[key] = MASK
                else:
                    out[key] = self.tree(item)
            return out
        if isinstance(value, (list, tuple)):
            return [self.tree(item) for item in value]
        return value


def _url_secrets(text: str) -> list[str]:
    found: list[str] = []
    if "://" not in text:
        return found
    try:
        parts = urlsplit(text)
    except ValueError:
        return found
    try:
        if parts.password:
            found += [parts.password, unquote(parts.password)]
    except ValueError:
        pass
    for pair in parts.query.split("&"):
        key, _, val = pair.partition("=")
        if val and _SECRET_KEY.search(key):
            found += [val, unquote(val)]
    return found


# Header values that are never credentials; any other configured header value is treated as one
# (an `X-Team-Key` is as secret as an `Authorization`).
_PLAIN_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "cache-control", "content-type", "content-length",
    "user-agent", "connection", "host", "origin", "referer", "pragma", "x-requested-with",
})


def secrets_in(config: Any) -> list[str]:
    """Every secret value a configuration holds once resolved: values of secret-named keys and of
    headers, passwords and secret query parameters of URLs. Works on pydantic models, dataclasses
    and plain mappings, so it does not depend on the config module's class names."""
    found: list[str] = []

    def walk(value: Any, key: str = "", in_headers: bool = False) -> None:
        fields = getattr(type(value), "model_fields", None)
        if isinstance(fields, Mapping):
            # Every field, those excluded from dumps too: a config keeps its resolved secrets there.
            value = {name: getattr(value, name, None) for name in fields}
        elif hasattr(value, "__dataclass_fields__"):
            value = {name: getattr(value, name, None) for name in value.__dataclass_fields__}
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if not isinstance(value, (str, bytes, int, float, Mapping, list, tuple, set, frozenset)) and value is not None \
                and hasattr(value, "scheme"):
            value = str(value)  # a URL object (pydantic's Url, yarl, …)
        if isinstance(value, str):
            if (in_headers and key.lower() not in _PLAIN_HEADERS) or (key and _SECRET_KEY.search(key)):
                found.append(value)
                # "Bearer abc": the credential alone may show up elsewhere
                parts = value.split(None, 1)
                if len(parts) == 2 and parts[0].lower() in ("bearer", "basic", "token"):
                    found.append(parts[1])
            found.extend(_url_secrets(value))
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                k = str(k)
                walk(v, k, in_headers or k.lower() in ("headers", "header", "cookies"))
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                walk(item, key, in_headers)

    walk(config)
    return [s for s in dict.fromkeys(found) if s]
