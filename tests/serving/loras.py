"""LoRA files for the serving tests and ``bench/gpu_smoke.py``: made here with peft, non-zero weights."""

from __future__ import annotations

from pathlib import Path

import torch


def build_text_encoder_lora(sd3_dir: Path, out: Path, seed: int = 0) -> Path:
    """A LoRA on the tiny transformer's attention AND both CLIP text encoders (as many SD3 LoRAs are)."""
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel.from_pretrained(sd3_dir / "transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    encoders = []
    for folder in ("text_encoder", "text_encoder_2"):
        encoder = CLIPTextModelWithProjection.from_pretrained(sd3_dir / folder)
        inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                           target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]), encoder)
        encoders.append(get_peft_model_state_dict(encoder))
    StableDiffusion3Pipeline.save_lora_weights(out, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                               text_encoder_lora_layers=encoders[0],
                                               text_encoder_2_lora_layers=encoders[1],
                                               weight_name="te_style.safetensors")
    return out / "te_style.safetensors"
