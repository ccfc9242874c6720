"""``face-studio export --labels-out``: labels graphs (upsample + argmax in ONNX, uint8 out) next to each dtype's
logits graph, equal to the Python twin of segment.js's post-processing (the Chromium twin is in
tests/browser/test_live.py)."""

from __future__ import annotations

import json

import numpy as np

from export.labels_graph import labels_feed
from export.validation import ort_session, validation_images
from face_studio.onnx_files import LABELS_FILES, LABELS_HEAD_VERSION, current_labels_graphs
from face_studio.preprocess import logits_to_labels, to_pixel_values, upsample_logits


def test_labels_out_writes_a_labels_graph_per_dtype_equal_to_the_post_processing(tiny_parser_dir, tmp_path) -> None:
    from webapp.cli import main

    out = tmp_path / "live"
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32,q8",
                 "--labels-out", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["labels_graph"]) == {"fp32", "q8"}
    for dtype, entry in manifest["labels_graph"].items():
        assert entry["file"] == LABELS_FILES[dtype] and entry["file"] in manifest["files"]
        assert entry["label_agreement_pct"] >= 99.99
        assert entry["head"] == LABELS_HEAD_VERSION

    labels_graph, logits_graph = ort_session(out / LABELS_FILES["fp32"]), ort_session(out / "onnx/model.onnx")
    assert [i.name for i in labels_graph.get_inputs()] == ["pixel_values", "output_size", "previous_labels",
                                                           "hysteresis"]
    image = validation_images()[1]  # 640×480: not square, not the input size
    x = to_pixel_values([image], 512)
    got = labels_graph.run(None, labels_feed(x, 480, 640))[0]
    assert got.dtype == np.uint8 and got.shape == (1, 480, 640)
    want = logits_to_labels(logits_graph.run(None, {"pixel_values": x})[0][0], 480, 640)
    assert (got[0] == want).all()

    # Asked again with --labels-out: nothing to do; without it, the export keeps its labels graphs.
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32,q8",
                 "--labels-out", "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["created"] == manifest["created"]

    # A labels graph of an older head (a margin in logits: it fails on the page's "no previous" labels) is not
    # offered to live mode, and --labels-out rebuilds it.
    from webapp.settings import ServeSettings
    from webapp.views.parse import live_config

    assert live_config(ServeSettings(live_parser_dir=out))["labelsGraph"] == ["fp32", "q8"]
    old = {**manifest, "labels_graph": {d: {k: v for k, v in e.items() if k != "head"}
                                        for d, e in manifest["labels_graph"].items()}}
    (out / "manifest.json").write_text(json.dumps(old))
    assert live_config(ServeSettings(live_parser_dir=out))["labelsGraph"] == []
    assert current_labels_graphs(old) == set() and current_labels_graphs(manifest) == {"fp32", "q8"}


def _has_op(path, op_type: str) -> bool:
    import onnx

    return any(node.op_type == op_type for node in onnx.load(str(path)).graph.node)


def test_q8_recipe_live_exports_quantize_matmuls_only_and_a_changed_recipe_rebuilds(tiny_parser_dir,
                                                                                     tmp_path) -> None:
    """`--q8-ops`: a live export (--labels-out) keeps its convolutions fp32 in q8 (ORT Web's integer conv costs
    more in WASM than it saves), a photo export quantizes them too; the manifest says which, and asking for the
    other recipe rebuilds the export."""
    from webapp.cli import main

    live, photo = tmp_path / "live", tmp_path / "photo"
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(live), "--dtypes", "fp32,q8",
                 "--labels-out", "--quiet"]) == 0
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(photo), "--dtypes", "fp32,q8",
                 "--quiet"]) == 0
    for out, recipe, int_conv in ((live, "matmul", False), (photo, "all", True)):
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["dtypes"]["q8"]["q8_ops"] == recipe
        assert "fp32" not in manifest["dtypes"] or "q8_ops" not in manifest["dtypes"]["fp32"]
        assert _has_op(out / "onnx/model_quantized.onnx", "ConvInteger") is int_conv
        assert _has_op(out / "onnx/model_quantized.onnx", "MatMulInteger") or _has_op(
            out / "onnx/model_quantized.onnx", "DynamicQuantizeMatMul") or _has_op(
            out / "onnx/model_quantized.onnx", "MatMulIntegerToFloat")
    assert _has_op(live / LABELS_FILES["q8"], "ConvInteger") is False

    # A plain re-export keeps whatever recipe is there (nothing to do); naming the other recipe rebuilds.
    created = json.loads((live / "manifest.json").read_text())["created"]
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(live), "--dtypes", "fp32,q8",
                 "--quiet"]) == 0
    assert json.loads((live / "manifest.json").read_text())["created"] == created
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(photo), "--dtypes", "fp32,q8",
                 "--q8-ops", "matmul", "--quiet"]) == 0
    rebuilt = json.loads((photo / "manifest.json").read_text())
    assert rebuilt["dtypes"]["q8"]["q8_ops"] == "matmul"
    assert not _has_op(photo / "onnx/model_quantized.onnx", "ConvInteger")


