"""--speed: eager / compile / fp8 / auto, resolved in one place and applied once when the pipeline loads."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

from tests.serving.conftest import max_diff
from webapp.generation.params import validate
from webapp.generation.service import GenerationService
from webapp.generation.speed import (
    COMPILE_PIXEL_TOLERANCE,
    COMPILING_STATUS,
    SpeedPlan,
    apply_speed,
    fp8_unavailable_reason,
    is_compiled,
    resolve_speed,
)
from webapp.settings import REPO_ROOT

SMALL = dict(prompt="a portrait photo", steps=2, width=64, height=64, seed=7)


def test_auto_is_eager_on_cpu_and_compile_on_cuda_in_full_memory():
    assert resolve_speed("auto", "cpu", "full") == SpeedPlan("auto", "eager")
    assert resolve_speed("auto", "cuda", "full") == SpeedPlan("auto", "compile")
    assert resolve_speed("auto", "cuda", "offload").mode == "eager"  # whole-model moves: not a compile target
    assert resolve_speed("eager", "cuda", "full").mode == "eager"
    assert resolve_speed("compile", "cpu", "full") == SpeedPlan("compile", "compile")


def test_fp8_on_cpu_falls_back_to_eager_with_one_clear_line():
    reason = fp8_unavailable_reason("cpu")
    assert "compute capability ≥ 8.9" in reason and "cpu" in reason
    plan = resolve_speed("fp8", "cpu", "full")
    assert plan.mode == "eager"
    assert plan.note.endswith("running eager instead.") and "\n" not in plan.note


def test_fp8_refused_service_keeps_generating_eagerly(settings_for):
    service = GenerationService(settings_for(speed="fp8", max_batch=1))
    result = service.generate(validate(**SMALL))
    assert result.images[0].image.size == (64, 64)
    assert service.owner.speed.mode == "eager"
    assert not is_compiled(service.owner.get().transformer)
    status = service.status()
    assert status["speed"] == "eager" and status["speed_note"].startswith("--speed fp8 needs a CUDA GPU")


def test_torchao_failure_at_apply_falls_back_to_eager(settings_for, caplog):
    """Forcing the fp8 plan onto a CPU pipeline: torchao itself refuses; the pipeline stays eager and works."""
    service = GenerationService(settings_for(max_batch=1))
    pipe = service.owner.get()
    with caplog.at_level(logging.WARNING, logger="webapp.generation.speed"):
        state = apply_speed(pipe, SpeedPlan("fp8", "fp8"))
    assert state.mode == "eager" and "torchao float8 failed" in state.plan.note
    assert any("torchao float8 failed" in r.message for r in caplog.records)
    assert service.generate(validate(**SMALL)).images


def test_cli_speed_fp8_on_cpu_prints_one_note_and_serves(tiny_sd3_dir, tmp_path):
    """`face-studio serve --speed fp8 --device cpu`: one `note:` line on stderr, and the server starts."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp", "serve", "--sd-model", str(tiny_sd3_dir), "--device", "cpu", "--speed",
         "fp8", "--port", "0", "--parser", str(tmp_path / "no-parser"), "--output-dir", str(tmp_path / "out")],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        notes = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("note: --speed"):
                notes.append(line)
                break
        assert len(notes) == 1, "no speed note on stderr"
        assert "compute capability" in notes[0] and "running eager instead." in notes[0]
        time.sleep(1.0)
        assert proc.poll() is None, "the server exited after the note"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_compile_mode_compiles_blocks_matches_eager_and_bounds_recompiles(settings_for):
    """--speed compile on CPU (inductor): regional compile on the first request, the same image as eager within
    COMPILE_PIXEL_TOLERANCE, dynamic shapes from the first call (no recompile for a new size), and a size gives
    the same image before and after another size ran (issue 19, item 6)."""
    import torch

    eager = GenerationService(settings_for(speed="eager", max_batch=1, output_dir=settings_for().output_dir / "e"))
    compiled = GenerationService(settings_for(speed="compile", max_batch=1))
    assert compiled.speed_status(64, 64) == COMPILING_STATUS  # before loading: the first run compiles
    pipe = compiled.owner.get()
    assert is_compiled(pipe.transformer) and not is_compiled(eager.owner.get().transformer)
    assert compiled.speed_status(64, 64) == COMPILING_STATUS
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    a, b = eager.generate(validate(**SMALL)), compiled.generate(validate(**SMALL))
    assert max_diff(a.images[0].image, b.images[0].image) <= COMPILE_PIXEL_TOLERANCE
    graphs_after_one_size = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs_after_one_size > 0  # the blocks really went through dynamo and inductor
    assert compiled.speed_status(64, 64) is None
    assert compiled.speed_status(96, 64) is None  # dynamic from the first call: nothing to compile
    compiled.generate(validate(**{**SMALL, "width": 96}))
    c = compiled.generate(validate(**{**SMALL, "width": 128, "seed": 8}))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs_after_one_size  # no recompile
    d = eager.generate(validate(**{**SMALL, "width": 128, "seed": 8}))
    assert max_diff(c.images[0].image, d.images[0].image) <= COMPILE_PIXEL_TOLERANCE
    again = compiled.generate(validate(**SMALL))  # 64² after 96 and 128 ran: the same graph, the same image
    assert max_diff(b.images[0].image, again.images[0].image) == 0
