"""The pipeline owner and service on the tiny SD3 folder: memory modes, the operator's allowed LoRAs picked
per request, sharing the loaded modules with the Edit feature's pipelines, cancel, and the load errors a user
can hit."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace

import httpx
import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from tests.generation.bad_inputs import SERVE_BAD_INPUTS
from tests.generation.conftest import build_tiny_lora
from webapp.backend.local import LocalBackend
from webapp.generation.loras import LoraCatalog, locate
from webapp.generation.params import validate
from webapp.generation.pipeline import (
    NO_GPU_MESSAGE,
    ModelLoadError,
    PipelineOwner,
    explain_load_error,
    resolve_device,
)
from webapp.generation.service import GenerationCancelled, GenerationService
from webapp.settings import ServeSettings

SMALL = dict(prompt="a face", preset="Custom", steps=2, width=64, height=64, seed=3)


def service_for(folder, tmp_path, **settings) -> GenerationService:
    settings = {"device": "cpu", **settings}
    return GenerationService(ServeSettings(sd_model=str(folder), output_dir=tmp_path / "out", **settings))


def backend_for_test(folder, tmp_path, **settings) -> LocalBackend:
    """The single box's backend (checks raw inputs, picks the LoRA by name, writes the PNGs)."""
    settings = {"device": "cpu", **settings}
    return LocalBackend(ServeSettings(sd_model=str(folder), output_dir=tmp_path / "out", **settings))


def first_pixels(result) -> np.ndarray:
    image = result.images[0]
    return np.asarray(Image.open(image.path) if image.path else image.image)


def test_loads_lazily_once_and_reports_steps(tiny_sd3_dir, tmp_path):
    service = service_for(tiny_sd3_dir, tmp_path)
    assert not service.owner.loaded  # nothing loaded at start
    steps: list[tuple[int, int]] = []
    result = service.generate(validate(**SMALL), progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 2), (2, 2)]
    pipe = service.owner.get()
    service.generate(validate(**SMALL))
    assert service.owner.get() is pipe  # loaded once, kept
    assert result.images[0].path is None  # the service writes no file: the backend does
    assert service.status()["loaded"]
    backend = backend_for_test(tiny_sd3_dir, tmp_path)
    saved = backend.generate(**SMALL).images[0]
    assert saved.path.parent == tmp_path / "out" and saved.path.name.endswith("-3.png")
    assert np.array_equal(np.asarray(Image.open(saved.path)), first_pixels(result))  # the PNG holds the image


def test_no_t5_mode_drops_the_t5_encoder(tiny_sd3_dir, tmp_path):
    full = service_for(tiny_sd3_dir, tmp_path / "a")
    no_t5 = service_for(tiny_sd3_dir, tmp_path / "b", memory_mode="no-t5")
    assert no_t5.owner.get().text_encoder_3 is None and full.owner.get().text_encoder_3 is not None
    a, b = full.generate(validate(**SMALL)), no_t5.generate(validate(**SMALL))
    assert first_pixels(a).shape == first_pixels(b).shape == (64, 64, 3)
    assert not np.array_equal(first_pixels(a), first_pixels(b))  # the T5 embedding mattered
    assert no_t5.status()["memory_mode"] == "no-t5"


def test_fp8_mode_stores_transformer_weights_in_float8(tiny_sd3_dir, tmp_path):
    import torch

    service = service_for(tiny_sd3_dir, tmp_path, memory_mode="fp8")
    pipe = service.owner.get()
    dtypes = {p.dtype for p in pipe.transformer.transformer_blocks.parameters()}
    assert torch.float8_e4m3fn in dtypes
    assert first_pixels(service.generate(validate(**SMALL))).shape == (64, 64, 3)


