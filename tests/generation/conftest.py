"""Fixtures for the generation tests: the tiny SD3 pipeline folder, a tiny LoRA made with peft, and live
servers (the real app, on 127.0.0.1 and a free port) serving the tiny model as a user's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.generation.tiny_sd3 import build_tiny_sd3

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory) -> Path:
    """The tiny SD3 pipeline saved with ``save_pretrained`` (a user's local diffusers folder)."""
    return build_tiny_sd3(tmp_path_factory.mktemp("tiny-sd3") / "model")


def build_tiny_lora(sd3_dir: Path, out: Path, seed: int = 0, name: str = "tiny_style") -> Path:
    """A LoRA on the tiny transformer's attention projections, made with peft with non-zero weights
    (``init_lora_weights=False``, so it changes the output), saved as diffusers saves LoRAs."""
    import torch
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel.from_pretrained(sd3_dir / "transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = get_peft_model_state_dict(transformer)
    StableDiffusion3Pipeline.save_lora_weights(out, transformer_lora_layers=layers,
                                               weight_name=f"{name}.safetensors")
    return out / f"{name}.safetensors"


@pytest.fixture(scope="session")
def tiny_lora(tiny_sd3_dir, tmp_path_factory) -> Path:
    return build_tiny_lora(tiny_sd3_dir, tmp_path_factory.mktemp("tiny-lora"))


def start_server(**overrides):
    """The real app (``webapp.server.run_in_thread``) with these ServeSettings overrides."""
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    settings = ServeSettings(port=0, **overrides)
    handle = run_in_thread(settings)
    handle.settings = settings
    return handle


@pytest.fixture(scope="module")
def server(tiny_sd3_dir, tiny_lora, tmp_path_factory):
    """``face-studio serve --sd-model <tiny folder> --device cpu --lora <tiny LoRA>`` (offered, off by default)."""
    handle = start_server(sd_model=str(tiny_sd3_dir), device="cpu", parser_dir=tmp_path_factory.mktemp("no-parser"),
                          output_dir=tmp_path_factory.mktemp("generated"), loras=[(str(tiny_lora), 1.0)])
    yield handle
    handle.close()


@pytest.fixture()
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)
