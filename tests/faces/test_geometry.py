"""Letterbox, crop boxes, crops and the paste rule (pure numpy/PIL)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from face_studio.faces.geometry import crop_box, crop_image, letterbox, letterbox_geometry, paste, tiles
from face_studio.faces.spec import CROP_SCALE


def test_letterbox_keeps_the_aspect_centred_on_black_and_maps_back() -> None:
    image = Image.new("RGB", (640, 480), (255, 255, 255))
    pixels, box = letterbox(image, 192)
    assert pixels.shape == (1, 3, 192, 192) and pixels.dtype == np.float32
    assert (box.left, box.top, box.width, box.height) == (0, 24, 192, 144)
    assert pixels[0, :, :24].max() == -1.0 and pixels[0, :, 24:168].min() == 1.0 and pixels[0, :, 168:].max() == -1
    corners = box.to_image(np.array([[0.0, 24 / 192], [1.0, 168 / 192]]))
    np.testing.assert_allclose(corners, [[0, 0], [640, 480]], atol=1e-9)
    tall = letterbox_geometry(300, 1000, 128)
    assert (tall.left, tall.width, tall.height) == (45, 38, 128)


def test_crop_box_is_a_square_around_the_face_that_may_leave_the_image() -> None:
    x0, y0, x1, y1 = crop_box([100, 100, 200, 220], 1000, 800)
    assert x1 - x0 == y1 - y0 == round(CROP_SCALE * 120)
    assert all(isinstance(v, int) for v in (x0, y0, x1, y1))
    assert abs((x0 + x1) / 2 - 150) <= 0.5
    edge = crop_box([-30, -20, 60, 90], 400, 300)  # a face cut by the corner
    assert edge[0] < 0 and edge[1] < 0 and edge[2] - edge[0] == edge[3] - edge[1]
    huge = crop_box([0, 0, 600, 500], 640, 480)  # a face filling the picture: at most the longer side
    assert huge[2] - huge[0] == 640


def test_crop_image_pads_outside_the_image_with_black() -> None:
    image = Image.new("RGB", (50, 40), (200, 100, 50))
    crop = np.asarray(crop_image(image, [-10, -10, 30, 30]))
    assert crop.shape == (40, 40, 3)
    assert crop[:10].max() == 0 and crop[:, :10].max() == 0 and crop[10:, 10:].tolist() == [[[200, 100, 50]] * 30] * 30


def test_paste_keeps_earlier_faces_pixels_and_clips_to_the_image() -> None:
    labels = np.zeros((10, 10), np.uint8)
    owner = np.zeros((10, 10), np.uint8)
    first = np.zeros((6, 6), np.uint8)
    first[1:5, 1:5] = 1
    assert paste(labels, owner, first, [0, 0, 6, 6], 1) == 16
    second = np.full((6, 6), 13, np.uint8)  # overlaps the first face's square and the image's edge
    claimed = paste(labels, owner, second, [3, 3, 9, 9], 2)
    assert labels[1:5, 1:5].tolist() == [[1] * 4] * 4  # the first face's labels stay
    assert labels[5, 5] == 13 and owner[5, 5] == 2 and owner[2, 2] == 1
    assert claimed == 36 - 4  # its square minus the 2×2 the first face claimed
    edge = np.full((4, 4), 17, np.uint8)
    assert paste(labels, owner, edge, [8, 8, 12, 12], 3) == 3  # (8, 9), (9, 8), (9, 9): free and inside
    assert paste(labels, owner, edge, [20, 20, 24, 24], 4) == 0
    with pytest.raises(ValueError):
        paste(labels, owner, edge, [0, 0, 5, 5], 5)


def test_tiles_cover_big_images_and_skip_small_ones() -> None:
    found = tiles(1920, 1080, 192)
    assert found and all(x1 - x0 == y1 - y0 >= 192 for x0, y0, x1, y1 in found)
    assert all(0 <= x0 and x1 <= 1920 and 0 <= y0 and y1 <= 1080 for x0, y0, x1, y1 in found)
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, x1, y1 in found:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tiles(300, 200, 192) == []
    assert len(tiles(16384, 2441, 192)) <= 64  # bounded on any aspect
