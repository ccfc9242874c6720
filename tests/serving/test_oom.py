"""Out of memory on the GPU path, with an injected ``torch.OutOfMemoryError`` (raised from inside the real tiny
pipeline's transformer): the failed call's tensors are freed BEFORE the cache is emptied, the message names
the memory mode to try (and the LoRA, when loading one ran out), and the next run succeeds."""

from __future__ import annotations

import weakref

import pytest
import torch

from tests.generation.conftest import build_tiny_lora
from webapp.generation.params import validate
from webapp.generation.pipeline import OutOfMemory, compute_dtype
from webapp.generation.service import GenerationService

SMALL = dict(prompt="a portrait photo", steps=2, width=64, height=64, seed=7)
OOM_TEXT = "CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.fixture(scope="module")
def tiny_lora(tiny_sd3_dir, tmp_path_factory):
    return build_tiny_lora(tiny_sd3_dir, tmp_path_factory.mktemp("lora"))


def _oom_in_forward(transformer, refs: list, when=lambda hidden: True):
    """A forward pre-hook that holds a large activation in its frame, then raises the CUDA OOM error."""

    def hook(_module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        if not when(hidden):
            return None
        activation = torch.ones(4, 1024, 1024)  # 16 MB held by this frame (the traceback keeps it alive)
        refs.append(weakref.ref(activation))
        raise torch.OutOfMemoryError(OOM_TEXT)

    return transformer.register_forward_pre_hook(hook, with_kwargs=True)


def test_oom_frees_the_failed_calls_tensors_before_emptying_the_cache_then_runs_again(settings_for, monkeypatch):
    service = GenerationService(settings_for(max_batch=1))
    owner, pipe = service.owner, service.owner.get()
    refs: list = []
    alive_at_release: list[bool] = []
    real_release = owner.release_memory
    monkeypatch.setattr(owner, "release_memory",
                        lambda: (alive_at_release.append(refs[-1]() is not None), real_release())[1])
    handle = _oom_in_forward(pipe.transformer, refs)
    with pytest.raises(OutOfMemory) as caught:
        service.generate(validate(**SMALL))
    handle.remove()
    message = str(caught.value)
    assert "ran out of memory in memory mode 'full'" in message and "--memory-mode fp8" in message
    assert "\n" not in message and OOM_TEXT not in message
    assert alive_at_release == [False]  # the activation was gone when the cache was emptied
    assert caught.value.__cause__ is None and caught.value.__context__ is None  # no traceback kept alive
    assert service.generate(validate(**SMALL)).images[0].image.size == (64, 64)  # the next run works


def test_oom_while_loading_a_lora_says_out_of_memory_not_cannot_load(settings_for, tiny_lora, monkeypatch):
    service = GenerationService(settings_for(max_batch=1, loras=[(str(tiny_lora), 1.0)]))
    pipe = service.owner.get()
    real_load = pipe.load_lora_weights

    def load_then_oom(*args, **kwargs):
        real_load(*args, **kwargs)  # half-loaded: the adapter is in the modules
        raise torch.OutOfMemoryError(OOM_TEXT)

    monkeypatch.setattr(pipe, "load_lora_weights", load_then_oom)
    request = validate(**SMALL)
    from dataclasses import replace

    with_lora = replace(request, loras=service.owner.catalog.choose("tiny_style"))
    with pytest.raises(OutOfMemory, match=r"ran out of memory loading the LoRA 'tiny_style' in memory mode 'full'"):
        service.generate(with_lora)
    assert "tiny_style" not in (pipe.get_list_adapters().get("transformer") or [])  # no half-loaded adapter
    monkeypatch.setattr(pipe, "load_lora_weights", real_load)
    assert service.generate(with_lora).images  # loads on the next request


def test_dtype_is_fp16_on_gpus_without_bf16():
    assert compute_dtype("cuda", bf16_supported=True) == torch.bfloat16
    assert compute_dtype("cuda:1", bf16_supported=False) == torch.float16  # T4, V100
    assert compute_dtype("cpu") == torch.float32 and compute_dtype(None) == torch.float32
