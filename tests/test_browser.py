"""The dashboard as the on-call engineer sees it: a real Streamlit server, a real headless Chromium.

tests/test_dashboard.py drives the script through AppTest, which never renders anything. These
tests start `streamlit run dashboard/app.py` against a real database and read the page a browser
shows: the verdict, the findings in order, the fix SQL behind an expander, the Re-check button,
and no password anywhere in the page. Screenshots go to a pytest tmp dir; the incident page is
also saved as /tmp/driftwatch-incident.png for a human to look at.

The browser is Debian's chromium (/usr/bin/chromium) through Playwright's `executable_path`;
without it every test here skips with the reason (see tests/browser_support.py).
"""
from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
try:
    from playwright.sync_api import expect
except ImportError:  # the tests skip: browser_support.NO_BROWSER says why
    expect = None

from browser_support import StreamlitServer, chromium, needs_chromium
from conftest import SAMPLE_SCHEMA, migration_sql

pytestmark = needs_chromium

SCHEMA = str(SAMPLE_SCHEMA.relative_to(SAMPLE_SCHEMA.parents[3]))  # examples/avatar-studio/prisma/schema.prisma
PASSWORD = "s3cret-Pw-4-browser"
INCIDENT_PNG = Path("/tmp/driftwatch-incident.png")
VERDICT = '[data-testid="stAlertContainer"]:has-text("critical"), [data-testid="stAlertContainer"]:has-text("In sync")'


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Callable[..., StreamlitServer]]:
    """Factory: dashboard(DATABASE_URL=..., ...) -> a healthy Streamlit server with those settings."""
    servers: list[StreamlitServer] = []

    def start(**settings: str) -> StreamlitServer:
        server = StreamlitServer({"DRIFTWATCH_SCHEMA": SCHEMA, **settings}, tmp_path)
        servers.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def open_page(browser, server: StreamlitServer):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(server.url + "drift", wait_until="domcontentloaded")  # the Schema drift page (the app opens on the Overview)
    settle(page, server)
    return page


def settle(page, server: StreamlitServer, timeout: float = 60_000) -> None:
    """Wait until the script run is over and the page shows a verdict or an error."""
    try:
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
        page.wait_for_selector('[data-testid="stAlertContainer"]', timeout=timeout)
    except Exception:
        raise AssertionError(f"the page never settled; server log:\n{server.log()}") from None


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main container, so Playwright's full_page
    would stop at the viewport. Grow the viewport to the content, shoot, and put it back."""
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"]')]"
        ".map(e => e.scrollHeight), document.body.scrollHeight)")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 6000))})
    page.wait_for_timeout(300)  # let the grid and any expander finish laying out
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def no_exception(page) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, shown.first.inner_text()


def verdict(page) -> str:
    """The verdict's words (the alert's icon is a font ligature whose text is its name)."""
    return page.locator(VERDICT).first.locator('[data-testid="stMarkdownContainer"]').inner_text().strip()


def with_password(url: str) -> str:
    """The URL with a password in it; the test servers trust local connections, so it still works."""
    parts = urlsplit(url)
    if parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(parts.username or 'postgres')}:{PASSWORD}@{host}"))


def test_the_incident_page_shows_the_verdict_the_worst_table_first_and_the_fix(
        incident_db, browser, dashboard, shots):
    from checks.check import check_database

    expected = check_database(incident_db, str(SAMPLE_SCHEMA)).report.summary
    server = dashboard(DATABASE_URL=incident_db)
    page = open_page(browser, server)
    no_exception(page)

    text = verdict(page)
    assert text.startswith("Drift: "), text
    assert f"{expected['critical']} critical, {expected['warning']} warning" in text
    assert expected["critical"] == 2, text  # avatar_projects and avatars.projectId
    assert "2 critical" in text

    # The target line names the database the engineer asked for, and the schema file.
    body = page.inner_text("body")
    assert urlsplit(incident_db).path.lstrip("/") in body
    assert SCHEMA in body

    # Worst table first: the first finding and the first fix are about avatar_projects.
    # The grid's code loads lazily after the run ends: expect() waits for it, a count would not.
    # The fixes' expanders (the first expander on the page is the next step's advice).
    labels = page.locator('[data-testid="stExpander"] summary').filter(has_not_text="Next step")
    expect(labels.first).to_contain_text("critical")
    expect(labels.first).to_contain_text("avatar_projects")
    assert labels.count() >= 2
    expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)
    first_row = page.locator('[data-testid="stDataFrame"] table [role="row"]').nth(1)  # 0 is the header
    expect(first_row).to_contain_text("critical")
    expect(first_row).to_contain_text("avatar_projects")

    screenshot(page, shots / "incident.png")
    shutil.copyfile(shots / "incident.png", INCIDENT_PNG)

    # The fix SQL is one click away.
    labels.first.click()
    fixes = page.locator('[data-testid="stExpander"]').filter(has_not_text="Next step")
    code = fixes.first.locator("pre code")
    code.wait_for(state="visible")
    assert 'CREATE TABLE "avatar_projects"' in code.inner_text()
    # Every fix readable to its end: a foreign key cut off before ON DELETE misleads.
    for i in range(1, labels.count()):
        labels.nth(i).click()
    fixes.nth(labels.count() - 1).locator("pre code").wait_for(state="visible")
    cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stExpander"] pre')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 80))""")
    assert not cut, cut
    screenshot(page, shots / "incident-fix-open.png")
    no_exception(page)


