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
    with pytest.raises(MaskError, match="unknown region name.*'²'"):  # isdigit() but not int(): same message
        regions_to_mask(labels, "²")


def test_grow_shrink_and_feather() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[15:25, 15:25] = True
    assert grow(mask, 3).sum() > mask.sum() and grow(mask, 3)[12, 20] and not grow(mask, 3)[11, 20]
    assert grow(mask, -3).sum() == 4 * 4
    alpha = feather(mask, 6)
    assert (alpha[mask] == 255).all() and 0 < alpha[13, 20] < 255 and alpha[0, 0] == 0


def test_inpaint_reuses_the_generate_pipeline_modules(edit_service) -> None:
    base = edit_service.service.owner.get()
    inpaint = edit_service.service.pipeline("inpaint")
    img2img = edit_service.service.pipeline("img2img")
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        assert getattr(inpaint, name) is getattr(base, name), name
        assert getattr(img2img, name) is getattr(base, name), name
    assert edit_service.service.pipeline("inpaint") is inpaint  # built once


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


def test_restyle_runs_at_the_photos_working_size(edit_service) -> None:
    """A 2:1 photo is restyled at its own aspect (not the pipeline's default square), as the record says."""
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((128, 64))
    work = working_size(*photo.size)
    assert work == (512, 256)
    decoded: list[tuple[int, int]] = []  # (width, height) of every image the VAE decoded
    vae = edit_service.service.pipeline("img2img").vae
    hook = vae.decoder.register_forward_hook(lambda _m, _i, out: decoded.append((out.shape[-1], out.shape[-2])))
    try:
        result = restyle_image(edit_service, photo, EditRequest(prompt="oil painting", strength=0.5, **FAST))
    finally:
        hook.remove()
    assert decoded == [work], f"the pipeline ran at {decoded}, the photo's working size is {work}"
    assert result.record["working_size"] == list(work) and result.image.size == photo.size
    assert "Size: 512x256" in Image.open(result.path).text[PNG_TEXT_KEY]


def test_big_masks_are_grown_and_feathered_at_the_working_size(monkeypatch) -> None:
    """grow 128 on a 12 MP mask runs on ≤ 1 MP arrays (its cost no longer grows with the photo)."""
    from webapp.editing import masks

    seen: list[tuple[int, ...]] = []
    for name in ("grow", "feather"):
        real = getattr(masks, name)
        monkeypatch.setattr(masks, name, lambda m, px, _real=real: seen.append(m.shape) or _real(m, px))
    selected = np.zeros((3000, 4000), dtype=bool)
    selected[1000:2000, 1500:2500] = True
    selected[100, 100] = True  # one stray pixel: still regenerated, never lost by the downscale
    work = working_size(4000, 3000)
    prepared = masks.prepare(selected, 128, 64, work)
    assert seen and all(shape == (work[1], work[0]) for shape in seen), seen
    assert prepared.grown.shape == prepared.alpha.shape == selected.shape
    assert prepared.work_mask.size == work
    assert (prepared.alpha[selected] == 255).all() and prepared.grown[selected].all()
    # Grown by ~128 px of the photo (to within one working pixel, ~4 px here), then feathered outward only.
    assert prepared.grown[1000, 1500 - 120] and not prepared.grown[1000, 1500 - 140]
    assert prepared.alpha[1500, 2500 + 120] > 0 and prepared.alpha[1500, 2500 + 300] == 0
    assert prepared.alpha[2900, 3900] == 0


def test_mask_preparation_runs_off_the_gpu_lock(edit_service, portrait, hair_labels, monkeypatch) -> None:
    """Grow / feather happen before the SD run takes the lock: a generate waiting for it is not held up."""
    import threading

    from webapp.editing import service as edit_service_module

    lock = edit_service.service.owner.lock
    free: list[bool] = []

    def probe() -> None:  # from another thread: the lock is an RLock, so the caller's own thread can't tell
        got = lock.acquire(blocking=False)
        free.append(got)
        if got:
            lock.release()

    def observed(*args, **kwargs):
        t = threading.Thread(target=probe)
        t.start()
        t.join()
        return real(*args, **kwargs)

    real = edit_service_module.prepare
    monkeypatch.setattr(edit_service_module, "prepare", observed)
    edit_image(edit_service, portrait, EditRequest(prompt="red hair", grow=20, feather=10, **FAST),
               regions="hair", labels=hair_labels)
    assert free == [True]


def test_the_page_gets_the_same_fields_the_api_checks(edit_settings) -> None:
    from webapp.editing.fields import INPAINT, RESTYLE, FieldError, edit_fields
    from webapp.generation import presets as P
    from webapp.views.edit import edit_config

    config = edit_config(edit_settings)
    fields = edit_fields()
    for api, names in (("inpaint", INPAINT), ("restyle", RESTYLE)):
        served = config["api"][api]
        assert served["api"] == api and [f["name"] for f in served["fields"]] == list(names)
        for f in served["fields"]:
            assert f == fields[f["name"]].as_json()
    guidance = next(f for f in config["api"]["inpaint"]["fields"] if f["name"] == "guidance")
    assert guidance["maximum"] == P.MAX_GUIDANCE == 30  # the page's limit is Python's, not a JS literal
    assert config["maxCoverage"] == 0.995
    with pytest.raises(FieldError, match="guidance must be between 0 and 30, got 30.5"):
        fields["guidance"].check(30.5)
    assert fields["grow"].check("-3") == -3 and fields["regions"].check(" hair, lips ") == ["hair", "lips"]
