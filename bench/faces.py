"""Benchmark faces anywhere (issue 15) on synthetic scenes: detection strategies, whole-image vs crop parsing,
time per stage. Native ONNX Runtime on this machine's CPU; the page's timings are bench/browser.py's and
bench/live.py's business (the detector runs there through the same onnxruntime-web as the parser).

Scenes: our synthetic faces (face_studio.training.synth, with exact labels) pasted on a flat backdrop of 1920×1080,
each face picture's side 5, 10, 20 or 40 % of the canvas width, 1, 3 or 6 faces (what fits without overlap), plus a
mixed scene (one 40 % face and three 5 % ones) and skimage's astronaut. A tiny SegFormer is trained briefly on
synthetic faces first (`face-studio train`, the tests' recipe) unless --parser gives an export.

Prints, as Markdown tables:
1. detection recall / precision / median ms per strategy (short-range, full-range, full-range + tiles, and a second
   pass: tiles only when the whole image found nothing); a detection is right when its box centre lies in a face
   picture that no other detection matched;
2. per face size: mIoU (over the face pictures' squares) of the face parsed alone (its own picture), of the whole
   image squashed to the parser's input, and of crop → parse → paste; and crop / alone;
3. time per stage of the face-aware parse (detector, crop, parser, paste), median over the scenes.

    python bench/faces.py                       # train the parser (~20 min on 2 busy cores), then measure
    python bench/faces.py --parser DIR          # an export made earlier (e.g. the one this script saved)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._compare import print_table  # noqa: E402

CANVAS = (1920, 1080)
SIZES = (0.05, 0.10, 0.20, 0.40)
COUNTS = (1, 3, 6)
BACKDROP = (90, 110, 100)
SEED0 = 500_000  # synth seeds never trained on


def train_parser(work: Path, faces: int, epochs: int, size: int) -> Path:
    """The tests' recipe (tests/training/conftest.py): the tiny preset from scratch on synthetic faces, exported."""
    import torch
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    from face_studio.configs import face_parser_config
    from face_studio.preprocess import preprocessor_config
    from face_studio.training.synth import write_dataset
    from webapp.cli import main

    data = write_dataset(work / "synth", faces, size, 0, progress=False)
    torch.manual_seed(0)
    base = work / "base"
    SegformerForSemanticSegmentation(face_parser_config("tiny")).eval().save_pretrained(base)
    cfg = preprocessor_config()
    cfg.pop("image_processor_type")
    SegformerImageProcessor(**cfg).save_pretrained(base)
    run = work / "run"
    assert main(["train", "--data", str(data), "--base", str(base), "--out", str(run), "--epochs", str(epochs),
                 "--lr", "5e-3", "--batch", "16", "--size", str(size), "--seed", "0", "--no-augment",
                 "--quiet"]) == 0
    export = work / "export"
    assert main(["export", "--model", str(run), "--out", str(export), "--dtypes", "fp32", "--quiet"]) == 0
    return export


def scene(fraction: float, count: int, seed: int, mixed: bool = False):
    """(image, ground truth, face squares) or None when ``count`` faces of that size don't fit without overlap."""
    from face_studio.training.synth import render_face

    rng = np.random.default_rng(seed)
    width, height = CANVAS
    sides = [round(0.40 * width)] + [round(0.05 * width)] * 3 if mixed else [round(fraction * width)] * count
    squares: list[list[int]] = []
    for side in sides:
        for _ in range(500):
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            if all(x + side <= a or b <= x or y + side <= c or d <= y for a, c, b, d in squares):
                squares.append([x, y, x + side, y + side])
                break
        else:
            return None
    image = Image.new("RGB", CANVAS, BACKDROP)
    truth = np.zeros((height, width), np.uint8)
    pictures = []
    for i, (x0, y0, x1, y1) in enumerate(squares):
        face, labels = render_face(seed * 10 + i, x1 - x0)
        image.paste(face, (x0, y0))
        truth[y0:y1, x0:x1] = labels
        pictures.append((face, labels))
    return image, truth, squares, pictures


