"""Bad inputs the generation tests try (records for the docs' bad-input table; see tests/bad_input.py).

API cases change one or two of the ``generate`` API's fields from a good request; the server under test offers
one LoRA, ``tiny_style``.
"""

from __future__ import annotations

from tests.bad_input import BadInput

API = "API generate"


def _api(tried: str, expect: str, **kwargs) -> BadInput:
    return BadInput(API, tried, expect, kwargs=kwargs, exit_code=None)


BAD_INPUTS: list[BadInput] = [
    _api("width = 1000", "width must be a multiple of 16, got 1000: use 992 or 1008", width=1000),
    _api("height = 72", "height must be a multiple of 16", height=72),
    _api("steps = 0", "steps must be between 1 and 150, got 0", steps=0),
    _api("steps = 10000", "steps must be between 1 and 150, got 10000", steps=10_000),
    _api("a 20,000-character prompt", "prompt is 20,000 characters, over the limit of 4,000", prompt="x" * 20_000),
    _api("prompt of spaces", "the prompt is empty", prompt="   "),
    _api("preset = SDXL", "unknown preset 'SDXL': choose one of Large, Large Turbo, Medium, Custom", preset="SDXL"),
    _api("Large at 2048×2048", "Large works between 0.25 and 1 MP", preset="Large", width=2048, height=2048),
    _api("guidance = -1", "guidance must be between 0 and 30", guidance=-1),
    _api("seed = 2⁴⁰", "seed must be between -1 and 4294967295, got 1099511627776: -1 picks a random seed",
         seed=2**40),
    _api("seed = NaN", "seed must be a whole number between -1 and 4294967295, got nan", seed=float("nan")),
    _api("images per run = 0", "images per run must be between 1 and 8", num_images=0),
    _api("T5 max tokens = 1000", "T5 max sequence length must be one of 77, 128, 256, 512",
         max_sequence_length=1000),
    # LoRAs: names only; the answer lists the names on offer and nothing about the server's files
    _api("lora = /etc/shadow", "no LoRA named 'shadow'; choose one of: tiny_style.", lora="/etc/shadow"),
    _api("lora = ../../etc/passwd", "no LoRA named '../../etc/passwd'; choose one of: tiny_style.",
         lora="../../etc/passwd"),
    _api("lora = /root", "no LoRA named 'root'; choose one of: tiny_style.", lora="/root"),
    _api("lora = tiny", "no LoRA named 'tiny'; choose one of: tiny_style.", lora="tiny"),
    _api("lora_scale = 11", "LoRA scale must be between -10 and 10, got 11.0", lora="tiny_style", lora_scale=11),
]

SERVE_BAD_INPUTS: list[BadInput] = [
    BadInput("face-studio serve", "--lora /no/such/style.safetensors",
             "--lora /no/such/style.safetensors: not an existing file", ("--lora", "/no/such/style.safetensors")),
    BadInput("face-studio serve", "--lora-dir /no/such/folder", "--lora-dir /no/such/folder: not an existing folder",
             ("--lora-dir", "/no/such/folder")),
]