@pytest.mark.parametrize("settings, message", [
    (dict(memory_mode="offload"), "needs one"),
    (dict(memory_mode="huge"), "unknown memory mode 'huge'"),
    (dict(device="tpu"), "unknown device 'tpu'"),
])
def test_impossible_settings_refuse_generation_with_the_reason(tiny_sd3_dir, tmp_path, settings, message):
    service = service_for(tiny_sd3_dir, tmp_path, **settings)
    assert message in service.unavailable_reason
    with pytest.raises(UserError, match=message):
        service.generate(validate(**SMALL))


def test_no_device_means_cuda_or_the_no_gpu_message():
    import torch

    device, reason = resolve_device(None)
    if torch.cuda.is_available():
        assert (device, reason) == ("cuda", None)
    else:
        assert (device, reason) == (None, NO_GPU_MESSAGE)
        assert resolve_device("cuda:1")[1] == NO_GPU_MESSAGE
    assert resolve_device("cpu") == ("cpu", None)


def test_an_allowed_lora_applies_only_to_the_requests_that_name_it(tiny_sd3_dir, tiny_lora, tmp_path):
    service = service_for(tiny_sd3_dir, tmp_path, loras=[(str(tiny_lora), 0.5)])
    assert service.lora_names == ["tiny_style"]
    plain = first_pixels(service.generate(validate(**SMALL)))
    styled = service.generate(replace(validate(**SMALL), loras=(("tiny_style", 0.5),)))
    assert styled.images[0].parameters.loras == [("tiny_style", 0.5)]
    assert not np.array_equal(first_pixels(styled), plain)
    # the next request without a LoRA gets the base model again, bit for bit
    assert np.array_equal(first_pixels(service.generate(validate(**SMALL))), plain)
    assert np.array_equal(first_pixels(service.generate(replace(validate(**SMALL), loras=(("tiny_style", 0.5),)))),
                          first_pixels(styled))


def test_lora_dir_offers_every_file_by_name_with_per_request_scales(tiny_sd3_dir, tmp_path):
    folder = tmp_path / "loras"
    build_tiny_lora(tiny_sd3_dir, folder, seed=1, name="ink")
    build_tiny_lora(tiny_sd3_dir, folder, seed=2, name="watercolour v2")
    service = backend_for_test(tiny_sd3_dir, tmp_path, lora_dirs=[folder])
    assert service.lora_names == ["ink", "watercolour_v2"]

    def make(lora=None, scale=None):
        return first_pixels(service.generate(**SMALL, lora=lora, lora_scale=scale))

    base, ink, water, ink_neg = make(), make("ink"), make("watercolour_v2"), make("ink", -1)
    for a, b in itertools.combinations((base, ink, water, ink_neg), 2):
        assert not np.array_equal(a, b)
    assert np.array_equal(make("(none)"), base) and np.array_equal(make("ink", 1.0), ink)


def test_unknown_lora_name_lists_the_allowed_names_and_no_path(tiny_sd3_dir, tiny_lora, tmp_path):
    service = backend_for_test(tiny_sd3_dir, tmp_path, loras=[(str(tiny_lora), 1.0)])
    for asked in ("/etc/passwd", str(tiny_lora), "../tiny_style", "nope"):
        with pytest.raises(UserError) as err:
            service.generate(**SMALL, lora=asked)
        message = str(err.value)
        assert message == f"no LoRA named {asked!r}; choose one of: tiny_style."
        assert str(tiny_lora.parent) not in message.replace(asked, "")
    bare = backend_for_test(tiny_sd3_dir, tmp_path / "bare")
    with pytest.raises(UserError, match="this server allows none"):
        bare.generate(**SMALL, lora="tiny_style")
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.parametrize("scale, message", [("big", "must be a number"), (float("inf"), "between -10 and 10"),
                                            (True, "must be a number")])
def test_lora_scale_is_checked(tiny_sd3_dir, tiny_lora, tmp_path, scale, message):
    service = backend_for_test(tiny_sd3_dir, tmp_path, loras=[(str(tiny_lora), 1.0)])
    with pytest.raises(UserError, match=message):
        service.generate(**SMALL, lora="tiny_style", lora_scale=scale)


