"""``face-studio evaluate``'s pipeline on cases with known answers, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from face_studio.labels import LABEL2ID, NUM_LABELS, PALETTE
from face_studio.preprocess import MEAN, STD
from face_studio.training.evaluate import evaluate_export, evaluate_path, evaluate_predictors
from face_studio.training.synth import write_dataset
from webapp.cli import main

SKIN, NOSE, HAIR = LABEL2ID["skin"], LABEL2ID["nose"], LABEL2ID["hair"]


@pytest.fixture()
def block_faces(tmp_path):
    """Two 64×64 label maps of 4×4 blocks, pictured in the label colours (so a reader can decode them)."""
    root = tmp_path / "blocks"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    maps = []
    for i in range(2):
        blocks = rng.choice([0, SKIN, NOSE, HAIR], size=(16, 16), p=[0.4, 0.3, 0.1, 0.2]).astype(np.uint8)
        labels = np.kron(blocks, np.ones((4, 4), np.uint8))
        Image.fromarray(labels).save(root / "masks" / f"f{i}.png")
        Image.fromarray(np.asarray(PALETTE, np.uint8)[labels]).save(root / "images" / f"f{i}.png")
        maps.append(labels)
    return root, maps


def reader(swap: dict[int, int] | None = None):
    """A predictor that reads each pixel's label from its colour and returns one-hot logits (full size, so the
    post-processing's bilinear resize is the identity; one-hot at 1/4 size would blur block corners)."""
    palette = np.asarray(PALETTE, np.float32)

    def predict(pixel_values: np.ndarray) -> np.ndarray:
        rgb = (pixel_values.transpose(0, 2, 3, 1) * STD + MEAN) * 255
        ids = np.abs(rgb[..., None, :] - palette).sum(-1).argmin(-1)
        for a, b in (swap or {}).items():
            ids[ids == a] = b
        return np.eye(NUM_LABELS, dtype=np.float32)[ids].transpose(0, 3, 1, 2)

    return predict


def test_perfect_prediction_scores_one(block_faces):
    root, _ = block_faces
    scores = evaluate_predictors({"reader": reader()}, root, size=64)["reader"]
    assert scores["miou"] == 1.0 and scores["mean_f1"] == 1.0 and scores["pixel_accuracy"] == 1.0
    assert scores["faces"] == 2


def test_one_class_swapped_gives_the_exact_f1(block_faces):
    root, maps = block_faces
    scores = evaluate_predictors({"reader": reader({NOSE: SKIN})}, root, size=64)["reader"]
    n_skin = sum(int((m == SKIN).sum()) for m in maps)
    n_nose = sum(int((m == NOSE).sum()) for m in maps)
    total = sum(m.size for m in maps)
    f1_skin = 2 * n_skin / (2 * n_skin + n_nose)
    assert scores["per_class"]["skin"]["f1"] == pytest.approx(f1_skin, rel=1e-12)
    assert scores["per_class"]["nose"]["f1"] == 0.0
    assert scores["mean_f1"] == pytest.approx((f1_skin + 0.0 + 1.0) / 3, rel=1e-12)
    assert scores["miou"] == pytest.approx((1 + n_skin / (n_skin + n_nose) + 0 + 1) / 4, rel=1e-12)
    assert scores["pixel_accuracy"] == pytest.approx(1 - n_nose / total, rel=1e-12)


def test_evaluate_export_contract_on_a_random_export(tiny_export_dir, tmp_path):
    data = write_dataset(tmp_path / "faces", n=3, size=64, seed=11, progress=False)
    results = evaluate_export(tiny_export_dir, data, dtypes=["fp32", "q8"], size=64)
    assert set(results) == {"pytorch", "fp32", "q8"}
    for scores in results.values():
        assert {"miou", "mean_f1", "pixel_accuracy", "per_class"} <= set(scores)
        assert 0.0 <= scores["miou"] <= 1.0 and len(scores["per_class"]) == NUM_LABELS
    # fp32 ONNX and PyTorch share pre/post-processing: the same labels, so the same scores
    assert results["fp32"]["miou"] == pytest.approx(results["pytorch"]["miou"], abs=1e-6)


def test_errors_name_what_is_wrong(tmp_path, tiny_export_dir, capsys):
    data = write_dataset(tmp_path / "faces", n=2, size=64, seed=1, progress=False)
    with pytest.raises(UserError, match="no such folder"):
        evaluate_path(tmp_path / "nope", data)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no model.safetensors"):
        evaluate_path(tmp_path / "empty", data)
    with pytest.raises(UserError, match="unknown dtype"):
        evaluate_export(tiny_export_dir, data, dtypes=["int4"])
    assert main(["evaluate", "--model", str(tiny_export_dir), "--data", str(tmp_path / "nodata")]) == 2
    assert "does not exist" in capsys.readouterr().err
