"""Synthetic faces: deterministic per seed, label maps hold exactly the parts drawn, varied enough to train on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from face_studio.labels import LABEL2ID, NUM_LABELS
from face_studio.training.synth import render_face, render_face_with_spec
from webapp.cli import main

SEEDS = range(40)
# Parts every face has (an occluder never hides one completely).
ALWAYS = {LABEL2ID[n] for n in ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip", "neck",
                                "cloth")}


@pytest.fixture(scope="module")
def faces():
    return [render_face_with_spec(seed, 256) for seed in SEEDS]


def test_same_seed_same_face_and_labels():
    a_img, a_lab = render_face(7, 128)
    b_img, b_lab = render_face(7, 128)
    assert np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert np.array_equal(a_lab, b_lab)
    c_img, c_lab = render_face(8, 128)
    assert not np.array_equal(a_lab, c_lab)
    assert not np.array_equal(np.asarray(a_img), np.asarray(c_img))


def test_shapes_and_ids(faces):
    for image, labels, _ in faces:
        assert image.mode == "RGB" and image.size == (256, 256)
        assert labels.dtype == np.uint8 and labels.shape == (256, 256)
        assert labels.max() < NUM_LABELS


def test_label_maps_hold_exactly_the_parts_drawn(faces):
    for _, labels, spec in faces:
        present = set(np.unique(labels).tolist()) - {0}
        assert present == spec.drawn, f"seed {spec.seed}: drew {sorted(spec.drawn)}, labels hold {sorted(present)}"
        assert ALWAYS <= present, f"seed {spec.seed}: missing {sorted(ALWAYS - present)}"
        # what the spec chose is what the labels hold
        assert (LABEL2ID["eye_g"] in present) == (spec.glasses != "none"), spec.seed
        assert (LABEL2ID["hat"] in present) == spec.hat, spec.seed
        assert (LABEL2ID["hair"] in present) == (spec.hair != "bald"), spec.seed
        assert (LABEL2ID["mouth"] in present) == spec.mouth_open, spec.seed
        assert (LABEL2ID["neck_l"] in present) == spec.necklace, spec.seed
        if LABEL2ID["ear_r"] in present:
            assert spec.earrings, spec.seed


def test_varied_enough_to_learn_shapes(faces):
    seen = set()
    for _, labels, _ in faces:
        seen |= set(np.unique(labels).tolist())
    assert seen == set(range(NUM_LABELS)), f"classes never drawn in 40 faces: {set(range(NUM_LABELS)) - seen}"
    yaws = [spec.yaw for _, _, spec in faces]
    assert min(yaws) < -0.2 and max(yaws) > 0.2
    assert sum(spec.occluder for _, _, spec in faces) >= 3
    # skin colour varies widely across faces
    skin = [np.asarray(img)[labels == LABEL2ID["skin"]].mean(axis=0) for img, labels, _ in faces]
    assert np.ptp(np.array(skin).mean(axis=1)) > 80
    # face size varies: skin area spans at least a factor of 2
    areas = [(labels == LABEL2ID["skin"]).sum() for _, labels, _ in faces]
    assert max(areas) > 2 * min(areas)


def test_synth_command_writes_images_masks_and_spec(tmp_path):
    out = tmp_path / "faces"
    assert main(["synth", "--out", str(out), "-n", "3", "--size", "96", "--seed", "5", "--quiet"]) == 0
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == ["face_000005.png", "face_000006.png", "face_000007.png"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == names
    for i, name in enumerate(names):
        image, labels = render_face(5 + i, 96)
        assert np.array_equal(np.asarray(Image.open(out / "masks" / name)), labels)
        assert np.array_equal(np.asarray(Image.open(out / "images" / name)), np.asarray(image))
    lines = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert [line["seed"] for line in lines] == [5, 6, 7]


def test_synth_command_refuses_tiny_size(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "-n", "2", "--size", "32"]) == 2
    assert "--size must be at least 64" in capsys.readouterr().err