@pytest.mark.parametrize("make, message", [
    (lambda d: dict(specs=[(str(d / "missing.safetensors"), 1.0)]), "not an existing file, and not a hub id"),
    (lambda d: dict(specs=[(str(d / "notes.txt"), 1.0)]), "notes.txt is not .safetensors"),
    (lambda d: dict(dirs=[d / "nowhere"]), "not an existing folder"),
    (lambda d: dict(dirs=[d]), "holds no .safetensors files"),
])
def test_operator_lora_options_are_checked_at_start(tmp_path, make, message):
    (tmp_path / "notes.txt").write_text("not a LoRA")
    with pytest.raises(UserError, match=message):
        LoraCatalog.from_options(**make(tmp_path))


def test_edit_pipelines_share_the_loaded_modules(tiny_sd3_dir, tmp_path):
    service = service_for(tiny_sd3_dir, tmp_path)
    pipe = service.owner.get()
    inpaint = service.pipeline("inpaint")
    img2img = service.pipeline("img2img")
    for other in (inpaint, img2img):
        assert other.transformer is pipe.transformer and other.vae is pipe.vae
        assert other.text_encoder_3 is pipe.text_encoder_3
    assert service.pipeline("inpaint") is inpaint and service.pipeline("text2img") is pipe  # built once
    image = Image.new("RGB", (64, 64), "gray")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    with service.owner.lock:
        out = inpaint(prompt="a face", image=image, mask_image=mask, num_inference_steps=2, height=64, width=64,
                      strength=1.0).images[0]
    assert out.size == (64, 64)


def test_cancel_before_the_next_step_writes_nothing(tiny_sd3_dir, tmp_path):
    service = service_for(tiny_sd3_dir, tmp_path)
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()  # the user presses Cancel during step 1

    with pytest.raises(GenerationCancelled, match="cancelled after step 2 of 20"):
        service.generate(validate(**{**SMALL, "steps": 20}), progress=progress, cancel=cancel)
    assert seen == [1]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_hub_id_without_network_or_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    owner = PipelineOwner("stabilityai/stable-diffusion-3.5-medium", device="cpu")
    with pytest.raises(ModelLoadError, match="not in the local cache"):
        owner.get()


def _hub_error(cls, status: int):
    request = httpx.Request("GET", "https://huggingface.co/api/models/stabilityai/stable-diffusion-3.5-large")
    return cls("Access to model stabilityai/stable-diffusion-3.5-large is restricted.",
               response=httpx.Response(status, request=request))


def test_gated_model_without_token_says_accept_licence_and_set_hf_token(monkeypatch):
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    source = "stabilityai/stable-diffusion-3.5-large"
    wrapped = OSError("Cannot load model")
    wrapped.__cause__ = _hub_error(GatedRepoError, 401)
    message = explain_load_error(source, wrapped)
    assert "accept its licence at https://huggingface.co/stabilityai/stable-diffusion-3.5-large" in message
    assert "HF_TOKEN" in message
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert "your HF_TOKEN has no access yet" in explain_load_error(source, _hub_error(GatedRepoError, 403))
    assert "no model" in explain_load_error("someone/typo", _hub_error(RepositoryNotFoundError, 404))


def test_out_of_memory_advice_names_the_next_memory_mode(tiny_sd3_dir):
    owner = PipelineOwner(str(tiny_sd3_dir), device="cpu", memory_mode="full")
    assert "--memory-mode fp8" in str(owner.oom_error())
    owner = PipelineOwner(str(tiny_sd3_dir), device="cpu", memory_mode="fp8")
    assert "--memory-mode offload" in str(owner.oom_error())


