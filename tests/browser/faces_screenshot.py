"""Make docs/img/faces.png: the Parse view in Chromium on a group scene of synthetic faces, faces numbered.

Not a test: ``python -m tests.browser.faces_screenshot --parser EXPORT_DIR [--out docs/img/faces.png]`` (an export
made by ``face-studio export``; a parser trained on synthetic faces shows real regions, a random one shows noise).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.browser.conftest import PARSE_TIMEOUT_MS
from tests.faces.conftest import scene

GROUP = [(1, 70, 180, 400), (4, 560, 120, 300), (5, 1010, 390, 150)]  # as tests/browser/test_parse_faces.py


def main() -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--parser", type=Path, required=True, help="an export folder (face-studio export)")
    args.add_argument("--out", type=Path, default=Path("docs/img/faces.png"))
    args.add_argument("--dtype", default="fp32")
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        picture = Path(tmp) / "group.png"
        scene(1280, 720, GROUP)[0].save(picture)
        with run_in_thread(ServeSettings(port=0, parser_dir=options.parser)) as handle, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(handle.url)
            page.wait_for_selector(".fs-parse[data-state]", state="attached", timeout=60_000)
            page.select_option("[data-role=backend]", "wasm")
            page.select_option("[data-role=dtype]", options.dtype)
            page.set_input_files("input[data-role=file]", str(picture))
            page.wait_for_selector(".fs-parse[data-state=done]", state="attached", timeout=PARSE_TIMEOUT_MS)
            page.locator(".fs-main").screenshot(path=str(options.out))
            faces = page.locator(".fs-parse").get_attribute("data-faces")
            print(f"{options.out}: {faces} faces; {page.locator('[data-role=status]').text_content()}")
            browser.close()


if __name__ == "__main__":
    main()
