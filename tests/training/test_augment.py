"""Augmentation moves picture and labels together and mirrors left/right labels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from face_studio.labels import LABEL2ID
from face_studio.preprocess import colorize
from face_studio.training.augment import AugmentConfig, affine, augment, colour, hflip
from face_studio.training.synth import render_face


def test_flip_swaps_left_and_right_labels():
    image, labels = render_face(3, 128)
    f_img, f_lab = hflip(image, labels)
    for left, right in (("l_eye", "r_eye"), ("l_brow", "r_brow")):
        l_cols = np.nonzero(labels == LABEL2ID[left])[1]
        fr_cols = np.nonzero(f_lab == LABEL2ID[right])[1]
        # the person's left eye, mirrored, is now a right eye at the mirrored columns
        assert len(l_cols) == len(fr_cols) > 0
        assert np.isclose(np.mean(127 - l_cols), np.mean(fr_cols))
    assert np.array_equal(np.asarray(f_img)[:, ::-1], np.asarray(image))
    back_img, back_lab = hflip(f_img, f_lab)
    assert np.array_equal(back_lab, labels)


def test_geometry_moves_picture_and_labels_together():
    _, labels = render_face(4, 128)
    painted = Image.fromarray(colorize(labels))  # a picture whose colours are its labels
    out_img, out_lab = affine(painted, labels, scale=1.3, angle_deg=12, shift=(6.0, -4.0), fill=(0, 0, 0))
    assert not np.array_equal(out_lab, labels)
    expected = colorize(out_lab).astype(int)
    diff = np.abs(np.asarray(out_img).astype(int) - expected).sum(axis=2)
    # identical away from region edges (bilinear vs nearest differ only where colours meet)
    assert (diff == 0).mean() > 0.9


def test_identity_geometry_and_colour_leave_labels_alone():
    image, labels = render_face(5, 128)
    same_img, same_lab = affine(image, labels, 1.0, 0.0, (0.0, 0.0), (0, 0, 0))
    assert np.array_equal(same_lab, labels)
    rng = np.random.default_rng(0)
    changed = colour(image, rng, AugmentConfig())
    assert changed.size == image.size and not np.array_equal(np.asarray(changed), np.asarray(image))
    off_img, off_lab = augment(image, labels, rng, AugmentConfig.off())
    assert np.array_equal(off_lab, labels) and np.array_equal(np.asarray(off_img), np.asarray(image))


def test_augment_is_reproducible_from_its_generator():
    image, labels = render_face(6, 128)
    a = augment(image, labels, np.random.default_rng(42))
    b = augment(image, labels, np.random.default_rng(42))
    assert np.array_equal(a[1], b[1]) and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert set(np.unique(a[1])) <= set(np.unique(labels)) | {LABEL2ID["l_eye"], LABEL2ID["r_eye"],
                                                              LABEL2ID["l_ear"], LABEL2ID["r_ear"],
                                                              LABEL2ID["l_brow"], LABEL2ID["r_brow"], 0}
