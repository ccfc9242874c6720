"""The page's own Gradio client shows the GPU-queue-full message (not Gradio's fixed "queue is full" text)."""

from __future__ import annotations

import re
import time

import pytest
from gradio_client import Client

from tests.server.conftest import start_server
from webapp.backend import backend_for
from webapp.backend.base import GPU_LANE as GPU_CONCURRENCY_ID

pytestmark = pytest.mark.browser

# prompt, negative, preset, steps, guidance, width, height, seed, images, T5 max tokens
GENERATE = ("a portrait photo", "", "Custom", 2, 4.5, 64, 64, 7, 1, 77)


def test_the_generate_page_says_the_gpu_queue_is_full(browser, tiny_sd3_dir, tmp_path) -> None:
    handle = start_server(parser_dir=tmp_path / "no-parser", sd_model=str(tiny_sd3_dir), device="cpu", max_queue=1,
                          output_dir=tmp_path / "out")
    lock = backend_for(handle.settings).service.owner.lock
    lock.acquire()  # the first job blocks inside the pipeline: one running + one waiting = full
    jobs = []
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    try:
        page.goto(handle.url)
        page.get_by_role("tab", name="Generate").click()
        jobs = [Client(handle.url, verbose=False).submit(*GENERATE, api_name="/generate") for _ in range(2)]
        deadline = time.monotonic() + 30
        while handle.demo._queue.waiting(GPU_CONCURRENCY_ID) < 1:
            assert time.monotonic() < deadline, "the second generate never queued"
            time.sleep(0.05)
        page.locator("#generate-run").click()
        full = re.compile(r"The GPU queue is full \(1 waiting, .* of work ahead\): try again in ")
        page.get_by_text(full).first.wait_for(timeout=30_000)
    finally:
        page.close()
        lock.release()
        for job in jobs:
            job.result(timeout=120)
        handle.close()