def test_an_export_without_labels_out_has_no_labels_graph(tiny_export_dir) -> None:
    manifest = json.loads((tiny_export_dir / "manifest.json").read_text())
    assert manifest["labels_graph"] is None
    assert not any((tiny_export_dir / rel).exists() for rel in LABELS_FILES.values())


def test_hysteresis_keeps_near_ties_and_switches_clear_changes_at_once(tiny_export_dir, tmp_path) -> None:
    """The live flicker filter in the graph: a pixel keeps last frame's label unless the new winner leads it by
    the margin × the frame's mean top-1 − top-2 gap; a pixel where it does switches in this very frame (no lag);
    a pixel marked NO_PREVIOUS (its colour changed) takes the plain argmax. Equal to the numpy twin."""
    from export.labels_graph import NO_PREVIOUS, add_labels_head, hysteresis_labels, mean_gap

    graph = ort_session(add_labels_head(tiny_export_dir / "onnx/model.onnx", tmp_path / "labels.onnx"))
    logits_graph = ort_session(tiny_export_dir / "onnx/model.onnx")
    image = validation_images()[3]
    h, w = image.height, image.width
    x = to_pixel_values([image], 512)
    low = logits_graph.run(None, {"pixel_values": x})[0][0]
    up = upsample_logits(low, h, w)
    gap = mean_gap(low)
    rng = np.random.default_rng(0)
    previous = rng.integers(0, up.shape[0], (1, h, w), dtype=np.uint8)  # "last frame": any labels
    previous[0, : h // 4] = NO_PREVIOUS  # the top quarter moved since the last frame
    best = up.argmax(0)
    lead = up.max(0) - np.take_along_axis(up, np.where(previous == NO_PREVIOUS, 0, previous).astype(np.int64), 0)[0]
    moved = previous[0] == NO_PREVIOUS
    factor = float(np.median(lead[(lead > 0) & ~moved])) / gap  # half the changes are "clear"
    got = graph.run(None, labels_feed(x, h, w, previous, factor))[0][0]
    margin = factor * gap
    clear, close = (lead >= margin * 1.001) & ~moved, (lead < margin * 0.999) & ~moved  # away from rounding
    assert clear.any() and close.any()
    assert (got[clear] == best[clear]).all()  # clear changes: the new label, now
    assert (got[close] == previous[0][close]).all()  # near-ties: last frame's label kept
    assert (got[moved] == best[moved]).all()  # pixels that moved: no previous label, the plain argmax
    twin = hysteresis_labels(up, gap, previous[0], factor)
    assert (got != twin).sum() <= got.size // 10_000  # float32 in the graph vs numpy at the margin
    # Scale-free: the same factor on logits × 8 (a more confident model; a power of two, so exact in float) keeps
    # and switches the same pixels.
    assert (hysteresis_labels(8 * up, 8 * gap, previous[0], factor) == twin).all()
    # Margin 0: the plain argmax whatever the previous labels.
    plain = graph.run(None, labels_feed(x, h, w))[0][0]
    assert (graph.run(None, labels_feed(x, h, w, previous, 0.0))[0][0] == plain).all()
