"""The live student preset (``mit-b0-d64``, distil's default): MiT-B0's encoder with a 64-wide decoder, so
``--init nvidia/mit-b0`` (here: a random B0 saved like one) gives it B0's encoder weights and a new decoder."""

from __future__ import annotations

import torch

from face_studio.training.distil import DEFAULT_STUDENT, STUDENTS, build_student
from tests.conftest import build_tiny_parser


def test_default_student_is_the_live_preset_and_the_old_ones_remain() -> None:
    assert DEFAULT_STUDENT == "mit-b0-d64"
    assert {"tiny", "mit-b0", "mit-b1", "mit-b0-d64"} <= set(STUDENTS)


def test_mit_b0_d64_takes_a_b0_encoder_and_a_new_64_wide_decoder(tmp_path) -> None:
    b0 = build_tiny_parser(tmp_path / "b0", seed=3, preset="mit-b0")
    student = build_student("mit-b0-d64", init=str(b0))
    assert student.config.decoder_hidden_size == 64
    assert student.decode_head.classifier.in_channels == 64
    from transformers import SegformerForSemanticSegmentation

    source = SegformerForSemanticSegmentation.from_pretrained(b0)
    for name, weight in source.segformer.state_dict().items():
        assert torch.equal(student.segformer.state_dict()[name], weight), name
    logits = student(pixel_values=torch.zeros(1, 3, 64, 64)).logits
    assert logits.shape == (1, 19, 16, 16)
    assert build_student("mit-b0-d64").config.decoder_hidden_size == 64  # random weights
