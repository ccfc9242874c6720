"""Issue #11.2: parse has its own queue lane. A bounded loopback load test: the GPU queue full of generate jobs
(held on the pipeline's own lock, so "slow" is exact), then 16 parse clients × 3 calls — every parse answered,
each with the label map of its own image — and one generate too many gets a message that says what to do."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.parsing.samples import astronaut
from tests.server.bad_inputs import QUEUE, expect
from tests.server.conftest import start_server
from webapp.backend import backend_for
from webapp.backend.base import GPU_LANE as GPU_CONCURRENCY_ID
from webapp.parsing import FaceParser
from webapp.queue_limits import Lane, full_message
from webapp.views.parse import PARSE_CONCURRENCY_ID

GPU_LIMIT = 3  # the queue records in tests/server/bad_inputs.py say "3 waiting"
PARSE_CLIENTS = 16
CALLS_EACH = 3
# prompt, negative, preset, steps, guidance, width, height, seed, images, T5 max tokens
GENERATE = ("a portrait photo", "", "Custom", 2, 4.5, 64, 64, 7, 1, 77)


def generate_args(i: int) -> tuple:
    """Job i's own request: its own seed and size, so a result handed to the wrong job shows."""
    width, height = ((64, 64), (96, 64), (64, 96))[i % 3]
    return (*GENERATE[:5], width, height, 100 + i, *GENERATE[8:])


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """One image per parse client, each a different crop and size of the astronaut."""
    folder = tmp_path_factory.mktemp("lane-images")
    source = Image.open(astronaut(folder, "source.png"))
    paths = []
    for i in range(PARSE_CLIENTS):
        crop = source.crop((8 * i, 4 * i, 8 * i + 200 + 4 * i, 4 * i + 240)).resize((100 + 2 * i, 120 - i))
        paths.append(folder / f"face-{i}.png")
        crop.save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def server(parser_dir, tiny_sd3_dir, tmp_path_factory):
    handle = start_server(parser_dir=parser_dir, sd_model=str(tiny_sd3_dir), device="cpu", max_queue=GPU_LIMIT,
                          parse_workers=2, output_dir=tmp_path_factory.mktemp("generated"))
    yield handle
    handle.close()


def gpu_waiting(server) -> int:
    """Generates waiting in Gradio's queue (not counting the one running)."""
    lane = server.demo._queue.event_queue_per_concurrency_id.get(GPU_CONCURRENCY_ID)
    return len(lane.queue) if lane else 0


def fill_gpu_queue(server) -> tuple[list, object]:
    """Hold the pipeline's lock (the GPU job inside it blocks: a generate as slow as the test wants), submit
    one running + GPU_LIMIT waiting generates; return the jobs and the held lock."""
    lock = backend_for(server.settings).service.owner.lock
    lock.acquire()
    jobs = []
    for i in range(GPU_LIMIT + 1):
        jobs.append(Client(server.url, verbose=False).submit(*generate_args(i), api_name="/generate"))
    wait_for(lambda: gpu_waiting(server) == GPU_LIMIT, f"{GPU_LIMIT} generates waiting")
    return jobs, lock


def parse_over_call_route(url: str, image: Path) -> list:
    """The page's server fallback (static/js/server-parse.js): upload, POST /call/parse, read the stream."""
    api = url + "gradio_api"
    with httpx.Client(timeout=60) as http:
        with image.open("rb") as file:
            [path] = http.post(f"{api}/upload", files={"files": (image.name, file, "image/png")}).json()
        body = {"data": [{"path": path, "orig_name": image.name, "meta": {"_type": "gradio.FileData"}}, "q8", "off"]}
        event_id = http.post(f"{api}/call/parse", json=body).json()["event_id"]
        text = http.get(f"{api}/call/parse/{event_id}").text
    assert "event: complete" in text, text
    return text


