"""A real Streamlit server and a real headless Chromium for tests/test_browser.py.

The browser is Debian's `chromium` package driven by Playwright through `executable_path`:
Playwright's own browser download (`playwright install`) is never used. Without
/usr/bin/chromium (or DRIFTWATCH_CHROMIUM) the browser tests skip and say why.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Sequence

import httpx
import pytest

from checks.shell import stop_group

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("DRIFTWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Not inherited from the shell running the tests: each test says what it wants (sign-in mode included).
SETTINGS = ("DATABASE_URL", "DRIFTWATCH_SCHEMA", "DRIFTWATCH_DEMO", "DRIFTWATCH_STATE_DIR", "DRIFTWATCH_CONFIG",
            "DRIFTWATCH_DEMO_OPERATOR", "DRIFTWATCH_OPERATOR_PASSWORD", "DRIFTWATCH_OPERATORS")


def _why_no_browser() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return (f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium; "
                "./test.sh does it when run as root) or set DRIFTWATCH_CHROMIUM")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -r requirements-dev.txt"
    return None


NO_BROWSER = _why_no_browser()
needs_chromium = pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium through Playwright (`executable_path`, never a download), closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60, *, log=lambda: "") -> None:
    """Until Streamlit on 127.0.0.1:`port` answers its health check; fails at once when `proc`
    (the process serving it) has exited, with `log()`'s tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout} s:\n{log()}")


class StreamlitServer:
    """`streamlit run dashboard/app.py` from the repository root, in its own process group.

    `args` are more Streamlit options, e.g. `--secrets.files FILE` so that a test's own
    secrets.toml is read instead of the repository's .streamlit/secrets.toml.
    """

    def __init__(self, settings: dict[str, str], log_dir: Path, args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
        env.update(settings)
        self.log_path = log_dir / f"streamlit-{self.port}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
             "--server.headless", "true", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_healthy(self.port, self.proc, timeout, log=self.log)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop the server and anything it started: the whole process group."""
        stop_group(self.proc)
        self._log.close()


ARTEFACTS = ROOT / "artefacts" / "screenshots"  # git-ignored: for a human to look at after a run


def full_screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main container, so grow the viewport to the
    content, shoot, and put it back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"]')]"
        ".map(e => e.scrollHeight), document.body.scrollHeight)")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 6000))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def render_page(port: int, timeout: float = 90) -> str:
    """Run the dashboard's default page over Streamlit's own websocket, as a browser does, and
    return every message it sent back (text, tables) as one string."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    chunks = []
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=10,
                 max_size=None) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        ws.send(msg.SerializeToString())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            forward = ForwardMsg()
            forward.ParseFromString(raw)
            chunks.append(raw)
            if forward.WhichOneof("type") == "script_finished":
                break
        else:
            raise AssertionError("the page did not finish")
    return b"".join(chunks).decode("utf-8", errors="replace")
