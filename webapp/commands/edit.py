"""``face-studio edit IMAGE --regions hair,hat --prompt … --out FILE``: parse on this machine, regenerate
only those regions with SD3.5, keep every other pixel exactly. ``--face 2:hair:"red hair" --face 3:lips:"a smile"``
edits chosen faces (numbered by detection score), a prompt each, in one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from webapp.commands.serve import lora_spec
from webapp.editing.faces import MAX_EDIT_FACES
from webapp.editing.masks import MAX_FEATHER, MAX_GROW
from webapp.editing.service import DEFAULT_FEATHER, DEFAULT_GROW, DEFAULT_STRENGTH
from webapp.generation.presets import MEMORY_MODE_NAMES
from webapp.settings import DEFAULT_PARSER_DIR, DEFAULT_SD_MODEL, ServeSettings

HELP = "Regenerate chosen face regions (hair, lips, …) of an image with SD3.5; the rest stays bit-exact."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", type=Path, metavar="IMAGE", help="the photo or generated image to edit")
    p.add_argument("--prompt", default="", help='what to paint in the regions, e.g. "short red curly hair" '
                   "(required, unless every --face has its own)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the result PNG")
    p.add_argument("--regions", default="", help="comma-separated classes or groups: hair,hat,lips,eyes,…")
    p.add_argument("--mask", type=Path, default=None, help="a mask PNG of the image's size (white = regenerate); "
                   "combined with --regions if both are given")
    p.add_argument("--face", action="append", default=[], metavar="N:REGIONS:PROMPT",
                   help=f"edit face N (1 = the highest-scoring face) with its own regions and prompt; empty REGIONS "
                   f"or PROMPT take --regions / --prompt; repeat for more faces (at most {MAX_EDIT_FACES})")
    p.add_argument("--face-map", type=Path, default=None, metavar="FILE", help="with --face: the faces' owner map "
                   "(PNG, pixel value = face number) instead of finding faces here; --mask is then face-numbered "
                   "too (value N = regenerate for face N)")
    p.add_argument("--restyle", action="store_true", help="Img2Img over the whole image instead of a mask")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help=f"0.05–1 (default {DEFAULT_STRENGTH})")
    p.add_argument("--steps", type=int, default=None, help="default: the model's preset (Large Turbo 4, Large 28, …)")
    p.add_argument("--guidance", type=float, default=None, help="default: the model's preset (Large Turbo 0, …)")
    p.add_argument("--seed", type=int, default=-1, help="-1 = random (the seed used is printed and recorded)")
    p.add_argument("--grow", type=int, default=DEFAULT_GROW, help=f"px, ±{MAX_GROW}; negative shrinks")
    p.add_argument("--feather", type=int, default=DEFAULT_FEATHER, help=f"px, 0–{MAX_FEATHER}")
    p.add_argument("--save-mask", type=Path, default=None, metavar="FILE", help="also write the mask used (PNG)")
    p.add_argument("--parser", type=Path, default=DEFAULT_PARSER_DIR, metavar="DIR", help="face-parser export")
    p.add_argument("--sd-model", default=DEFAULT_SD_MODEL, help="diffusers SD3.5 hub id or local folder")
    p.add_argument("--device", default=None, help="torch device (default: cuda when present; cpu on purpose)")
    p.add_argument("--memory-mode", default="auto", choices=MEMORY_MODE_NAMES)
    p.add_argument("--lora", type=lora_spec, action="append", default=[], metavar="PATH_OR_ID[:WEIGHT_NAME]=SCALE")


def face_spec(text: str) -> dict:
    """``N:REGIONS:PROMPT`` → one entry of the ``faces`` list (checked by webapp.editing.faces.parse_faces)."""
    number, _, rest = text.partition(":")
    regions, _, prompt = rest.partition(":")
    if not number.strip().isdecimal() or int(number) < 1:
        from face_studio.errors import UserError

        raise UserError(f"--face {text[:40]!r}: give N:REGIONS:PROMPT with N a face number (1, 2, …), "
                        'e.g. --face 2:hair:"red curly hair" (REGIONS or PROMPT may be empty).')
    return {"face": int(number), "regions": regions, "prompt": prompt}


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from face_studio.atomic import save_image
    from face_studio.errors import UserError  # the CLI prints it and exits 2
    from face_studio.images import load_image
    from webapp.backend.local import LocalBackend
    from webapp.editing.faces import parse_faces
    from webapp.editing.masks import region_names
    from webapp.editing.service import EditRequest

    settings = ServeSettings(parser_dir=args.parser, sd_model=args.sd_model, device=args.device,
                             memory_mode=args.memory_mode, loras=list(args.lora), output_dir=args.out.parent)
    # 1. Check inputs cheaply before loading anything.
    if not args.out.suffix.lower() == ".png":
        raise UserError(f"--out {args.out}: the result is a PNG (it carries the edit's parameters); "
                        "give a .png path.")
    faces = parse_faces([face_spec(text) for text in args.face], what="--face")
    if args.restyle and faces:
        raise UserError("--restyle changes the whole image: leave out --face, or --restyle.")
    if args.face_map and not faces:
        raise UserError("--face-map goes with --face: name the faces to edit (--face N:REGIONS:PROMPT).")
    unprompted = [f.face for f in faces if not f.prompt.strip()]
    if unprompted and not args.prompt.strip():
        raise UserError(f"--face {unprompted[0]} has no prompt: write it after the second colon "
                        f'(--face {unprompted[0]}:hair:"red hair") or give --prompt.')
    if not faces and not args.prompt.strip():
        raise UserError('--prompt is required: say what to paint, e.g. --prompt "short red curly hair" (or give '
                        "each --face its own prompt).")
    regions = region_names(args.regions, "--regions")
    photo = load_image(args.image, what="image")
    mask = load_image(args.mask, what="mask") if args.mask else None
    backend = LocalBackend(settings)
    # every --lora, at its scale
    loras = tuple(pair for name in backend.lora_names for pair in backend.service.choose_loras(name, None))
    req = EditRequest(prompt=args.prompt, negative_prompt=args.negative_prompt, strength=args.strength,
                      steps=args.steps, guidance=args.guidance, seed=args.seed, grow=args.grow,
                      feather=args.feather, loras=loras)
    if args.restyle:
        result = backend.restyle(photo, req)  # the pipeline shows a progress bar per step
    elif faces:
        result = backend.inpaint_faces(photo, req, faces, regions=regions, mask=mask, face_map=args.face_map)
    else:
        labels = None
        if args.regions:
            from webapp.parsing import get_parser

            labels = get_parser(args.parser).parse(photo)
        result = backend.inpaint(photo, req, mask=mask, regions=args.regions, labels=labels)
    # 2. The saved PNG (with its record) goes to --out; the mask on request.
    result.path.replace(args.out)
    if args.save_mask:
        save_image(Image.fromarray(result.alpha), args.save_mask, format="PNG")
    what = ", ".join(result.regions) or ("whole image" if args.restyle else "painted mask")
    if faces:
        numbers = ", ".join(str(f["face"]) for f in result.record["faces"])
        what = f"face{'s' if len(faces) > 1 else ''} {numbers}: {what}"
    print(f"wrote {args.out} ({what}; seed {result.seed}; {result.seconds:.1f} s)")
    return 0
