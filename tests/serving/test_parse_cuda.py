"""The CUDA server parse, checked where it can be on a CPU machine: the GPU of ``--device cuda:N`` and the
arena options reach the CUDA provider, q8 becomes fp16 (or fp32) on CUDA, node placement is read from ORT's
own profile, and the Edit view's parse honours ``--parse-provider``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from face_studio.onnx_files import INPUT_NAME
from webapp.parse_providers import PROVIDERS, cuda_options, device_id, dtype_for, node_placement, select_providers
from webapp.parsing import _PARSERS, FaceParser

CUDA = (PROVIDERS["cuda"], cuda_options("cuda:1"))


def test_cuda_options_carry_the_device_of_serve_device():
    assert device_id("cuda:3") == 3 and device_id("cuda") == 0 and device_id(None) == 0 and device_id("cpu") == 0
    assert cuda_options("cuda:1") == {"device_id": 1, "arena_extend_strategy": "kSameAsRequested"}


def test_q8_becomes_fp16_then_fp32_on_cuda_and_stays_q8_on_cpu():
    cpu = [PROVIDERS["cpu"]]
    assert dtype_for("q8", [CUDA, *cpu], ["fp32", "fp16", "q8"])[0] == "fp16"
    dtype, note = dtype_for("q8", [CUDA, *cpu], ["fp32", "q8"])
    assert dtype == "fp32" and "instead of q8" in note and "\n" not in note
    assert dtype_for("q8", [CUDA, *cpu], ["q8"])[0] == "q8"  # nothing else exported: q8, with a note
    assert dtype_for("q8", cpu, ["fp32", "fp16", "q8"]) == ("q8", None)
    assert dtype_for("fp32", [CUDA, *cpu], ["fp32", "fp16", "q8"]) == ("fp32", None)  # an explicit float dtype


def test_select_providers_on_this_cpu_build():
    assert select_providers("auto", "cuda:1") == ([PROVIDERS["cpu"]], None)
    providers, note = select_providers("cuda", "cuda:1")
    assert providers == [PROVIDERS["cpu"]] and "no CUDAExecutionProvider" in note


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_node_placement_counts_every_node_by_provider(tiny_export_dir, dtype):
    import onnx

    from face_studio.onnx_files import DTYPE_FILES

    path = tiny_export_dir / DTYPE_FILES[dtype]
    pixels = np.zeros((1, 3, 64, 64), np.float32)
    placement = node_placement(path, [PROVIDERS["cpu"]], {INPUT_NAME: pixels})
    assert set(placement) == {PROVIDERS["cpu"]}
    # ORT fuses some nodes at load: the profile counts the nodes that ran, never more than the file holds
    assert 0 < placement[PROVIDERS["cpu"]] <= len(onnx.load(str(path)).graph.node)


def test_face_parser_keeps_its_device_and_dtype_on_cpu(tiny_export_dir):
    parser = FaceParser(tiny_export_dir, "q8", provider="auto", device="cuda:1")
    assert parser.providers == [PROVIDERS["cpu"]] and parser.dtype == "q8"  # no CUDA here: q8 as asked


def test_edit_parse_honours_parse_provider(settings_for, tiny_export_dir, tmp_path):
    """The Edit view's region parse goes through the provider (and device) the server was started with."""
    import gradio as gr

    from webapp.editing.fields import INPAINT
    from webapp.editing.handlers import inpaint_run

    settings = settings_for(parser_dir=tiny_export_dir, parse_provider="cuda")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (256, 256), (200, 150, 120)).save(photo)
    values = dict(image=str(photo), mask=None, regions="hair", prompt="red hair", negative="", strength=0.6,
                  steps=2, guidance=1.0, seed=1, grow=0, feather=0, mask_regions="")
    try:
        inpaint_run(settings, [values.get(name) for name in INPAINT])
    except gr.Error:
        pass  # the tiny random parser may find no hair: the parse itself is what is checked
    key = (tiny_export_dir.resolve(), "q8", "cuda", "cpu")
    assert key in _PARSERS and _PARSERS[key].provider_note  # asked for CUDA (absent here: noted, CPU used)
