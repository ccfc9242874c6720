"""Instant recolour (static/js/recolour.js): only the chosen classes change (others bit-exact), visibly, with
their lightness kept; and it works from the Parse view on a parsed photo."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.labels import LABEL2ID, labels_json
from tests.browser.test_parse_page import canvas_pixels

SCRIPT = Path(__file__).with_name("recolour_check.mjs")


def oklab(rgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB (..., 3) → Oklab (..., 3), the reference formulas (Björn Ottosson)."""
    c = rgb.astype(np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lms = lin @ np.array([[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
                          [0.0883024619, 0.2817188376, 0.6299787005]]).T
    return np.cbrt(lms) @ np.array([[0.2104542553, 0.7936177850, -0.0040720468],
                                    [1.9779984951, -2.4285922050, 0.4505937099],
                                    [0.0259040371, 0.7827717662, -0.8086757660]]).T


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Chebyshev) of ``mask``: the most a box feather of that radius reaches."""
    padded = np.pad(mask, radius)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def groups_by_name() -> dict[str, list[int]]:
    return {g["name"]: g["ids"] for g in labels_json()["groups"]}


def test_groups_are_defined_once_and_shipped_in_labels_json() -> None:
    groups = groups_by_name()
    assert list(groups) == ["hair", "lips", "brows", "eyes", "skin"]
    assert groups["lips"] == [LABEL2ID["u_lip"], LABEL2ID["l_lip"]]
    assert groups["hair"] == [LABEL2ID["hair"]]


def test_recolour_changes_only_the_chosen_classes_visibly_and_keeps_lightness(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup.sh installs it with WITH_TEST=1)"
    rng = np.random.default_rng(0)
    height, width, radius = 120, 160, 3
    # A textured photo stand-in: a brown-ish gradient with noise (texture the recolour must keep).
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([90 + 0.5 * xx, 60 + 0.4 * yy, 40 + 0.2 * xx], axis=-1) + rng.normal(0, 12, (height, width, 3))
    rgba = np.dstack([np.clip(base, 0, 255), np.full((height, width), 255)]).astype(np.uint8)
    labels = np.zeros((height, width), np.uint8)
    labels[20:70, 30:120] = LABEL2ID["hair"]
    labels[75:110, 50:100] = LABEL2ID["skin"]  # another class, 5 px below the hair: must stay untouched
    labels[40:50, 60:80] = LABEL2ID["l_eye"]  # a hole in the hair
    (tmp_path / "in.rgba").write_bytes(rgba.tobytes())
    (tmp_path / "labels.u8").write_bytes(labels.tobytes())

    hair = groups_by_name()["hair"]
    subprocess.run([node, str(SCRIPT), str(tmp_path / "in.rgba"), str(tmp_path / "labels.u8"), str(width),
                    str(height), ",".join(map(str, hair)), "#c0304f", "1", str(radius), str(tmp_path / "out.rgba"),
                    str(tmp_path / "weights.f32")], check=True, timeout=60)
    out = np.fromfile(tmp_path / "out.rgba", np.uint8).reshape(height, width, 4)
    weights = np.fromfile(tmp_path / "weights.f32", np.float32).reshape(height, width)

    chosen = np.isin(labels, hair)
    reach = dilate(chosen, radius)
    # 1. Outside the feathered region: bit-exact, every channel; the feather never reaches further.
    assert np.array_equal(out[~reach], rgba[~reach])
    assert (weights[~reach] == 0).all() and (weights[chosen] > 0).all()

    # 2. Deep inside (weight 1): a visible change towards the colour, lightness kept, texture kept.
    core = weights == 1
    assert core.sum() > 2000
    before, after = oklab(rgba[core][:, :3]), oklab(out[core][:, :3])
    delta_e = np.linalg.norm(after - before, axis=1)
    assert delta_e.mean() > 0.08, f"mean ΔE(Oklab) {delta_e.mean():.3f}: not a visible change"
    assert np.abs(after[:, 0] - before[:, 0]).mean() < 0.01, "lightness was not kept"
    target = oklab(np.array([[0xC0, 0x30, 0x4F]]))[0]
    assert np.hypot(*(after[:, 1:].mean(0) - target[1:])) < 0.03, "the region's mean colour is not the chosen one"
    assert np.corrcoef(before[:, 0], after[:, 0])[0, 1] > 0.99, "the texture (lightness pattern) was lost"
    # 3. The feather ramps: pixels at the edge change less than the core.
    ring = reach & ~chosen
    assert 0 < weights[ring].max() < 1


def run_recolour(tmp_path: Path, rgba: np.ndarray, labels: np.ndarray, ids: list[int], colour: str, radius: int,
                 lift: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """recolour.js in Node on these pixels: (out RGBA, feather weights)."""
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup.sh installs it with WITH_TEST=1)"
    height, width = labels.shape
    (tmp_path / "in.rgba").write_bytes(rgba.tobytes())
    (tmp_path / "labels.u8").write_bytes(labels.tobytes())
    subprocess.run([node, str(SCRIPT), str(tmp_path / "in.rgba"), str(tmp_path / "labels.u8"), str(width),
                    str(height), ",".join(map(str, ids)), colour, "1", str(radius), str(tmp_path / "out.rgba"),
                    str(tmp_path / "weights.f32"), lift], check=True, timeout=60)
    return (np.fromfile(tmp_path / "out.rgba", np.uint8).reshape(height, width, 4),
            np.fromfile(tmp_path / "weights.f32", np.float32).reshape(height, width))


@pytest.mark.parametrize("colour", ["#e6c88c", "#f0e0c8", "#d8a0c0"])  # honey blonde, platinum, pastel pink
def test_recolour_lifts_dark_hair_to_a_light_colour_keeping_its_texture(tmp_path: Path, colour: str) -> None:
    from skimage.color import deltaE_cie76, rgb2lab

    rng = np.random.default_rng(1)
    height, width, radius = 120, 160, 3
    yy, xx = np.mgrid[0:height, 0:width]
    # Dark brown-black hair with strands: a stripe pattern plus noise in lightness (the texture to keep).
    strands = 10 * np.sin(xx / 2.5 + yy / 9.0) + rng.normal(0, 5, (height, width))
    hair_rgb = np.stack([38 + strands, 28 + strands, 22 + strands], axis=-1)
    backdrop = np.stack([120 + 0.3 * xx, 140 + 0.2 * yy, 160 + 0 * xx], axis=-1) + rng.normal(0, 8, (height, width, 3))
    labels = np.zeros((height, width), np.uint8)
    labels[15:95, 25:135] = LABEL2ID["hair"]
    rgb = np.where((labels == LABEL2ID["hair"])[..., None], hair_rgb, backdrop)
    rgba = np.dstack([np.clip(rgb, 0, 255), np.full((height, width), 255)]).astype(np.uint8)

    hair = groups_by_name()["hair"]
    out, weights = run_recolour(tmp_path, rgba, labels, hair, colour, radius)
    chosen = np.isin(labels, hair)
    reach = dilate(chosen, radius)
    assert np.array_equal(out[~reach], rgba[~reach]), "pixels outside the feathered region changed"

    core = weights == 1
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    mean_after = out[core][:, :3].astype(np.float64).mean(0)
    delta = float(deltaE_cie76(rgb2lab(mean_after[None, None] / 255), rgb2lab(target[None, None] / 255))[0, 0])
    assert delta < 10, f"mean colour ΔE {delta:.1f} from {colour}"
    before_l, after_l = oklab(rgba[core][:, :3])[:, 0], oklab(out[core][:, :3])[:, 0]
    assert after_l.mean() > before_l.mean() + 0.3, "the hair was not lifted"
    ratio = after_l.std() / before_l.std()
    assert 0.8 <= ratio <= 1.2, f"lightness variation ×{ratio:.2f}: texture not kept"
    assert np.corrcoef(before_l, after_l)[0, 1] > 0.95, "the strands' pattern was lost"

    # lift off: the old behaviour, lightness kept (a dark region stays dark).
    kept, _ = run_recolour(tmp_path, rgba, labels, hair, colour, radius, lift="false")
    assert np.abs(oklab(kept[core][:, :3])[:, 0] - before_l).mean() < 0.01


@pytest.mark.browser
def test_recolour_from_the_parse_view_on_a_photo(parse_page, samples) -> None:
    page = parse_page.open()
    page.page.select_option("[data-role=backend]", "wasm")
    assert page.upload(samples["wide"]) == "done", page.text("error")
    labels = np.asarray(Image.open(page.download("labels")))
    # The random-weight test parser puts classes anywhere: recolour the group it found most of.
    groups = groups_by_name()
    name = max(groups, key=lambda g: np.isin(labels, groups[g]).sum())
    chosen = np.isin(labels, groups[name])
    assert chosen.sum() > 1000, "the test parser found none of the recolour groups"
    overlay_shown = canvas_pixels(page)

    page.page.click(f"[data-role=recolour-groups] [data-group={name}]")
    page.page.wait_for_function("document.querySelector('[data-role=recolour-download]').disabled === false")
    shown = canvas_pixels(page)
    photo = np.asarray(Image.open(samples["wide"]).convert("RGB"))
    radius = max(2, round(0.005 * min(labels.shape)))  # recolour.js featherRadius
    reach = dilate(chosen, radius)
    assert not np.array_equal(shown, overlay_shown)
    assert np.array_equal(shown[~reach], photo[~reach]), "pixels outside the group changed"
    changed = np.abs(shown[chosen].astype(int) - photo[chosen].astype(int)).sum(axis=1) > 0
    assert changed.mean() > 0.9, f"only {changed.mean():.0%} of the group's pixels changed"

    # The strength slider moves the result; 0 gives the photo back.
    page.page.locator("[data-role=recolour-strength]").fill("0")
    assert np.array_equal(canvas_pixels(page), photo)
    page.page.locator("[data-role=recolour-strength]").fill("1")
    full = canvas_pixels(page)
    assert np.abs(full[chosen].astype(int) - photo[chosen].astype(int)).mean() > \
        np.abs(shown[chosen].astype(int) - photo[chosen].astype(int)).mean()

    # Download PNG: the picture on screen, full size.
    with page.page.expect_download() as info:
        page.page.click("[data-role=recolour-download]")
    assert info.value.suggested_filename == f"astronaut-wide.recolour-{name}.png"
    assert np.array_equal(np.asarray(Image.open(info.value.path()).convert("RGB")), full)

    # Off: the overlay is back.
    page.page.click("[data-role=recolour-groups] [data-group='']")
    assert np.array_equal(canvas_pixels(page), overlay_shown)
    assert not page.errors