def test_re_check_asks_again_and_the_page_renders_without_an_exception(incident_db, browser, dashboard, shots):
    server = dashboard(DATABASE_URL=incident_db)
    page = open_page(browser, server)
    caption = page.get_by_text("Checked at ")
    before = caption.inner_text()
    time.sleep(1.1)  # the caption shows whole seconds: a new check must show a new time

    page.get_by_role("button", name="Re-check").click()
    page.wait_for_function(
        "before => [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
        ".some(e => e.innerText.startsWith('Checked at ') && e.innerText !== before)",
        arg=before, timeout=60_000)
    settle(page, server)
    no_exception(page)
    assert verdict(page).startswith("Drift: ")
    assert caption.inner_text() != before
    screenshot(page, shots / "incident-rechecked.png")


def test_a_database_with_every_migration_applied_shows_in_sync(make_db, browser, dashboard, shots):
    server = dashboard(DATABASE_URL=make_db(migration_sql(0) + migration_sql(1)))
    page = open_page(browser, server)
    no_exception(page)
    text = verdict(page)
    assert text.startswith("In sync"), text
    assert "0 critical, 0 warning" in text
    assert page.locator('[data-testid="stDataFrame"]').count() == 0
    screenshot(page, shots / "in-sync.png")


def test_a_password_in_the_database_url_never_reaches_the_page(incident_db, browser, dashboard, shots):
    url = with_password(incident_db)
    password = urlsplit(url).password
    assert password
    server = dashboard(DATABASE_URL=url)
    page = open_page(browser, server)
    no_exception(page)
    assert verdict(page).startswith("Drift: ")  # the check ran with the password in the URL
    labels = page.locator('[data-testid="stExpander"] summary')
    for i in range(labels.count()):  # open every expander: the fix SQL is page text too
        labels.nth(i).click()
    screenshot(page, shots / "password.png")
    assert password not in page.content()
    assert quote(password) not in page.content()


def test_an_unreachable_database_with_a_password_is_one_error_without_it(browser, dashboard, shots):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = dashboard(DATABASE_URL=f"postgresql://driftwatch:{PASSWORD}@127.0.0.1:{port}/avatar_studio")
    page = open_page(browser, server)
    no_exception(page)
    error = page.locator('[data-testid="stAlertContainer"] [data-testid="stMarkdownContainer"]').first
    expect(error).to_contain_text(f"cannot connect to postgresql://driftwatch@127.0.0.1:{port}/avatar_studio")
    screenshot(page, shots / "unreachable.png")
    assert PASSWORD not in page.content()
