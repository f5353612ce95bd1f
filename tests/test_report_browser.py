"""The HTML report in a real Chromium: it opens offline (no request beyond the file itself),
its three plotly charts draw, and it prints. Screenshots are saved next to the test's files."""
from __future__ import annotations

from pathlib import Path

from checks.reports import render
from checks.reports.compose import compose
from tests.browser_support import chromium, needs_chromium
from tests.report_scenario import incident_facts


@needs_chromium
def test_the_html_report_opens_offline_draws_its_charts_and_prints(tmp_path: Path):
    facts = incident_facts()
    from checks.reports.facts import Bucket
    from tests.report_scenario import at

    facts.buckets = [Bucket("health", "api health", at(8, 30 + i), 2, 2, 0, 10.0 + i % 5, 20.0) for i in range(60)]
    page_file = tmp_path / "report.html"
    page_file.write_text(render(compose(facts), "html"), encoding="utf-8")
    requests: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=30_000)
        assert errors == []
        assert requests == [page_file.as_uri()]
        assert page.locator(".js-plotly-plot").count() == 3
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(tmp_path / "report-print.png"), full_page=True)
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 3
