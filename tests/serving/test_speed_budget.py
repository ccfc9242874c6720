"""Issue 19: the compile path before a GPU sees it — the recompile budget (counted with torch.compile's
``eager`` backend: dynamo's graphs without code generation), the refused memory-mode combinations, the torch
floor, and fp8's all-or-nothing quantization."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from tests.generation.conftest import build_tiny_lora
from webapp.generation.params import validate
from webapp.generation.service import GenerationService
from webapp.generation.speed import (
    FALLBACK_STATUS,
    RECOMPILE_LIMIT,
    SpeedPlan,
    apply_speed,
    block_variants,
    compiled_graphs,
    is_compiled,
    quantize_fp8,
    recompile_budget,
    recompile_limit_watch,
    resolve_speed,
    set_recompile_limit,
)
from webapp.settings import REPO_ROOT

SMALL = dict(prompt="a portrait photo", steps=2, width=64, height=64, seed=7)


@pytest.fixture(scope="module")
def tiny_lora(tiny_sd3_dir, tmp_path_factory):
    return build_tiny_lora(tiny_sd3_dir, tmp_path_factory.mktemp("lora"))


def _transformer(layers: int, dual: tuple[int, ...]):
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=layers,
                                 attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
                                 caption_projection_dim=16, pooled_projection_dim=16, pos_embed_max_size=16,
                                 qk_norm="rms_norm", dual_attention_layers=dual)


def test_budget_counts_block_variants_batch_shapes_and_lora_states():
    medium, large = _transformer(6, (0, 1, 2)), _transformer(4, ())
    assert block_variants(medium) == 3  # dual attention, plain, the last (context pre-only)
    assert block_variants(large) == 2
    # Medium, no LoRA: 3 variants × (dynamic batch ≥ 2, batch 1) × margin 2 = 12 > torch's default 8
    assert recompile_budget(3) == 12 > RECOMPILE_LIMIT
    assert recompile_budget(3, lora_states=1 + 4) == 60  # four allowed LoRAs: off, or one of four on
    assert recompile_budget(1) == RECOMPILE_LIMIT  # never below torch's default


def test_set_recompile_limit_only_raises():
    import torch._dynamo.config as dynamo_config

    with dynamo_config.patch(recompile_limit=8):
        assert set_recompile_limit(40) == 40 and dynamo_config.recompile_limit == 40
        assert set_recompile_limit(12) == 40  # another server's larger budget stays


def _run(service, batch: int = 1, lora: str | None = None, scale: float | None = None, **overrides):
    request = replace(validate(**{**SMALL, **overrides}), loras=service.owner.catalog.choose(lora, scale))
    if batch == 1:
        return [service.generate(request)]
    return service.run_batch([replace(request, seed=i) for i in range(batch)])


@pytest.fixture()
def eager_compiled(settings_for, tiny_lora):
    """--speed compile on CPU with the ``eager`` backend, one allowed LoRA (preloaded at load)."""
    service = GenerationService(settings_for(speed="compile", max_batch=1, loras=[(str(tiny_lora), 1.0)]))
    service.owner.compile_backend = "eager"
    torch._dynamo.reset()
    pipe = service.owner.get()
    assert is_compiled(pipe.transformer) and service.owner.speed.mode == "compile"
    return service, pipe


def test_sizes_batches_t5_lengths_and_lora_switches_stay_inside_the_budget(eager_compiled):
    service, pipe = eager_compiled
    hits = recompile_limit_watch().hits
    _run(service)  # CFG batch 2: one dynamic graph per block variant
    first = compiled_graphs(pipe.transformer)
    assert first == block_variants(pipe.transformer)
    _run(service, width=96)  # a new size: the same dynamic graph (no recompile)
    _run(service, batch=2, width=128, height=96)  # two requests in one call: batch 4
    _run(service, max_sequence_length=128)  # another T5 length
    assert compiled_graphs(pipe.transformer) == first
    _run(service, guidance=1.0)  # no CFG: batch 1 is specialised by torch, its own graph
    _run(service, lora="tiny_style")  # a LoRA state: its own graphs
    _run(service, lora="tiny_style", scale=0.5, width=96)  # another scale: no recompile (floats stay symbolic)
    _run(service)  # back to none
    graphs = compiled_graphs(pipe.transformer)
    assert graphs <= 2 * block_variants(pipe.transformer) * 2  # (dynamic, batch 1) × (off, the LoRA)
    assert graphs <= service.owner.speed.recompile_limit <= torch._dynamo.config.recompile_limit
    assert recompile_limit_watch().hits == hits  # nothing ran eagerly
    assert service.owner.speed.fallback_note() is None and service.speed_status(64, 64) is None
    assert "recompile budget" not in (service.status()["speed_note"] or "")


def test_a_spent_budget_is_said_in_the_status_and_the_image_still_comes(eager_compiled):
    import torch._dynamo.config as dynamo_config

    service, pipe = eager_compiled
    _run(service)
    with dynamo_config.patch(recompile_limit=compiled_graphs(pipe.transformer)):  # the budget is spent
        result = _run(service, lora="tiny_style", width=96)[0]  # a new LoRA state: cannot compile, runs eager
    assert result.images[0].image.size == (96, 64)
    note = service.owner.speed.fallback_note()
    assert note and "spent" in note and "96×64" in note and "\n" not in note
    assert note in service.status()["speed_note"]  # what the Generate view and /status show
    assert service.speed_status(128, 64) == FALLBACK_STATUS  # a size not compiled before
    assert service.speed_status(64, 64) is None  # compiled before the budget ran out


@pytest.mark.parametrize("memory_mode", ["fp8", "offload"])
@pytest.mark.parametrize("speed", ["compile", "fp8"])
def test_compile_modes_are_refused_with_per_layer_memory_modes(speed, memory_mode):
    plan = resolve_speed(speed, "cuda", memory_mode)
    assert plan.mode == "eager" and plan.requested == speed
    assert plan.note.startswith(f"--speed {speed} does not combine with --memory-mode {memory_mode}")
    assert plan.note.endswith("running eager instead.") and "\n" not in plan.note
    assert resolve_speed("auto", "cuda", memory_mode) == SpeedPlan("auto", "eager")  # auto avoids it silently


def test_service_in_fp8_memory_mode_refuses_compile_and_generates(settings_for):
    service = GenerationService(settings_for(speed="compile", memory_mode="fp8", max_batch=1))
    assert service.generate(validate(**SMALL)).images
    assert service.owner.speed.mode == "eager" and not is_compiled(service.owner.get().transformer)
    assert "does not combine with --memory-mode fp8" in service.status()["speed_note"]


def test_torch_floor_has_recompile_limit():
    """dynamo's ``recompile_limit`` (set at load in the default auto mode on CUDA) exists from torch 2.7."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    major, minor = map(int, re.search(r'^\s*"torch>=(\d+)\.(\d+)', text, re.M).groups())
    assert (major, minor) >= (2, 7)
    assert hasattr(torch._dynamo.config, "recompile_limit")


