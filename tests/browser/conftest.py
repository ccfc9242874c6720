"""Browser tests: Debian Chromium driven by Playwright against the real app on 127.0.0.1 (free port)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.parsing.samples import astronaut, bad_inputs

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PARSE_TIMEOUT_MS = 180_000  # model load + first frame on 2 busy cores


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("browser-samples")
    return {"wide": astronaut(folder, "astronaut-wide.png", (640, 480)), **bad_inputs(folder / "bad")}


@pytest.fixture(scope="module")
def server(tiny_export_dir):
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    handle = run_in_thread(ServeSettings(port=0, parser_dir=tiny_export_dir))
    yield handle
    handle.close()


class ParsePage:
    """One fresh browser context on the app's Parse view, with every request it makes recorded."""

    def __init__(self, browser, server):
        self.context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
        self.page = self.context.new_page()
        self.requests = []
        self.page.on("request", lambda request: self.requests.append(request))
        self.errors: list[str] = []
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.url = server.url
        self.root = self.page.locator(".fs-parse")

    def open(self) -> ParsePage:
        self.page.goto(self.url)
        self.page.wait_for_selector(".fs-parse[data-state]", state="attached", timeout=60_000)
        return self

    def upload(self, path: Path) -> str:
        """Choose ``path`` in the file input; wait for the parse to end; return the final state."""
        self.page.evaluate("document.querySelector('.fs-parse').dataset.state = 'waiting'")
        self.page.set_input_files("input[data-role=file]", str(path))
        self.page.wait_for_selector(".fs-parse[data-state=done], .fs-parse[data-state=error]",
                                    state="attached", timeout=PARSE_TIMEOUT_MS)
        return self.root.get_attribute("data-state")

    def text(self, role: str) -> str:
        return self.page.locator(f"[data-role={role}]").text_content() or ""

    def download(self, kind: str) -> Path:
        with self.page.expect_download() as info:
            self.page.click(f"[data-download={kind}]")
        return Path(info.value.path())

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def parse_page(browser, server):
    page = ParsePage(browser, server)
    yield page
    page.close()