def match(found, squares: list[list[int]]) -> int:
    """Detections whose box centre lies in a face square not matched yet."""
    free = list(range(len(squares)))
    hits = 0
    for det in found:
        cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        for i in free:
            x0, y0, x1, y1 = squares[i]
            if x0 <= cx < x1 and y0 <= cy < y1:
                free.remove(i)
                hits += 1
                break
    return hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parser", type=Path, help="an export folder (default: train one, ~20 min here)")
    parser.add_argument("--scenes", type=int, default=2, help="scenes per (size, count) (default 2)")
    parser.add_argument("--train-faces", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=128, help="parser input size when training (default 128)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="copy the trained export here (to rerun with --parser)")
    args = parser.parse_args()

    import onnxruntime as ort

    from face_studio.faces.detector import FaceDetector
    from face_studio.training.metrics import segmentation_scores
    from webapp.parsing import FaceParser, detector_dir, parse_image

    with tempfile.TemporaryDirectory() as tmp:
        export = args.parser
        if export is None:
            start = time.perf_counter()
            export = train_parser(Path(tmp), args.train_faces, args.epochs, args.size)
            print(f"trained the tiny parser on {args.train_faces} synthetic faces at {args.size}² for "
                  f"{args.epochs} epochs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            if args.keep:
                import shutil

                shutil.copytree(export, args.keep, dirs_exist_ok=True)
        face_parser = FaceParser(export, "fp32", provider="cpu")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        face_parser._session = ort.InferenceSession(str(face_parser.model_path), options,
                                                    providers=["CPUExecutionProvider"])

        scenes = []
        for fraction in SIZES:
            for count in COUNTS:
                for k in range(args.scenes):
                    made = scene(fraction, count, SEED0 + int(fraction * 1000) * 100 + count * 10 + k)
                    if made is not None:
                        scenes.append((f"{fraction:.0%}", *made))
        for k in range(args.scenes):
            scenes.append(("mixed", *scene(0, 0, SEED0 + 90_000 + k, mixed=True)))

        # 1. Detection strategies.
        from skimage import data

        astronaut = Image.fromarray(data.astronaut())
        strategies = {
            "short-range, whole image": FaceDetector(detector_dir(), "short", small_faces="whole"),
            "full-range, whole image": FaceDetector(detector_dir(), "full", small_faces="whole"),
            "full-range + tiles": FaceDetector(detector_dir(), "full", small_faces="tiles"),
        }
        rows = []
        for name, det in [*strategies.items(), ("second pass: tiles when whole found none", None)]:
            per_size: dict[str, list[int]] = {}
            hits = found = truth_n = 0
            times = []
            for label, image, _, squares, _ in scenes:
                t0 = time.perf_counter()
                if det is None:
                    dets = strategies["full-range, whole image"].detect(image)
                    if not dets:
                        dets = strategies["full-range + tiles"].detect(image)
                else:
                    dets = det.detect(image)
                times.append((time.perf_counter() - t0) * 1000)
                h = match(dets, squares)
                hits, found, truth_n = hits + h, found + len(dets), truth_n + len(squares)
                per_size.setdefault(label, [0, 0])
                per_size[label][0] += h
                per_size[label][1] += len(squares)
            a = (det or strategies["full-range, whole image"]).detect(astronaut)
            rows.append([name, *(f"{h}/{n}" for h, n in per_size.values()), f"{hits / truth_n:.2f}",
                         f"{hits / max(found, 1):.2f}", f"{len(a)} ({a[0].score:.2f})" if a else "0",
                         f"{statistics.median(times):.0f}"])
        print("### Detection (synthetic scenes, 1920×1080)\n")
        print_table(["strategy", *(f"found {label}" for label in per_size), "recall", "precision", "astronaut",
                     "median ms"], rows, set(range(1, len(per_size) + 6)), script="bench/faces.py")

        # 2. mIoU per face size: alone, whole image, crop → parse → paste (the shipped strategy).
        rows = []
        stages: dict[str, list[float]] = {}
        by_size: dict[str, dict[str, list]] = {}
        for label, image, truth, squares, pictures in scenes:
            whole = face_parser.parse(image)
            result = parse_image(face_parser, image, "auto")
            for key, value in result.timings.items():
                stages.setdefault(key, []).append(value)
            bucket = by_size.setdefault(label, {"alone": [[], []], "whole": [[], []], "crop": [[], []]})
            for (x0, y0, x1, y1), (picture, labels) in zip(squares, pictures, strict=True):
                bucket["alone"][0].append(face_parser.parse(picture))
                bucket["alone"][1].append(labels)
                for key, pred in (("whole", whole), ("crop", result.labels)):
                    bucket[key][0].append(pred[y0:y1, x0:x1])
                    bucket[key][1].append(truth[y0:y1, x0:x1])
        for label, bucket in by_size.items():
            miou = {key: segmentation_scores(*pair)["miou"] for key, pair in bucket.items()}
            rows.append([label, str(len(bucket["alone"][0])), f"{miou['alone']:.3f}", f"{miou['whole']:.3f}",
                         f"{miou['crop']:.3f}", f"{miou['crop'] / miou['alone']:.0%}"])
        print(f"\n### Parsing: mIoU per face size (tiny parser at {face_parser.input_size}², trained on synthetic "
              "faces)\n")
        print_table(["face picture / width", "faces", "alone", "whole image", "crop → parse → paste",
                     "crop / alone"], rows, {1, 2, 3, 4, 5}, script="bench/faces.py")

        # 3. Time per stage.
        print("\n### Face-aware parse, ms per stage (median over the scenes; parser = all crops of a scene)\n")
        names = [k for k in ("detect", "crop", "preprocess", "model", "postprocess", "paste") if k in stages]
        print_table(["stage", *names], [["ms", *(f"{statistics.median(stages[k]):.1f}" for k in names)]],
                    set(range(1, len(names) + 1)), script="bench/faces.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
