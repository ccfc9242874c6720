"""Tune live mode's flicker filter (hysteresis on the label) on a briefly trained student, natively.

The page's labels graph keeps a pixel's last label unless the new winner leads it by a margin. This bench runs
the same network (ONNX Runtime, the export's q8 logits graph, upsampled like the graph and the page) on a still,
noisy clip of held-out synthetic faces and on a real change (the clip cuts to another face), and reports for
each rule and margin:

  flicker        share of pixels whose label changes between consecutive frames of the still clip;
  switch now     real changes at the cut (the truth changed, the model's plain argmax sees the new truth, and
                 the label shown was another) that the filter shows in that very frame (100 %: no lag);
  stuck          after the new face's whole clip, pixels still unlike its plain argmax (ghosts of the old face:
                 the filter has no decay, a pixel keeps an old label while the new one leads by less);
  agree          pixels equal to the ground truth on the still clip (the filter must not cost accuracy);
  frozen         share of the still clip's pixels whose label never left frame 0's (≈ 1 − flicker's reach).

Rules: `logit` (the first labels graph: lead ≥ m, in logits), `relative` (lead ≥ m × the frame's mean top-1 −
top-2 gap of the low-resolution logits: the labels graph now) and `relative, gated` (also: only where the
pixel's colour changed by ≤ STILL grey levels since the last frame, as live mode runs it). A logit margin means
different things on models whose logits are on different scales (a random model's logits are within a fraction
of a logit; a trained one's several apart); the relative one does not change if every logit is multiplied by a
constant. Both models are measured: random
weights and the same preset trained for --epochs on --faces synthetic faces (`tests.conftest.train_tiny_parser`).

    python bench/flicker.py                                     # mit-b0-d64 at 128 px, 6 epochs
    python bench/flicker.py --preset tiny --epochs 16 --margins 0,0.25,0.5,1,2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HELDOUT_SEED = 100_000
OUT_SIDE = 256  # label maps at this size (a face crop's side in a 640×480 frame)
STILL = 16  # live.js HYSTERESIS_STILL: the gate, grey levels


def export(model: Path, out: Path) -> Path:
    from webapp.cli import main

    if not (out / "manifest.json").is_file():
        assert main(["export", "--model", str(model), "--out", str(out), "--dtypes", "fp32,q8", "--quiet"]) == 0
    return out


def clip_logits(session, size: int, seeds: list[int], frames: int, noise: float):
    """Upsampled logits (frames, C, OUT_SIDE, OUT_SIDE) for each seed's still, noisy clip, its ground truth, and
    the frame's mean top-1 − top-2 gap at the model's resolution."""
    from PIL import Image

    from export.labels_graph import mean_gap
    from face_studio.preprocess import to_pixel_values, upsample_logits
    from face_studio.training.synth import render_face

    rng = np.random.default_rng(0)
    clips = []
    for seed in seeds:
        image, truth = render_face(seed, OUT_SIDE)
        still = np.asarray(image, dtype=np.float32)
        ups, gaps, shots = [], [], []
        for _ in range(frames):
            pixels = np.clip(still + rng.normal(0, noise, still.shape), 0, 255).round().astype(np.uint8)
            low = session.run(None, {"pixel_values": to_pixel_values([Image.fromarray(pixels)], size)})[0][0]
            gaps.append(mean_gap(low))
            ups.append(upsample_logits(low, OUT_SIDE, OUT_SIDE))
            shots.append(pixels)
        clips.append((np.stack(ups), truth, np.array(gaps), np.stack(shots)))
    return clips


def run_filter(ups, gaps, shots, rule: str, margin: float, start=None):
    """The labels graph's hysteresis over a clip (export.labels_graph.hysteresis_labels, its numpy twin), with
    the page's colour gate (worker.js previousUnder) for `gated` rules; `start`: (labels, pixels) before it."""
    from export.labels_graph import NO_PREVIOUS, hysteresis_labels

    out, previous = [], start
    for up, gap, shot in zip(ups, gaps, shots, strict=True):
        prev = None
        if previous is not None:
            prev = previous[0]
            if rule.endswith("gated"):
                moved = (np.abs(shot.astype(np.int16) - previous[1].astype(np.int16)) > STILL).any(-1)
                prev = np.where(moved, NO_PREVIOUS, prev).astype(np.uint8)
        labels = hysteresis_labels(up, 1.0 if rule == "logit" else gap, prev, margin)
        out.append(labels)
        previous = (labels, shot)
    return out


