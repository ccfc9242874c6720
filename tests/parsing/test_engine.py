"""The ONNX Runtime engine behind `parse`, the batch CLI and the Edit view."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from face_studio.preprocess import logits_to_labels, to_pixel_values
from webapp.parsing import (
    FaceParser,
    ParserNotReady,
    area_summary,
    available_dtypes,
    get_parser,
    label_map_png,
    missing_export_message,
)


def test_parse_matches_the_pytorch_model(tiny_parser_dir: Path, tiny_export_dir: Path, samples) -> None:
    import torch
    from transformers import SegformerForSemanticSegmentation

    image = Image.open(samples["wide"]).convert("RGB")
    labels = FaceParser(tiny_export_dir, "fp32").parse(image)

    model = SegformerForSemanticSegmentation.from_pretrained(tiny_parser_dir).eval()
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(to_pixel_values([image]))).logits[0].numpy()
    expected = logits_to_labels(logits, image.height, image.width)

    assert labels.dtype == np.uint8 and labels.shape == (480, 640)
    assert (labels == expected).mean() >= 0.995


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_batch_equals_one_by_one(tiny_export_dir: Path, samples, dtype: str) -> None:
    # q8's dynamic activation scales span the whole input: the engine must not let a batch change a result.
    images = [Image.open(samples[k]).convert("RGB") for k in ("square", "wide")]
    images.append(images[1].resize((200, 333)))
    parser = FaceParser(tiny_export_dir, dtype)
    batch = parser.parse_batch(images)
    for image, result in zip(images, batch, strict=True):
        single = parser.parse(image)
        assert result.labels.shape == (image.height, image.width)
        assert (result.labels == single).mean() >= 0.999
        assert set(result.timings) == {"preprocess", "model", "postprocess"}


def test_every_exported_dtype_runs(tiny_export_dir: Path, samples) -> None:
    image = Image.open(samples["square"]).convert("RGB")
    assert available_dtypes(tiny_export_dir) == ["fp32", "fp16", "q8"]
    reference = FaceParser(tiny_export_dir, "fp32").parse(image)
    for dtype in ("fp16", "q8"):
        parser = FaceParser(tiny_export_dir, dtype)
        labels = parser.parse(image)
        assert parser.model_path.name in ("model_fp16.onnx", "model_quantized.onnx")
        assert parser.providers[-1] == "CPUExecutionProvider"
        # Same model, lower precision: most pixels keep their class (random weights make boundaries busy).
        assert (labels == reference).mean() > 0.8, dtype


def test_shared_parser_per_folder_and_dtype(tiny_export_dir: Path) -> None:
    assert get_parser(tiny_export_dir, "q8") is get_parser(Path(str(tiny_export_dir)), "q8")
    assert get_parser(tiny_export_dir, "q8") is not get_parser(tiny_export_dir, "fp32")


def test_missing_export_says_how_to_make_one(tmp_path: Path) -> None:
    missing = tmp_path / "no-export"
    message = missing_export_message(missing)
    assert message and "face-studio export --out" in message and str(missing) in message
    with pytest.raises(ParserNotReady, match="face-studio export"):
        FaceParser(missing, "q8").parse(Image.new("RGB", (8, 8)))
    with pytest.raises(UserError, match="unknown parser dtype 'int4'"):
        FaceParser(missing, "int4")


def test_summary_and_label_png_round_trip() -> None:
    labels = np.zeros((10, 20), dtype=np.uint8)
    labels[:5, :4] = 13  # hair: 20 of 200 pixels
    area = area_summary(labels)
    assert area["hair"] == 10.0 and area["background"] == 90.0 and len(area) == 19
    decoded = Image.open(io.BytesIO(label_map_png(labels)))
    assert decoded.mode == "L" and (np.asarray(decoded) == labels).all()
