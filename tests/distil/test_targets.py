"""The pieces of distillation on known inputs: mirrored targets swap left/right, the loss, the cache key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from face_studio.labels import LABEL2ID
from face_studio.training.augment import hflip
from face_studio.training.distil import (
    DistilDataset,
    cache_key,
    distillation_loss,
    find_images,
    mirror_logits,
    split_indices,
)


def test_mirrored_logits_are_the_mirrored_labels():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(19, 8, 12)).astype(np.float32))
    labels = logits.argmax(0).numpy().astype(np.uint8)
    _, flipped_labels = hflip(__import__("PIL.Image").Image.new("RGB", (12, 8)), labels)
    assert np.array_equal(mirror_logits(logits).argmax(0).numpy(), flipped_labels)
    # A left eye on the image's left half becomes a right eye on its right half.
    one = torch.zeros(19, 2, 4)
    one[LABEL2ID["l_eye"], 0, 0] = 5.0
    m = mirror_logits(one)
    assert m[LABEL2ID["r_eye"], 0, 3] == 5.0 and m[LABEL2ID["l_eye"]].abs().sum() == 0


def test_augmented_sample_mirrors_picture_and_targets_together():
    """The dataset's flip moves pixels and targets the same way: a bright column and its class move together."""
    pixels = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    pixels[0, :, 0] = 255  # the left column of the picture
    logits = np.zeros((1, 19, 2, 2), dtype=np.float16)
    logits[0, LABEL2ID["l_brow"], :, 0] = 9.0  # the left logit column: l_brow
    ds = DistilDataset(pixels, logits, [0], augment=True)
    ds.colour = type(ds.colour).off()
    seen = set()
    torch.manual_seed(0)
    for _ in range(12):
        item = ds[0]
        bright_left = bool(item["pixel_values"][0, :, 0].mean() > item["pixel_values"][0, :, -1].mean())
        target = item["teacher_logits"].argmax(0)
        if bright_left:
            assert (target[:, 0] == LABEL2ID["l_brow"]).all()
        else:
            assert (target[:, 1] == LABEL2ID["r_brow"]).all()
        seen.add(bright_left)
    assert seen == {True, False}


def test_loss_is_zero_when_the_student_copies_a_confident_teacher():
    teacher = torch.full((2, 19, 4, 4), -20.0)
    teacher[:, 3] = 20.0
    assert distillation_loss(teacher.clone(), teacher, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(teacher.clone(), teacher, alpha=0.5).item() < 1e-6
    wrong = torch.roll(teacher, 1, dims=1)
    assert distillation_loss(wrong, teacher, alpha=0.5).item() > 10
    # The student's grid is resized to the teacher's when they differ.
    assert distillation_loss(torch.zeros(2, 19, 8, 8), teacher).isfinite()


def test_cache_key_follows_the_photos_and_sizes(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    key = cache_key("sha", [a, b], 512, 256)
    assert key == cache_key("sha", [a, b], 512, 256)
    assert key != cache_key("sha", [a], 512, 256)
    assert key != cache_key("other", [a, b], 512, 256)
    assert key != cache_key("sha", [a, b], 512, 128)
    b.write_bytes(b"yy")
    assert key != cache_key("sha", [a, b], 512, 256)


def test_find_images_reads_the_folder_or_its_images_subfolder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.webp").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    assert find_images(tmp_path) == [tmp_path / "images" / "1.webp"]
    (tmp_path / "0.JPG").write_bytes(b"")
    assert find_images(tmp_path) == [tmp_path / "0.JPG"]


def test_split_holds_out_at_least_one():
    train, val = split_indices(10, 0.1, 0)
    assert len(val) == 1 and sorted(train + val) == list(range(10))
    assert split_indices(10, 0.1, 0) == (train, val)