def measure(clips, rule: str, margin: float) -> dict:
    changed = compared = agree = total = switched = should = stuck = frozen = 0
    for k, (ups, truth, gaps, shots) in enumerate(clips):
        labels = run_filter(ups, gaps, shots, rule, margin)
        for a, b in zip(labels, labels[1:], strict=False):
            changed += int((a != b).sum())
            compared += a.size
        frozen += int(np.logical_and.reduce([lab == labels[0] for lab in labels]).sum())
        agree += sum(int((lab == truth).sum()) for lab in labels)
        total += len(labels) * truth.size
        # The cut to the next clip's face, played on from this clip's last label map. A real change: the
        # truth changed there, the model sees the new truth, and the label shown was something else.
        nups, ntruth, ngaps, nshots = clips[(k + 1) % len(clips)]
        after = run_filter(nups, ngaps, nshots, rule, margin, start=(labels[-1], shots[-1]))
        plain = nups[0].argmax(0)
        real = (ntruth != truth) & (plain == ntruth) & (labels[-1] != plain)
        should += int(real.sum())
        switched += int((after[0][real] == plain[real]).sum())
        stuck += int((after[-1] != nups[-1].argmax(0)).sum())
    n = len(clips) * clips[0][1].size
    return {"flicker": changed / compared, "switch": switched / max(should, 1), "agree": agree / total,
            "frozen": frozen / n, "stuck": stuck / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mit-b0-d64", help="student preset (default: the live student)")
    parser.add_argument("--size", type=int, default=128, help="training and input size (px)")
    parser.add_argument("--faces", type=int, default=128, help="synthetic faces to train on")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (batch 16: faces/16 steps each)")
    parser.add_argument("--margins", default="0,0.05,0.1,0.2,0.3,0.5,1", help="margins to try")
    parser.add_argument("--frames", type=int, default=12, help="frames of each still clip")
    parser.add_argument("--clips", type=int, default=3, help="held-out faces (one still clip each)")
    parser.add_argument("--noise", type=float, default=3.0, help="sensor noise, grey levels (σ)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/face-studio-bench/flicker"))
    args = parser.parse_args()

    import json

    from export.validation import ort_session
    from tests.conftest import build_tiny_parser, train_tiny_parser

    args.work.mkdir(parents=True, exist_ok=True)
    tag = f"{args.preset}-{args.size}"
    random_dir = args.work / f"{tag}-random"
    if not (random_dir / "config.json").is_file():
        build_tiny_parser(random_dir, preset=args.preset)
        pre = json.loads((random_dir / "preprocessor_config.json").read_text())
        pre["size"] = {"height": args.size, "width": args.size}
        (random_dir / "preprocessor_config.json").write_text(json.dumps(pre))
    trained_root = args.work / f"{tag}-f{args.faces}-e{args.epochs}"
    start = time.perf_counter()
    if not (trained_root / "parser" / "model.safetensors").is_file():
        train_tiny_parser(trained_root, preset=args.preset, size=args.size, faces=args.faces, epochs=args.epochs)
    train_s = time.perf_counter() - start
    training = json.loads((trained_root / "parser" / "training.json").read_text())
    seeds = [HELDOUT_SEED + i for i in range(args.clips)]
    margins = [float(m) for m in args.margins.split(",")]
    print(f"{args.preset} at {args.size} px trained {args.epochs} epochs on {args.faces} synthetic faces "
          f"({train_s:.0f} s this run; val mIoU "
          f"{training['best']['val_miou']:.3f}, {training['steps']} steps); "
          f"{args.clips} held-out faces × {args.frames} still frames, noise σ {args.noise:g}, q8, "
          f"labels at {OUT_SIDE}² px.\n")
    rows = []
    for name, model in (("random", random_dir), ("trained", trained_root / "parser")):
        exported = export(model, args.work / f"{model.parent.name}-{model.name}-export")
        session = ort_session(exported / "onnx/model_quantized.onnx")
        clips = clip_logits(session, args.size, seeds, args.frames, args.noise)
        gap = float(np.mean([c[2].mean() for c in clips]))
        for rule in ("logit", "relative", "relative, gated"):
            for margin in margins:
                if margin == 0 and rule != "logit":
                    continue
                m = measure(clips, rule, margin)
                rows.append([name, f"{gap:.3f}", "plain argmax" if margin == 0 else rule, f"{margin:g}",
                             f"{100 * m['flicker']:.2f} %", f"{100 * m['switch']:.1f} %", f"{100 * m['stuck']:.2f} %",
                             f"{100 * m['agree']:.1f} %", f"{100 * m['frozen']:.1f} %"])
    from bench._compare import print_table

    print_table(["model", "mean top-1 − top-2 gap (logits)", "rule", "margin", "flicker", "switch now", "stuck",
                 "agree with truth", "never changed"], rows, right={1, 3, 4, 5, 6, 7, 8}, script="bench/flicker.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
