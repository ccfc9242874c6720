"""Presets, input validation and PNG metadata (no model needed)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from webapp.generation import presets as P
from webapp.generation.params import (
    PNG_JSON_KEY,
    PNG_TEXT_KEY,
    GenerationRequest,
    ImageParameters,
    ParameterError,
    parse_a1111,
    read_png_parameters,
    save_png,
    to_a1111,
    validate,
)


def test_presets_carry_the_published_defaults():
    assert (P.PRESETS["Large"].steps, P.PRESETS["Large"].guidance) == (28, 3.5)
    assert (P.PRESETS["Large Turbo"].steps, P.PRESETS["Large Turbo"].guidance) == (4, 0.0)
    assert (P.PRESETS["Medium"].steps, P.PRESETS["Medium"].guidance) == (40, 4.5)
    assert P.PRESETS["Medium"].skip_guidance_layers == (7, 8, 9)
    assert P.PRESETS["Large"].skip_guidance_layers == ()
    assert P.PRESETS["Medium"].max_megapixels == 2.0 and P.PRESETS["Large"].max_megapixels == 1.0


def test_every_aspect_preset_is_valid_for_large():
    for aspect, (w, h) in P.ASPECTS.items():
        request = validate("x", preset="Large", width=w, height=h)
        assert (request.width, request.height) == (w, h), aspect


@pytest.mark.parametrize("model, preset", [
    ("stabilityai/stable-diffusion-3.5-large", "Large"),
    ("stabilityai/stable-diffusion-3.5-large-turbo", "Large Turbo"),
    ("stabilityai/stable-diffusion-3.5-medium", "Medium"),
    ("/models/sd3.5-large-turbo/", "Large Turbo"),
    ("/tmp/my-finetune", "Custom"),
])
def test_preset_is_inferred_from_the_model(model, preset):
    assert P.preset_for_model(model) == preset


@pytest.mark.parametrize("preset, gib, mode", [
    ("Large", 80, "full"), ("Large", 24, "fp8"), ("Large", 16, "offload"),
    ("Medium", 24, "full"), ("Medium", 17, "fp8"), ("Medium", 12, "offload"), ("Large", None, "full"),
])
def test_auto_memory_mode_follows_gpu_memory(preset, gib, mode):
    assert P.pick_memory_mode(preset, gib) == mode


def test_steps_and_guidance_default_to_the_preset():
    r = validate("a face", preset="Medium", width=1024, height=1024)
    assert (r.steps, r.guidance, r.skip_guidance_layers) == (40, 4.5, (7, 8, 9))
    r = validate("a face", preset="Large Turbo", steps=None, guidance=None)
    assert (r.steps, r.guidance) == (4, 0.0)


def test_numbers_arrive_as_floats_or_strings_from_the_page():
    r = validate("a face", preset="Custom", steps=3.0, width="64", height=64.0, seed="5", num_images=2.0,
                 max_sequence_length="128")
    assert (r.steps, r.width, r.height, r.seed, r.num_images, r.max_sequence_length) == (3, 64, 64, 5, 2, 128)


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(steps="many"), "steps must be a whole number between 1 and 150, got 'many'"),
    (dict(guidance=float("nan")), "guidance must be a number between 0 and 30, got nan"),
    (dict(seed=-5), "seed must be between -1 and 4294967295, got -5: -1 picks a random seed"),
    (dict(steps=200), "steps must be between 1 and 150, got 200: Custom is made for 28"),
    (dict(width=None), "width must be a whole number"),
    (dict(width=32, height=64), "width must be between 64 and 2048"),
    (dict(preset="Medium", width=2048, height=2048), "Medium works between 0.25 and 2 MP"),
    (dict(preset="Large", width=256, height=256), "Large works between 0.25 and 1 MP"),
    (dict(negative_prompt="n" * 5000), "negative prompt is 5,000 characters"),
    (dict(prompt=None), "the prompt is empty"),
    (dict(preset=None), "unknown preset None"),
])
def test_validation_messages_name_the_input(kwargs, message):
    args = {"prompt": "a face", "preset": "Custom", "width": 64, "height": 64, **kwargs}
    with pytest.raises(ParameterError) as err:
        validate(**args)
    assert message in str(err.value)


def test_random_seed_is_drawn_once_and_images_count_up_from_it():
    r = GenerationRequest(prompt="x", seed=-1).with_seed()
    assert 0 <= r.seed <= P.MAX_SEED
    assert r.with_seed() is r
    assert GenerationRequest(prompt="x", seed=P.MAX_SEED).image_seed(1) == 0


def _params(**changes) -> ImageParameters:
    base = dict(prompt="a sailor, old: oil\nsecond line", negative_prompt="blurry, lowres", preset="Medium",
                steps=40, guidance=4.5, width=1024, height=1024, seed=42, max_sequence_length=256,
                model="stabilityai/stable-diffusion-3.5-medium", skip_guidance_layers=[7, 8, 9],
                loras=[("style", 0.8)])
    return ImageParameters(**{**base, **changes})


def test_a1111_text_layout():
    text = to_a1111(_params())
    lines = text.split("\n")
    assert lines[:3] == ["a sailor, old: oil", "second line", "Negative prompt: blurry, lowres"]
    assert lines[3].startswith("Steps: 40, Sampler: Euler (flow matching), CFG scale: 4.5, Seed: 42, Size: 1024x1024")
    assert 'Skip layer guidance: 7 8 9' in lines[3] and 'LoRA: "style: 0.8"' in lines[3]
    assert 'Model: "stabilityai/stable-diffusion-3.5-medium"' not in lines[3]  # no comma/colon: unquoted


def test_a1111_text_parses_back():
    p = _params()
    parsed = parse_a1111(to_a1111(p))
    for key in ("prompt", "negative_prompt", "steps", "guidance", "seed", "width", "height", "preset", "model",
                "max_sequence_length"):
        assert parsed[key] == getattr(p, key), key


def test_parses_a_png_written_by_automatic1111():
    text = ("close-up portrait, freckles\nNegative prompt: cartoon\nSteps: 30, Sampler: DPM++ 2M, Schedule type: "
            "Karras, CFG scale: 7, Seed: 3141592, Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
            'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1')
    parsed = parse_a1111(text)
    assert parsed["prompt"] == "close-up portrait, freckles" and parsed["negative_prompt"] == "cartoon"
    assert (parsed["steps"], parsed["guidance"], parsed["seed"]) == (30, 7.0, 3141592)
    assert (parsed["width"], parsed["height"]) == (832, 1216)
    assert "preset" not in parsed


def test_png_carries_both_chunks_and_json_wins(tmp_path):
    path = save_png(Image.new("RGB", (64, 48)), tmp_path / "out" / "a.png", _params())
    assert not list(tmp_path.rglob("*.part"))  # written atomically
    with Image.open(path) as png:
        assert json.loads(png.text[PNG_JSON_KEY])["seed"] == 42
        assert png.text[PNG_TEXT_KEY].startswith("a sailor")
    found = read_png_parameters(path)
    assert found["loras"] == [["style", 0.8]] and found["skip_guidance_layers"] == [7, 8, 9]
    assert found["prompt"] == _params().prompt


def test_png_with_only_a1111_text_is_read(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_TEXT_KEY, "a cat\nSteps: 20, CFG scale: 5, Seed: 7, Size: 512x768")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png", pnginfo=info)
    found = read_png_parameters(tmp_path / "a.png")
    assert (found["prompt"], found["steps"], found["seed"], found["height"]) == ("a cat", 20, 7, 768)


@pytest.mark.parametrize("make, message", [
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="JPEG"), "is a JPEG file"),
    (lambda p: p.write_bytes(b"not an image"), "is not an image we can read"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, format="PNG"), "carries no generation parameters"),
])
def test_reading_parameters_refuses_what_has_none(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ParameterError, match=message):
        read_png_parameters(path)