def test_parse_is_answered_while_the_gpu_queue_is_full(server, parser_dir, images) -> None:
    expected = [FaceParser(parser_dir, "q8").parse(Image.open(p).convert("RGB")) for p in images]
    assert len({e.tobytes() for e in expected}) == len(expected)  # a mixed-up answer could not pass

    jobs, lock = fill_gpu_queue(server)
    try:
        def parse_client(i: int) -> list[np.ndarray]:
            client = Client(server.url, verbose=False)
            return [np.asarray(Image.open(client.predict(handle_file(images[i]), "q8", "off", api_name="/parse")[0]))
                    for _ in range(CALLS_EACH)]

        start = time.monotonic()
        with ThreadPoolExecutor(PARSE_CLIENTS) as pool:
            answers = list(pool.map(parse_client, range(PARSE_CLIENTS)))
        parse_s = time.monotonic() - start
        for i, maps in enumerate(answers):
            for labels in maps:
                assert labels.shape == expected[i].shape, f"client {i} got another image's label map"
                assert (labels == expected[i]).mean() >= 0.999, f"client {i}: wrong labels"
        parse_over_call_route(server.url, images[0])  # the page's fallback route too
        # One generate too many: refused at once, saying which queue, how full, and what to do.
        with pytest.raises(AppError, match=re.escape(expect(QUEUE, "a generate while the GPU queue is full (before"))):
            Client(server.url, verbose=False).predict(*GENERATE, api_name="/generate")
        assert gpu_waiting(server) == GPU_LIMIT  # the GPU jobs still wait, untouched
        assert all(not job.done() for job in jobs)
    finally:
        lock.release()
    # Every queued generate then ran, and each got its own image: the one a lone request makes.
    client = Client(server.url, verbose=False)
    for i, job in enumerate(jobs):
        result_images, seed_used, _ = job.result(timeout=120)
        alone, _, _ = client.predict(*generate_args(i), api_name="/generate")
        assert seed_used == 100 + i
        assert np.array_equal(np.asarray(Image.open(result_images[0]["image"])),
                              np.asarray(Image.open(alone[0]["image"]))), f"generate {i}: not its own image"
    print(f"{PARSE_CLIENTS * CALLS_EACH} parses in {parse_s:.1f} s with the GPU queue full")


def test_a_full_gpu_queue_says_how_long_once_run_times_are_known(server) -> None:
    Client(server.url, verbose=False).predict(*GENERATE, api_name="/generate")  # one run time on record
    jobs, lock = fill_gpu_queue(server)
    try:
        with pytest.raises(AppError, match=re.escape(expect(QUEUE, "a generate while the GPU queue is full (run"))):
            Client(server.url, verbose=False).predict(*GENERATE, api_name="/generate")
    finally:
        lock.release()
    for job in jobs:
        job.result(timeout=120)


def test_the_parse_lane_has_its_own_limit(server, images) -> None:
    """The parse lane's own limit refuses parses (not generates) with advice that fits a parse."""
    queue = server.demo._queue
    lane = queue.lanes[PARSE_CONCURRENCY_ID]
    queue.lanes[PARSE_CONCURRENCY_ID] = Lane(lane.name, 0, lane.advice)  # nothing may wait
    try:
        with pytest.raises(AppError, match=re.escape(expect(QUEUE, "a parse while the parse queue is full"))):
            Client(server.url, verbose=False).predict(handle_file(images[0]), "q8", api_name="/parse")
    finally:
        queue.lanes[PARSE_CONCURRENCY_ID] = lane
    Client(server.url, verbose=False).predict(handle_file(images[0]), "q8", api_name="/parse")


def test_a_full_gpu_queue_estimates_the_wait_from_the_steps_and_size_asked(parser_dir, tiny_sd3_dir,
                                                                          tmp_path) -> None:
    """Issue #17.9: before a 150-step 1024² generate has finished, the wait is estimated from what each job
    asks (steps × megapixels × images at the CPU prior of 20 s each), not "under a minute" from nothing.
    A server of its own: no generate may have finished on it."""
    with start_server(parser_dir=parser_dir, sd_model=str(tiny_sd3_dir), device="cpu", max_queue=GPU_LIMIT,
                      output_dir=tmp_path) as fresh:
        _check_big_jobs_estimate(fresh)


def _check_big_jobs_estimate(server) -> None:
    big = (*GENERATE[:3], 150, 4.5, 1024, 1024, 7, 1, 77)
    lock = backend_for(server.settings).service.owner.lock
    lock.acquire()
    jobs = [Client(server.url, verbose=False).submit(*big, api_name="/generate") for _ in range(GPU_LIMIT + 1)]
    try:
        wait_for(lambda: gpu_waiting(server) == GPU_LIMIT, f"{GPU_LIMIT} generates waiting")
        # 4 jobs (3 waiting + 1 running) × 150 steps × 1.048576 MP × 20 s = 12,583 s: about 210 min.
        expected = expect(QUEUE, "a generate while the GPU queue is full of 150-step")
        with pytest.raises(AppError, match=re.escape(expected)):
            Client(server.url, verbose=False).predict(*big, api_name="/generate")
    finally:
        for job in jobs:
            job.cancel()
        backend = backend_for(server.settings)
        for key in list(backend._cancel):  # the running one too: it stops at its first step, not after 150
            backend.cancel(key)
        lock.release()
    for job in jobs:
        try:
            job.result(timeout=120)
        except Exception:  # noqa: BLE001 - cancelled, or refused by the tiny model at 1024²: only the wait counts
            pass


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "The GPU queue is full (16 waiting): try again in a minute."),
    (20.0, "The GPU queue is full (16 waiting, under a minute of work ahead): try again in a minute."),
    (150.0, "The GPU queue is full (16 waiting, about 3 min of work ahead): try again in about 3 min."),
])
def test_full_message_says_how_long_and_what_to_do(seconds, text) -> None:
    assert full_message(Lane("GPU", 16, "try again in a minute"), 16, seconds) == text
