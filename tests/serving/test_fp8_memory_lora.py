"""``--memory-mode fp8`` (transformer weights stored in float8, computed in the pipeline dtype) with a LoRA that
also carries text-encoder weights: diffusers cannot hotswap text encoders, so the in-place reload after the
cast touches the transformer only — the LoRA loads and changes the image, as in ``full``."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.serving.conftest import max_diff
from tests.serving.loras import build_text_encoder_lora
from webapp.generation.params import validate
from webapp.generation.service import GenerationService

SMALL = dict(prompt="a portrait photo", steps=2, width=64, height=64, seed=7)


@pytest.fixture(scope="module")
def te_lora(tiny_sd3_dir, tmp_path_factory):
    return build_text_encoder_lora(tiny_sd3_dir, tmp_path_factory.mktemp("te-lora"))


@pytest.mark.parametrize("memory_mode", ["full", "fp8"])
def test_a_text_encoder_lora_loads_and_applies_in_both_memory_modes(settings_for, te_lora, tmp_path, memory_mode):
    service = GenerationService(settings_for(memory_mode=memory_mode, max_batch=1, loras=[(str(te_lora), 1.0)],
                                             output_dir=tmp_path / memory_mode))
    base = validate(**SMALL)
    plain = service.generate(base)
    styled = service.generate(replace(base, loras=service.owner.catalog.choose("te_style")))
    pipe = service.owner.get()
    adapters = pipe.get_list_adapters()
    assert "te_style" in adapters["transformer"] and "te_style" in adapters["text_encoder"]
    lora_a = pipe.transformer.transformer_blocks[0].attn.to_q.lora_A["te_style"]
    assert lora_a.weight.dtype == service.owner.dtype  # in fp8 mode: moved to the compute dtype, values reloaded
    if memory_mode == "fp8":
        assert pipe.transformer.transformer_blocks[0].attn.to_q.base_layer.weight.dtype == torch.float8_e4m3fn
    assert max_diff(plain.images[0].image, styled.images[0].image) > 0  # the LoRA changes the image
