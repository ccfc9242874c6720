"""Face-aware editing on the tiny SD3 pipeline: exact composite, label table, shared modules, errors, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from webapp.editing.masks import MaskError, feather, grow, regions_to_mask
from webapp.editing.service import EditRequest, edit_image, restyle_image, working_size
from webapp.generation.params import PNG_JSON_KEY, PNG_TEXT_KEY

FAST = dict(steps=4, seed=11)


def test_outside_feathered_mask_is_bit_exact_inside_changed(edit_service, portrait, hair_labels) -> None:
    result = edit_image(edit_service, portrait, EditRequest(prompt="short red curly hair", **FAST),
                        regions="hair", labels=hair_labels)
    before, after = np.asarray(portrait), np.asarray(result.image)
    assert after.shape == before.shape
    outside = result.alpha == 0
    assert outside.sum() > 0.5 * outside.size
    assert np.array_equal(before[outside], after[outside]), "a pixel outside the feathered mask changed"
    inside = result.mask
    assert inside.sum() >= (hair_labels == 13).sum()  # grown by 4 px
    changed = (before[inside] != after[inside]).any(axis=-1).mean()
    assert changed > 0.9, f"only {changed:.0%} of the masked pixels changed"
    # The feather reaches outward only: every selected pixel is fully regenerated.
    assert (result.alpha[hair_labels == 13] == 255).all()
    # The PNG records regions, mask settings and prompt.
    saved = Image.open(result.path)
    record = json.loads(saved.text[PNG_JSON_KEY])["edit"]
    assert record["regions"] == ["hair"] and record["grow"] == 4 and record["feather"] == 8
    assert record["prompt"] == "short red curly hair" and record["seed"] == 11
    assert "Regions: hair" in saved.text[PNG_TEXT_KEY]


def test_same_seed_same_edit(edit_service, portrait, hair_labels) -> None:
    a = edit_image(edit_service, portrait, EditRequest(prompt="blonde", **FAST), regions="hair", labels=hair_labels)
    b = edit_image(edit_service, portrait, EditRequest(prompt="blonde", **FAST), regions="hair", labels=hair_labels)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_class_names_go_through_the_label_table() -> None:
    labels = np.arange(19, dtype=np.uint8).reshape(1, 19).repeat(3, axis=0)
    mask, ids = regions_to_mask(labels, "hair")
    assert ids == [13] and np.array_equal(mask, labels == 13)
    mask, ids = regions_to_mask(labels, ["lips", "Hat"])
    assert ids == [11, 12, 14] and np.array_equal(mask, np.isin(labels, [11, 12, 14]))
    with pytest.raises(MaskError, match="unknown region name.*'beard'"):
        regions_to_mask(labels, "hair,beard")


def test_grow_shrink_and_feather() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[15:25, 15:25] = True
    assert grow(mask, 3).sum() > mask.sum() and grow(mask, 3)[12, 20] and not grow(mask, 3)[11, 20]
    assert grow(mask, -3).sum() == 4 * 4
    alpha = feather(mask, 6)
    assert (alpha[mask] == 255).all() and 0 < alpha[13, 20] < 255 and alpha[0, 0] == 0


def test_inpaint_reuses_the_generate_pipeline_modules(edit_service) -> None:
    base = edit_service.owner.get()
    inpaint = edit_service.inpaint_pipeline()
    img2img = edit_service.img2img_pipeline()
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        assert getattr(inpaint, name) is getattr(base, name), name
        assert getattr(img2img, name) is getattr(base, name), name
    assert edit_service.inpaint_pipeline() is inpaint  # built once


def test_restyle_changes_the_whole_image(edit_service, portrait) -> None:
    result = restyle_image(edit_service, portrait, EditRequest(prompt="oil painting", strength=0.6, **FAST))
    assert result.image.size == portrait.size
    assert (np.asarray(result.image) != np.asarray(portrait)).any(axis=-1).mean() > 0.5


@pytest.mark.parametrize("case, expected", [
    ("size", "the mask is 10×10 but the image is 200×152"),
    ("empty", "the mask is empty"),
    ("everything", "covers 100.0% of the image"),
    ("unknown", "unknown region name(s): 'beard'"),
    ("absent", "none of hat was found in this image"),
    ("strength", "strength must be between 0.05 and 1"),
    ("nothing", "nothing to regenerate"),
])
def test_bad_inputs(edit_service, portrait, hair_labels, case: str, expected: str) -> None:
    h, w = hair_labels.shape
    kwargs = {
        "size": dict(mask=Image.new("L", (10, 10), 255)),
        "empty": dict(mask=Image.new("L", (w, h), 0)),
        "everything": dict(mask=Image.new("L", (w, h), 255)),
        "unknown": dict(regions="hair,beard", labels=hair_labels),
        "absent": dict(regions="hat", labels=hair_labels),
        "strength": dict(regions="hair", labels=hair_labels),
        "nothing": dict(),
    }[case]
    req = EditRequest(prompt="x", strength=1.5 if case == "strength" else 0.85, **FAST)
    with pytest.raises(UserError) as info:
        edit_image(edit_service, portrait, req, **kwargs)
    assert expected in str(info.value)


def test_working_size_keeps_aspect_and_multiples_of_16() -> None:
    assert working_size(1024, 1024) == (1024, 1024)
    w, h = working_size(4000, 3000)
    assert w % 16 == 0 and h % 16 == 0 and w * h <= 1024 * 1024 * 1.05 and abs(w / h - 4 / 3) < 0.02
    assert working_size(200, 152) == (336, 256)


def test_cli_edit(tiny_sd3_dir: Path, tiny_export_dir: Path, tmp_path: Path) -> None:
    from skimage import data

    from webapp.parsing import get_parser

    photo = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).resize((160, 160)).save(photo)
    labels = get_parser(tiny_export_dir).parse(Image.open(photo).convert("RGB"))
    # Random tiny parser: pick a class it actually predicts on this photo (not background).
    counts = np.bincount(labels.ravel(), minlength=19)
    counts[0] = 0
    from face_studio.labels import NAMES

    region = NAMES[int(counts.argmax())]
    out = tmp_path / "edited.png"
    cmd = [sys.executable, "-m", "webapp", "edit", str(photo), "--regions", region, "--prompt", "red",
           "--out", str(out), "--sd-model", str(tiny_sd3_dir), "--device", "cpu", "--parser", str(tiny_export_dir),
           "--steps", "3", "--seed", "5", "--feather", "0", "--grow", "0", "--save-mask", str(tmp_path / "m.png")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote {out}" in proc.stdout
    before, after = np.asarray(Image.open(photo).convert("RGB")), np.asarray(Image.open(out).convert("RGB"))
    keep = labels != NAMES.index(region)
    assert np.array_equal(before[keep], after[keep])
    assert json.loads(Image.open(out).text[PNG_JSON_KEY])["edit"]["regions"] == [region]
    bad = subprocess.run(cmd[:5] + ["--regions", "beard", "--prompt", "x", "--out", str(out)] + cmd[11:],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "unknown region name(s): 'beard'" in bad.stderr
