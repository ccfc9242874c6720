"""The batched queue under memory pressure and when idle: a batch that runs out of GPU memory is retried in
halves (each caller still gets its own images), and a lone request does not wait for company."""

from __future__ import annotations

import threading

import torch

from tests.serving.conftest import max_diff
from tests.serving.test_oom import _oom_in_forward
from webapp.generation.batching import BATCH_PIXEL_TOLERANCE, BatchCollector, BatchJob
from webapp.generation.params import validate
from webapp.generation.service import GenerationCancelled, GenerationService


def test_a_batch_that_runs_out_of_memory_is_retried_in_halves(settings_for, tmp_path):
    service = GenerationService(settings_for(max_batch=4, output_dir=tmp_path / "batched"))
    alone = GenerationService(settings_for(max_batch=1, output_dir=tmp_path / "alone"))
    pipe = service.owner.get()
    refs: list = []
    # "memory" for 2 requests (CFG: 4 rows) at a time; 4 requests in one call (8 rows) run out
    handle = _oom_in_forward(pipe.transformer, refs, when=lambda hidden: hidden.shape[0] > 4)
    requests = [validate(prompt=f"a face {i}", steps=2, width=64, height=64, seed=10 + i) for i in range(4)]
    jobs = [BatchJob(r) for r in requests]
    try:
        outcomes = service.batcher._call(jobs, lambda done, total: None, lambda: False)
    finally:
        handle.remove()
    assert len(refs) == 1 and service.batcher.oom_splits == 1  # one failed call of 4, then 2 + 2
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    for request, result in zip(requests, outcomes, strict=True):
        assert result.images[0].seed == request.seed
        ref = alone.generate(request)
        assert max_diff(ref.images[0].image, result.images[0].image) <= BATCH_PIXEL_TOLERANCE


def test_a_lone_request_does_not_wait_for_company():
    """With a 10-minute window, a lone request still runs at once (the window is for requests that arrive
    together)."""
    collector = BatchCollector(lambda jobs, on_step, stop: [j.request for j in jobs], cancelled=GenerationCancelled,
                               max_batch=4, wait_s=600)
    request = validate(prompt="a face", steps=2, width=64, height=64, seed=1)
    out: list = []
    thread = threading.Thread(target=lambda: out.append(collector.submit(request)), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert out == [request] and collector.batch_sizes == [1]


def test_oom_of_a_single_request_is_not_retried():
    calls: list[int] = []

    def run(jobs, on_step, stop):
        calls.append(len(jobs))
        raise torch.OutOfMemoryError("CUDA out of memory")

    collector = BatchCollector(run, cancelled=GenerationCancelled, max_batch=4)
    request = validate(prompt="a face", steps=2, width=64, height=64, seed=1)
    jobs = [BatchJob(request), BatchJob(request), BatchJob(request)]
    outcomes = collector._call(jobs, lambda d, t: None, lambda: False)
    assert calls == [3, 2, 1, 1, 1] and all(isinstance(o, torch.OutOfMemoryError) for o in outcomes)