def test_out_of_memory_during_generation_is_a_user_error_and_the_next_job_runs(tiny_sd3_dir, tmp_path):
    import torch

    from webapp.generation.pipeline import OutOfMemory

    service = service_for(tiny_sd3_dir, tmp_path, memory_mode="full")

    def allocation_fails(done, total):  # where a real run would run out: inside the denoising loop
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(OutOfMemory, match="ran out of memory in memory mode 'full'.*--memory-mode fp8"):
        service.generate(validate(**SMALL), progress=allocation_fails)
    assert len(service.generate(validate(**SMALL)).images) == 1


def test_lora_in_fp8_mode_runs_in_the_compute_dtype_with_its_exact_weights(tiny_sd3_dir, tiny_lora, tmp_path):
    import torch
    from safetensors.torch import load_file

    service = backend_for_test(tiny_sd3_dir, tmp_path, memory_mode="fp8", loras=[(str(tiny_lora), 1.0)])
    base = first_pixels(service.generate(**SMALL))
    styled = first_pixels(service.generate(**SMALL, lora="tiny_style"))
    transformer = service.service.owner.get().transformer
    saved = load_file(str(tiny_lora))
    key = next(k for k in saved if k.endswith("transformer_blocks.0.attn.to_q.lora_A.weight"))
    loaded = transformer.transformer_blocks[0].attn.to_q.lora_A["tiny_style"].weight
    assert loaded.dtype == torch.float32  # the compute dtype on CPU, not float8
    assert torch.equal(loaded, saved[key].to(loaded.dtype))  # not rounded through float8
    assert not np.array_equal(styled, base)
    assert np.array_equal(first_pixels(service.generate(**SMALL)), base)


@pytest.mark.parametrize("spec, expected", [
    ("someone/sd35-ink-lora:ink_v2.safetensors", ("someone/sd35-ink-lora", "ink_v2.safetensors")),
    ("someone/sd35-ink-lora", ("someone/sd35-ink-lora", None)),
])
def test_lora_hub_specs_split_into_id_and_weight_name(spec, expected):
    assert locate(spec) == expected


def test_an_allowed_hub_lora_that_cannot_download_names_no_source(tiny_sd3_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    service = backend_for_test(tiny_sd3_dir, tmp_path, loras=[("someone/sd35-ink-lora:ink.safetensors", 1.0)])
    assert service.lora_names == ["ink"]
    with pytest.raises(UserError) as err:
        service.generate(**SMALL, lora="ink")
    assert str(err.value).startswith("the LoRA 'ink' could not be loaded on this server (the server log says why)")
    assert "someone" not in str(err.value)
    assert "someone/sd35-ink-lora" in caplog.text  # the operator finds the cause in the log
    assert len(service.generate(**SMALL).images) == 1  # nothing half-loaded


@pytest.mark.parametrize("case", SERVE_BAD_INPUTS, ids=[c.tried for c in SERVE_BAD_INPUTS])
def test_serve_refuses_a_bad_lora_option_in_one_line(case, capsys):
    from webapp.cli import main

    assert main(["serve", "--port", "0", *case.args]) == case.exit_code
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {case.expect}") and "\n" not in err


def test_an_offered_file_that_is_no_lora_for_this_model_is_refused_and_leaves_nothing(tiny_sd3_dir, tiny_lora,
                                                                                      tmp_path):
    import torch
    from safetensors.torch import save_file

    bogus = tmp_path / "bogus.safetensors"
    save_file({"transformer.nothing_here.lora_A.weight": torch.zeros(4, 4)}, str(bogus))
    service = backend_for_test(tiny_sd3_dir, tmp_path, loras=[(str(bogus), 1.0), (str(tiny_lora), 1.0)])
    base = first_pixels(service.generate(**SMALL))
    with pytest.raises(UserError, match="the LoRA 'bogus' could not be loaded on this server") as err:
        service.generate(**SMALL, lora="bogus")
    assert str(tmp_path) not in str(err.value)
    assert np.array_equal(first_pixels(service.generate(**SMALL)), base)
    assert not np.array_equal(first_pixels(service.generate(**SMALL, lora="tiny_style")), base)