def _cast_to_float8(linear):
    """A real per-layer transform for the rollback test: the weight stored in float8 (no scale)."""
    linear.weight = torch.nn.Parameter(linear.weight.detach().to(torch.float8_e4m3fn), requires_grad=False)


def test_fp8_failure_partway_rolls_every_layer_back(settings_for, caplog):
    service = GenerationService(settings_for(max_batch=1))
    pipe = service.owner.get()
    before = {n: (m.weight, m.weight.detach().clone()) for n, m in pipe.transformer.named_modules()
              if isinstance(m, torch.nn.Linear)}
    calls = []

    def fails_third(linear):
        calls.append(linear)
        if len(calls) == 3:
            raise RuntimeError("float8 kernel missing on this card")
        _cast_to_float8(linear)

    with pytest.raises(RuntimeError, match="float8 kernel missing"):
        quantize_fp8(pipe.transformer, fails_third)
    for name, module in pipe.transformer.named_modules():
        if name in before:
            weight, values = before[name]
            assert module.weight is weight and module.weight.dtype == values.dtype  # the original Parameter
            assert torch.equal(module.weight, values)
    assert quantize_fp8(pipe.transformer, _cast_to_float8) > 3  # the same layers quantize when nothing fails
    assert pipe.transformer.transformer_blocks[0].attn.to_q.weight.dtype == torch.float8_e4m3fn


def test_fp8_speed_that_fails_leaves_an_eager_pipeline_that_works(settings_for):
    """torchao is absent (or refuses) on this CPU: apply_speed says eager, and the weights are untouched."""
    service = GenerationService(settings_for(max_batch=1))
    pipe = service.owner.get()
    dtypes = {p.dtype for p in pipe.transformer.parameters()}
    state = apply_speed(pipe, SpeedPlan("fp8", "fp8"))
    assert state.mode == "eager" and "torchao float8 failed" in state.plan.note
    assert {p.dtype for p in pipe.transformer.parameters()} == dtypes == {torch.float32}
    assert service.generate(validate(**SMALL)).images
