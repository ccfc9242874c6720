"""Server parse provider selection: CUDA EP when onnxruntime-gpu and a GPU are there, else CPU — said plainly."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from webapp.parsing import FaceParser, select_providers


def test_auto_picks_cpu_here_without_a_note():
    providers, note = select_providers("auto")
    assert providers == ["CPUExecutionProvider"] and note is None


def test_asking_for_cuda_without_it_falls_back_to_cpu_with_a_message():
    providers, note = select_providers("cuda")
    assert providers == ["CPUExecutionProvider"]
    assert "no CUDAExecutionProvider" in note and "onnxruntime-gpu" in note and "\n" not in note


def test_unknown_provider_is_refused():
    with pytest.raises(UserError, match="unknown parse provider 'tpu'"):
        select_providers("tpu")


def test_parser_reports_the_provider_it_runs_on_and_logs_the_fallback(tiny_export_dir, caplog):
    cpu = FaceParser(tiny_export_dir, "fp32")
    with caplog.at_level(logging.WARNING, logger="webapp.parsing"):
        cuda = FaceParser(tiny_export_dir, "fp32", provider="cuda")
        assert cuda.providers == ["CPUExecutionProvider"]
    assert cuda.provider_note and any("no CUDAExecutionProvider" in r.message for r in caplog.records)
    assert cpu.providers == ["CPUExecutionProvider"] and cpu.provider_note is None
    image = Image.new("RGB", (96, 80), (200, 150, 120))
    assert np.array_equal(cpu.parse(image), cuda.parse(image))  # the same label map either way
