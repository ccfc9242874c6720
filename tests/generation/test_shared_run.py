"""The one SD run Generate and Edit share (webapp.generation.run.run_sd): several images per run equal
single runs bit for bit, and Edit starts from the loaded model's preset (Large Turbo: 4 steps, no CFG)."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from webapp.backend.local import LocalBackend
from webapp.editing.service import EditRequest, edit_image
from webapp.generation.params import PNG_JSON_KEY, PNG_TEXT_KEY, validate
from webapp.generation.service import GenerationService
from webapp.settings import ServeSettings


def test_image_i_of_a_run_equals_a_single_run_of_seed_plus_i_bit_for_bit(tiny_sd3_dir, tmp_path):
    # 128×96 and 4 steps: here a batched call (one generator per row) differed from single runs by one level
    service = GenerationService(ServeSettings(sd_model=str(tiny_sd3_dir), device="cpu", output_dir=tmp_path))
    request = dict(prompt="a portrait photo, soft light", preset="Custom", steps=4, width=128, height=96)
    steps: list[tuple[int, int]] = []
    run = service.generate(validate(**request, seed=40, num_images=3), progress=lambda *s: steps.append(s))
    for i, image in enumerate(run.images):
        single = service.generate(validate(**request, seed=40 + i)).images[0]
        assert image.seed == single.seed == 40 + i
        assert np.array_equal(np.asarray(image.image), np.asarray(single.image))
    assert steps == [(i, 12) for i in range(1, 13)]  # one bar over the whole run


def test_edit_with_large_turbo_loaded_runs_turbos_4_steps_without_guidance(tiny_sd3_dir, tmp_path):
    # a model folder named after the checkpoint resolves to its preset, as `--sd-model …/…-large-turbo` does
    turbo_dir = shutil.copytree(tiny_sd3_dir, tmp_path / "stable-diffusion-3.5-large-turbo")
    service = LocalBackend(ServeSettings(sd_model=str(turbo_dir), device="cpu", output_dir=tmp_path / "out"))
    assert service.default_preset == "Large Turbo"
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))  # white = regenerate
    steps: list[tuple[int, int]] = []
    result = edit_image(service, photo, EditRequest(prompt="short red hair", strength=1.0, seed=3), mask=mask,
                        progress=lambda *s: steps.append(s))
    # what the pipeline was called with: 4 denoising steps, guidance 0 (no CFG pass)
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    pipe = service.service.pipeline("inpaint")
    assert pipe.guidance_scale == 0.0 and not pipe.do_classifier_free_guidance and pipe.num_timesteps == 4
    # and what the PNG records
    with Image.open(result.path) as png:
        record = json.loads(png.text[PNG_JSON_KEY])["edit"]
        assert (record["steps"], record["guidance"]) == (4, 0.0)
        assert "Steps: 4" in png.text[PNG_TEXT_KEY] and "CFG scale: 0," in png.text[PNG_TEXT_KEY]
