"""Labelled-data folders: both layouts load; every bad folder gives an error that names the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from face_studio.labels import LABEL2ID
from face_studio.training.data import DataError, check_samples, find_samples, load_pair, split
from face_studio.training.synth import write_dataset
from webapp.cli import main


@pytest.fixture()
def faces(tmp_path):
    return write_dataset(tmp_path / "faces", n=4, size=64, seed=3, progress=False)


def test_images_masks_layout_loads(faces):
    samples = find_samples(faces)
    assert [s.name for s in samples] == [f"face_{i:06d}.png" for i in range(3, 7)]
    image, labels = load_pair(samples[0])
    assert image.size == (64, 64) and labels.shape == (64, 64) and labels.dtype == np.uint8
    assert np.array_equal(labels, np.asarray(Image.open(faces / "masks" / "face_000003.png")))


def test_missing_mask_names_the_image(faces):
    (faces / "masks" / "face_000004.png").unlink()
    with pytest.raises(DataError, match=r"missing mask for .*face_000004\.png.*masks/face_000004\.png"):
        find_samples(faces)


def test_size_mismatch_names_the_mask(faces):
    Image.new("L", (32, 64)).save(faces / "masks" / "face_000005.png")
    with pytest.raises(DataError, match=r"size mismatch: mask .*face_000005\.png is 32×64 .* is 64×64"):
        check_samples(find_samples(faces), progress=False)


def test_label_ids_of_19_and_above_name_the_mask_and_ids(faces):
    mask = np.asarray(Image.open(faces / "masks" / "face_000006.png")).copy()
    mask[0, 0], mask[0, 1] = 19, 200
    Image.fromarray(mask).save(faces / "masks" / "face_000006.png")
    with pytest.raises(DataError, match=r"mask .*face_000006\.png holds label id\(s\) 19, 200; ids must be 0..18"):
        check_samples(find_samples(faces), progress=False)


def test_colour_mask_is_refused(faces):
    Image.new("RGB", (64, 64), (204, 153, 119)).save(faces / "masks" / "face_000003.png")
    with pytest.raises(DataError, match=r"face_000003\.png is a colour \(RGB\) image"):
        load_pair(find_samples(faces)[0])


def test_unreadable_image_names_the_file(faces):
    (faces / "images" / "face_000004.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"face_000004\.png"):
        check_samples(find_samples(faces), progress=False)


def test_unknown_layout_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_samples(tmp_path / "nope")
    (tmp_path / "pics").mkdir()
    with pytest.raises(DataError, match=r"neither images/ \+ masks/"):
        find_samples(tmp_path)


def test_train_command_reports_the_bad_file(faces, tmp_path, capsys, tiny_parser_dir):
    (faces / "masks" / "face_000004.png").unlink()
    rc = main(["train", "--data", str(faces), "--base", str(tiny_parser_dir), "--out", str(tmp_path / "run"),
               "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "missing mask for" in err and "face_000004.png" in err
    assert not (tmp_path / "run").exists()


def _celeba(root, size=64):
    """Two faces in CelebAMask-HQ's layout: 2× photos, per-part masks at half size, in folder 0."""
    (root / "CelebA-HQ-img").mkdir(parents=True)
    anno = root / "CelebAMask-HQ-mask-anno" / "0"
    anno.mkdir(parents=True)
    for idx in (0, 1):
        Image.new("RGB", (size * 2, size * 2), (120, 90, 60)).save(root / "CelebA-HQ-img" / f"{idx}.jpg")
        skin = np.zeros((size, size), np.uint8)
        skin[8:56, 8:56] = 255
        hair = np.zeros((size, size), np.uint8)
        hair[0:20, :] = 255  # overlaps the skin: hair (13) wins over skin (1), as in g_mask.py
        Image.fromarray(skin).save(anno / f"{idx:05d}_skin.png")
        Image.fromarray(hair).convert("RGB").save(anno / f"{idx:05d}_hair.png")  # some parts are RGB
    return root


def test_celebamask_hq_layout_merges_parts(tmp_path):
    root = _celeba(tmp_path / "celeba")
    samples = find_samples(root)
    assert [s.name for s in samples] == ["0.jpg", "1.jpg"]
    image, labels = load_pair(samples[0])
    assert image.size == (64, 64)  # photo resized to the masks' size
    expected = np.zeros((64, 64), np.uint8)
    expected[8:56, 8:56] = LABEL2ID["skin"]
    expected[0:20, :] = LABEL2ID["hair"]
    assert np.array_equal(labels, expected)


def test_celebamask_hq_errors_name_the_file(tmp_path):
    root = _celeba(tmp_path / "celeba")
    Image.new("RGB", (128, 128)).save(root / "CelebA-HQ-img" / "2.jpg")
    with pytest.raises(DataError, match=r"missing mask for .*2\.jpg.*00002_\*\.png"):
        find_samples(root)
    (root / "CelebA-HQ-img" / "2.jpg").unlink()
    Image.new("L", (32, 32)).save(root / "CelebAMask-HQ-mask-anno" / "0" / "00001_nose.png")
    with pytest.raises(DataError, match=r"part mask .*00001_(nose|skin|hair)\.png is 32×32"):
        check_samples(find_samples(root), progress=False)
    Image.new("L", (64, 64)).save(root / "CelebAMask-HQ-mask-anno" / "0" / "00001_beard.png")
    with pytest.raises(DataError, match=r"unexpected file .*00001_beard\.png"):
        find_samples(root)


def test_split_is_deterministic_and_disjoint(faces):
    samples = find_samples(faces)
    train, val = split(samples, 0.25, seed=1)
    assert len(val) == 1 and len(train) == 3 and not set(train) & set(val)
    assert split(samples, 0.25, seed=1) == (train, val)
    with pytest.raises(DataError, match="at least 2"):
        split(samples[:1], 0.25, seed=1)
