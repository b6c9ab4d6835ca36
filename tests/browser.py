"""A real headless Chromium for tests of pages people read (Playwright driving the system browser).

Tests import the ``browser`` fixture from here; it skips, with the reason, only when no
Chromium binary exists. :func:`visit` opens a local file and records everything the page
does: console messages, uncaught errors, dialogs and every request it makes (requests to
anything but the file itself and ``data:`` URIs are recorded and blocked).

Run as a script to save a screenshot of a report (how ``docs/report.png`` is made)::

    .venv/bin/python tests/browser.py outputs/demo/reports/2025-01.html docs/report.png
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Screenshots and rendered PDF pages from the tests (gitignored).
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
               "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def chromium_binary() -> str | None:
    """``$FORECAST_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else chromium/chrome on PATH."""
    named = os.environ.get("FORECAST_CHROMIUM")
    candidates = [named] if named else []
    candidates += ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]
    for name in candidates:
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


@dataclass
class Visit:
    """A page opened by :func:`visit` and what it did while loading."""

    page: object
    url: str
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Console errors and warnings, and uncaught page errors."""
        return [f"console {kind}: {text}" for kind, text in self.console if kind in ("error", "warning")] + [
            f"page error: {e}" for e in self.errors]

    @property
    def foreign_requests(self) -> list[str]:
        """Requests for anything but the page itself and inline data: URIs."""
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (the system binary), shared by the tests of one session."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no Chromium binary: install Debian's chromium (.ci/run does) or set FORECAST_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=binary, args=LAUNCH_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def visit(browser, path: Path, *, width: int = 1200, height: int = 900) -> Visit:
    """Open a local HTML file in a fresh page and record what it does until it has loaded."""
    url = Path(path).resolve().as_uri()
    page = browser.new_page(viewport={"width": width, "height": height})
    seen = Visit(page=page, url=url)
    page.on("console", lambda msg: seen.console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def route(r) -> None:  # block what is not the page itself (every request is recorded below)
        if r.request.url == url or r.request.url.startswith("data:"):
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda req: seen.requests.append(req.url))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return seen


def screenshot(html: Path, png: Path, *, width: int = 1200, height: int = 1500, quantize: bool = True) -> Path:
    """Save the top ``width`` x ``height`` pixels of a page (256 colours to keep the PNG small)."""
    from playwright.sync_api import sync_playwright

    binary = chromium_binary()
    if binary is None:
        raise SystemExit("no Chromium binary: install chromium or set FORECAST_CHROMIUM")
    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=binary, args=LAUNCH_ARGS, headless=True)
        try:
            seen = visit(instance, html, width=width, height=height)
            seen.page.screenshot(path=str(png), full_page=False)
        finally:
            instance.close()
    if quantize:
        from PIL import Image

        with Image.open(png) as image:
            image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    return png


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python tests/browser.py REPORT.html OUT.png")
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
