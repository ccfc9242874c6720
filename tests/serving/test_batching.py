"""The batched queue: concurrent generate requests with the same size/steps/preset share one pipeline call,
and each caller gets exactly its own images (its seeds, its prompt)."""

from __future__ import annotations

import threading

from gradio_client import Client
from PIL import Image

from tests.serving.conftest import max_diff
from webapp.backend import backend_for
from webapp.generation.batching import BATCH_PIXEL_TOLERANCE
from webapp.generation.params import PNG_TEXT_KEY, to_a1111, validate
from webapp.generation.service import GenerationService

REQUESTS = [("a portrait photo, soft light", 11, 1), ("an old sailor with a pipe", 22, 2),
            ("a child laughing in the sun", 33, 1), ("black and white photograph", 44, 1)]


def _concurrently(fn, n: int) -> dict:
    out, errors = {}, []
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    return out


def test_four_concurrent_requests_share_pipeline_calls_and_keep_their_seeds(settings_for, tmp_path):
    alone = GenerationService(settings_for(max_batch=1, output_dir=tmp_path / "alone"))
    batched = GenerationService(settings_for(max_batch=4, output_dir=tmp_path / "batched"))
    requests = [validate(prompt=p, steps=3, width=64, height=64, seed=s, num_images=n) for p, s, n in REQUESTS]
    out = _concurrently(lambda i: batched.generate(requests[i]), 4)
    assert batched.batcher.calls < 4, batched.batcher.batch_sizes
    assert sum(batched.batcher.batch_sizes) == 4
    for i, request in enumerate(requests):
        ref = alone.generate(request)
        got = out[i]
        assert [img.seed for img in got.images] == [request.seed + k for k in range(request.num_images)]
        for a, b in zip(ref.images, got.images, strict=True):
            text = to_a1111(b.parameters)
            assert f"Seed: {a.seed}" in text and request.prompt in text
            assert max_diff(a.image, b.image) <= BATCH_PIXEL_TOLERANCE  # measured here: 0 (bit-identical PNGs)


def test_requests_of_different_sizes_are_not_merged(settings_for):
    service = GenerationService(settings_for(max_batch=4))
    sizes = [64, 96, 64, 96]
    out = _concurrently(lambda i: service.generate(validate(prompt="a face", steps=2, width=sizes[i], height=64,
                                                            seed=i)), 4)
    assert {out[i].images[0].parameters.width for i in range(4)} == {64, 96}
    for i in range(4):
        assert out[i].images[0].image.size == (sizes[i], 64)
    assert service.batcher.calls >= 2  # at least one call per size


def test_one_cancelled_caller_does_not_cancel_the_others(settings_for):
    from webapp.generation.service import GenerationCancelled

    service = GenerationService(settings_for(max_batch=4))
    cancels = [threading.Event() for _ in range(3)]
    results: dict = {}
    barrier = threading.Barrier(3)

    def run(i):
        def progress(done, total):
            if i == 1:
                cancels[1].set()  # this user presses Cancel once the shared batch is running

        barrier.wait()
        try:
            results[i] = service.generate(validate(prompt="a face", steps=6, width=64, height=64, seed=i),
                                          cancel=cancels[i], progress=progress)
        except GenerationCancelled as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert isinstance(results[1], GenerationCancelled)
    assert results[0].images and results[2].images
    assert service.batcher.calls < 3  # they did share a call


def test_gradio_queue_batches_concurrent_generate_calls(settings_for):
    """Through the live app and gradio_client: 4 concurrent /generate calls, fewer pipeline calls than 4."""
    from webapp.server import run_in_thread

    settings = settings_for(max_batch=4)
    backend = backend_for(settings)
    assert backend.lane("generate") == ("generate", 4)
    service = backend.service
    with run_in_thread(settings) as server:
        def call(i):
            client = Client(server.url, verbose=False)
            prompt, seed, n = REQUESTS[i]
            return client.predict(prompt, "", "Custom", 3, 4.5, 64, 64, seed, n, 77, api_name="/generate")

        out = _concurrently(call, 4)
    assert service.batcher.calls < 4, service.batcher.batch_sizes
    for i, (_, seed, n) in enumerate(REQUESTS):
        images, seed_used, _ = out[i]
        assert seed_used == seed and len(images) == n
        for k, item in enumerate(images):
            with Image.open(item["image"]) as png:
                assert f"Seed: {seed + k}" in png.text[PNG_TEXT_KEY]
