"""State changes to a webhook (Slack-compatible JSON), without ever holding up a round.

    notifier = Notifier(webhook_url, dashboard_url="https://driftwatch.internal")
    notifier.notify_change(change)       # returns at once; a background task sends it
    await notifier.drain()               # at shutdown: give pending messages a few seconds

Messages are queued (bounded: when the webhook is down for long, the oldest are dropped and
counted) and sent in order by one task, each retried with exponential backoff on network
errors, 429 and 5xx (honouring `Retry-After`); other 4xx are permanent and not retried.
The webhook URL is itself a secret (Slack's carries the token): it never appears in a log
line or an error, only "webhook".

The payload is Slack's incoming-webhook shape, `{"text": …}` with mrkdwn, which Mattermost,
Rocket.Chat, Discord's /slack endpoint and most chat tools accept as is.
"""
from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any, TextIO

from .results import utcnow

MAX_QUEUE = 500
ATTEMPTS = 5
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
DRAIN_S = 5.0

_MARK = {"ok": ":large_green_circle:", "warning": ":large_yellow_circle:", "failing": ":red_circle:",
         "error": ":white_circle:", "unknown": ":white_circle:"}


def change_message(change: Any, dashboard_url: str | None = None) -> dict[str, Any]:
    """The webhook payload for one check's state change."""
    what = change.kind if change.name == change.kind else f"{change.kind} {change.name!r}"
    if change.from_state == change.to_state:  # a new deployment, its state unchanged
        text = f":rocket: *{change.environment}*: {change.reason or what}"
        if dashboard_url:
            text += f" · <{dashboard_url}|open the dashboard>"
        return {"text": text, "username": "driftwatch"}
    text = (f"{_MARK.get(change.to_state, '')} *{change.environment}*: {what} "
            f"{change.from_state or 'new'} → *{change.to_state}*")
    if change.reason:
        text += f"\n{change.reason}"
    text += f"\nenvironment is {change.environment_state}"
    if dashboard_url:
        text += f" · <{dashboard_url}|open the dashboard>"
    return {"text": text.strip(), "username": "driftwatch"}


def incident_message(change: Any, dashboard_url: str | None = None) -> dict[str, Any]:
    """The webhook payload for an incident opened or closed."""
    incident = change.incident
    if change.action == "opened":
        text = f":rotating_light: *incident {incident.id} opened*: {incident.title}"
    else:
        minutes = int(incident.duration_s() // 60)
        text = f":white_check_mark: *incident {incident.id} resolved* after {minutes} min: {incident.title}"
    if dashboard_url:
        text += f"\n<{dashboard_url}|open the dashboard>"
    return {"text": text, "username": "driftwatch"}


class Notifier:
    def __init__(self, webhook: str, *, dashboard_url: str | None = None, timeout_s: float = 5.0,
                 attempts: int = ATTEMPTS, first_backoff_s: float = FIRST_BACKOFF_S,
                 log: TextIO | None = None) -> None:
        self.webhook = webhook
        self.dashboard_url = dashboard_url
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s
        self.log = log or sys.stderr
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None

    def notify_change(self, change: Any) -> None:
        self.post(change_message(change, self.dashboard_url))

    def notify_incident(self, change: Any) -> None:
        self.post(incident_message(change, self.dashboard_url))

    def post(self, payload: dict[str, Any]) -> None:
        """Queue one message; never blocks, never raises. Call from the event loop."""
        if len(self._queue) >= MAX_QUEUE:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(payload)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._worker())
        assert self._wake is not None
        self._wake.set()

    async def drain(self, timeout_s: float = DRAIN_S) -> None:
        """Wait (at most `timeout_s`) for queued messages, then stop the sender."""
        if self._task is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._queue and asyncio.get_running_loop().time() < deadline and not self._task.done():
            await asyncio.sleep(0.05)
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._queue:
            self._say(f"webhook: {len(self._queue)} message(s) not sent at shutdown")

    async def _worker(self) -> None:
        import httpx

        assert self._wake is not None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False, follow_redirects=False)
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            payload = self._queue[0]
            await self._send(payload)
            if self._queue and self._queue[0] is payload:
                self._queue.popleft()

    async def _send(self, payload: dict[str, Any]) -> bool:
        import httpx

        delay = self.first_backoff_s
        why = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(self.webhook, json=payload)
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            else:
                if response.status_code < 300:
                    self.sent += 1
                    return True
                why = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # the webhook refuses this message; retrying will not help
                after = _retry_after(response.headers.get("Retry-After"))
                if after is not None:
                    delay = min(max(delay, after), MAX_BACKOFF_S)
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        self.failed += 1
        self._say(f"webhook: gave up on a message after {attempt} attempt(s): {why}")
        return False

    def _say(self, line: str) -> None:
        try:
            self.log.write(f"{utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')} driftwatch poll: {line}\n")
        except (OSError, ValueError):
            pass


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: keep our own backoff
