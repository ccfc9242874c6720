"""``face-studio parse``: label maps, colour masks and a JSON summary for many images (same engine as
the server's ``parse`` API).

With ``--faces auto`` (the default) or ``largest`` each face is found and parsed on its own crop; the JSON lists the
faces (box, score, keypoints, crop, area_percent, in the original image's pixels), ``<name>.faces.png`` is the owner
map (pixel = face number, 0 = none) and ``<name>.face-<k>.png`` is the exact crop face k was parsed on (black where
it reaches outside the picture): parsing that file alone gives face k's labels inside its crop."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from face_studio.atomic import atomic_write, save_image
from face_studio.faces.spec import DEFAULT_MODE as DEFAULT_FACES
from face_studio.faces.spec import MODES as FACES_MODES
from face_studio.onnx_files import DTYPES

HELP = "Parse faces in images or folders: label-map PNGs (pixel = class id), colour masks, JSON summaries."
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from webapp.settings import DEFAULT_PARSER_DIR

    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER",
                        help="image files, or folders (their images, not recursive)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the outputs (created)")
    parser.add_argument("--batch", type=int, default=4, help="images per model call (default 4)")
    parser.add_argument("--dtype", default="q8", choices=DTYPES,
                        help="which ONNX file of the export to run (default q8, as the browser)")
    parser.add_argument("--parser", type=Path, default=DEFAULT_PARSER_DIR, metavar="DIR",
                        help=f"export folder made by `face-studio export` (default {DEFAULT_PARSER_DIR})")
    parser.add_argument("--faces", default=DEFAULT_FACES, choices=FACES_MODES,
                        help="auto: find every face and parse each on its own crop (the whole image when none is "
                             "found); largest: the largest face only; off: the whole image (default auto)")
    parser.add_argument("--detector", type=Path, default=None, metavar="DIR",
                        help="folder of the converted face detector (default: the one the set-up made, "
                             "static/vendor/face-detector)")


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files to parse (named files as given, folders' image files sorted) and notes on what was ignored."""
    files: list[Path] = []
    notes: list[str] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
            ignored = [p.name for p in found if p not in images]
            if ignored:
                notes.append(f"{path}: ignored {len(ignored)} file(s) without an image extension: "
                             f"{', '.join(ignored[:5])}{' …' if len(ignored) > 5 else ''}")
            files.extend(images)
        else:
            files.append(path)  # a missing or bad file is reported when loaded
    return files, notes


OUTPUT_SUFFIXES = (".labels.png", ".mask.png", ".json", ".faces.png")


def output_stems(files: list[Path]) -> tuple[list[str], list[str]]:
    """One distinct output stem per input, and a note for each input that could not keep its own stem.

    Inputs keep their file's stem unless an earlier input took it (``a/x.png`` and ``b/x.png``, or ``x.png``
    and ``x.jpg``); a later one gets ``x-2``, ``x-3``, … (the first number not taken). Names are compared
    case-insensitively, so no two outputs share a name on any file system.
    """
    taken: set[str] = set()
    stems: list[str] = []
    notes: list[str] = []
    for path in files:
        base = path.stem or "image"
        stem, number = base, 1
        while stem.casefold() in taken:
            number += 1
            stem = f"{base}-{number}"
        taken.add(stem.casefold())
        stems.append(stem)
        if stem != base:
            notes.append(f"{path} is written as {stem}.* ({base}.* is another input's)")
    return stems, notes


def run(args: argparse.Namespace) -> int:

    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from face_studio.errors import UserError
    from face_studio.faces.parse import FaceParse
    from face_studio.images import load_image
    from face_studio.preprocess import colorize
    from webapp.parsing import faces_summary, get_detector, get_parser, label_map_png, parse_image, summary_json

    # 1. Check inputs before any work.
    if args.batch < 1:
        print(f"error: --batch must be at least 1 (got {args.batch}).", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file: give a folder for the outputs (it is created if needed).")
    files, notes = collect_images(args.inputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not files:
        print("error: no images found in the given inputs.", file=sys.stderr)
        return 2
    parser = get_parser(args.parser, args.dtype)
    detector = get_detector(folder=args.detector) if args.faces != "off" else None
    try:
        backend = f"ONNX Runtime ({parser.providers[0].removesuffix('ExecutionProvider')})"
        if detector is not None:
            detector.check()  # a missing or damaged detector is said once, before any work
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {args.out}: cannot create the folder ({err.strerror or err}): choose a folder you "
                        "can write to.") from None
    stems, renamed = output_stems(files)
    for note in renamed:
        print(f"note: {note}", file=sys.stderr)

    # 2. Parse in batches; a bad file is reported and skipped, the others still get their outputs.
    failures: list[tuple[Path, str]] = []
    written = replaced = 0
    with tqdm(total=len(files), desc="parsing", unit="image") as progress:
        for start in range(0, len(files), args.batch):
            chunk = list(zip(files[start:start + args.batch], stems[start:start + args.batch], strict=True))
            loaded = []
            for path, stem in chunk:
                try:
                    loaded.append((path, stem, load_image(path)))
                except UserError as err:
                    failures.append((path, str(err)))
                    progress.update(1)
            if args.faces == "off":  # the whole images, batched as before
                results = [FaceParse(r.labels, np.zeros_like(r.labels), [], None, [], r.timings)
                           for r in parser.parse_batch([image for _, _, image in loaded])]
            else:  # per image: its faces' crops are the batch
                results = [parse_image(parser, image, args.faces, detector) for _, _, image in loaded]
            # 3. Outputs per image: label map, colour mask, summary JSON, owner map and face crops (atomic writes).
            for (path, stem, _), result in zip(loaded, results, strict=True):
                crops = [args.out / f"{stem}.face-{k}.png" for k in range(1, len(result.crops) + 1)]
                replaced += sum((args.out / f"{stem}{suffix}").exists() for suffix in OUTPUT_SUFFIXES)
                replaced += sum(crop.exists() for crop in crops)
                atomic_write(args.out / f"{stem}.labels.png", label_map_png(result.labels))
                save_image(Image.fromarray(colorize(result.labels)), args.out / f"{stem}.mask.png")
                if result.faces:
                    atomic_write(args.out / f"{stem}.faces.png", label_map_png(result.owner))
                for crop, image in zip(crops, result.crops, strict=True):
                    save_image(image, crop)
                summary = faces_summary(result, args.faces)
                summary["face_crops"] = [crop.name for crop in crops]
                atomic_write(args.out / f"{stem}.json", summary_json(
                    result.labels, source=str(path), backend=backend, dtype=args.dtype,
                    timings=result.timings, faces=summary).encode())
                if result.note:
                    print(f"note: {path}: {result.note}", file=sys.stderr)
                written += 1
                progress.update(1)

    # 4. Report.
    print(f"parsed {written} of {len(files)} image(s) into {args.out} ({backend}, {args.dtype}, faces {args.faces})")
    if renamed:
        print(f"{len(renamed)} input(s) shared a name with another and got a numbered name (see the notes above)")
    if replaced:
        print(f"note: replaced {replaced} output file(s) of an earlier run in {args.out}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} image(s) failed and were skipped:", file=sys.stderr)
        for path, message in failures:
            print(f"  {path}: {message}", file=sys.stderr)
        return 1
    return 0
