"""Face-aware editing: one documented entry point per job, sharing the Generate view's loaded pipeline.

    from webapp.editing.service import EditRequest, edit_image
    result = edit_image(service, photo, EditRequest(prompt="short red curly hair"), regions="hair",
                        labels=parser.parse(photo))

1. the mask comes from a PNG (white = regenerate), from class names through the one label table, or both
   (their union); 2. it is grown/shrunk, checked (not empty, not everything) and feathered — at the working
   size, before the GPU lock is taken; 3. the image and mask go to ``StableDiffusion3InpaintPipeline`` at a
   working size SD3 accepts (the photo's aspect, ≤ 1 MP); 4. the result is composited
   so every pixel outside the feathered mask is a bit-exact copy of the input; 5. the PNG records the
   regions, mask settings and prompt. ``restyle_image`` is the whole-image Img2Img variant.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from face_studio import __version__
from face_studio.errors import UserError
from face_studio.labels import LABEL2ID, NAMES
from webapp.editing import faces as FC
from webapp.editing.composite import composite
from webapp.editing.fields import DEFAULT_FEATHER, DEFAULT_GROW, DEFAULT_STRENGTH, edit_fields
from webapp.editing.masks import MaskError, mask_from_image, prepare, prepare_faces, regions_to_mask
from webapp.generation import presets as P
from webapp.generation.params import SAMPLER, validate, write_png
from webapp.generation.params import a1111_text as params_text
from webapp.generation.run import ProgressFn

if TYPE_CHECKING:
    from webapp.generation.jobs import PipelineRunner  # the backend: local or Ray (webapp.backend)

WORK_PIXELS = 1024 * 1024  # SD3.5's native area; larger inputs are edited at this area and scaled back
MIN_WORK_SIDE = 256


@dataclass(frozen=True)
class EditRequest:
    """What to generate inside the mask (validated by :func:`check_request`)."""

    prompt: str
    negative_prompt: str = ""
    strength: float = DEFAULT_STRENGTH
    steps: int | None = None  # None: the loaded model's preset (Large Turbo: 4)
    guidance: float | None = None  # None: the loaded model's preset (Large Turbo: 0)
    seed: int = -1
    grow: int = DEFAULT_GROW
    feather: int = DEFAULT_FEATHER
    max_sequence_length: int = P.DEFAULT_SEQ_LENGTH
    loras: tuple[tuple[str, float], ...] = ()  # allowed LoRA names with scales (see webapp.generation.loras)


@dataclass
class EditResult:
    image: Image.Image
    mask: np.ndarray  # grown bool mask actually regenerated
    alpha: np.ndarray  # uint8 feathered alpha used for the composite
    seed: int
    regions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    path: Path | None = None
    record: dict = field(default_factory=dict)


def names_order(name: str) -> int:
    return LABEL2ID.get(name, len(NAMES))


def denoising_steps(steps: int, strength: float) -> int:
    """The steps an img2img/inpaint run denoises: diffusers skips the first int(steps − steps·strength)
    timesteps (SD3 img2img/inpaint ``get_timesteps``)."""
    return steps - int(max(steps - steps * strength, 0))


def check_request(req: EditRequest, preset: str = "Custom") -> EditRequest:
    """Validate prompt, steps, guidance and seed with the Generate view's rules; strength, grow and feather
    with the edit fields (:mod:`webapp.editing.fields`). Steps and guidance left None take ``preset``'s (the
    loaded model's: see ``GenerationService.default_preset``)."""
    fields = edit_fields()
    strength = fields["strength"].check(req.strength)
    grow_px, feather_px = fields["grow"].check(req.grow), fields["feather"].check(req.feather)
    checked = validate(prompt=req.prompt, negative_prompt=req.negative_prompt, preset=preset, steps=req.steps,
                       guidance=req.guidance, seed=req.seed, max_sequence_length=req.max_sequence_length)
    if denoising_steps(checked.steps, strength) < 1:
        raise UserError(f"{checked.steps} steps at strength {strength:g} runs no denoising step: raise either.")
    return EditRequest(prompt=checked.prompt, negative_prompt=checked.negative_prompt, strength=strength,
                       steps=checked.steps, guidance=checked.guidance, seed=checked.with_seed().seed,
                       grow=grow_px, feather=feather_px,
                       max_sequence_length=checked.max_sequence_length, loras=tuple(req.loras))


def working_size(width: int, height: int) -> tuple[int, int]:
    """The size SD3 runs at: the image's aspect, ≤ 1 MP (small images scaled up so the short side is
    ≥ 256), each side a multiple of 16 and at most 2048."""
    scale = min(1.0, math.sqrt(WORK_PIXELS / (width * height)))
    scale = max(scale, MIN_WORK_SIDE / min(width, height))
    m = P.SIZE_MULTIPLE

    def side(v: float) -> int:
        return min(P.MAX_SIDE, max(MIN_WORK_SIDE, int(round(v * scale / m)) * m))

    return side(width), side(height)


def select_mask(image: Image.Image, *, mask: Image.Image | np.ndarray | None = None,
                regions: str | list[str] | None = None,
                labels: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """The user's bool mask (before grow) from a mask image and/or region names (their union)."""
    has_regions = bool(regions) and (regions if isinstance(regions, str) else any(r.strip() for r in regions))
    if mask is None and not has_regions:
        raise MaskError("nothing to regenerate: give a mask (white = regenerate) or region names such as "
                        "'hair' or 'lips'.")
    selected = np.zeros((image.height, image.width), dtype=bool)
    names: list[str] = []
    if has_regions:
        if labels is None:
            raise MaskError("region names need a parse of the image: none was given.")
        if labels.shape != selected.shape:
            raise MaskError(f"the label map is {labels.shape[1]}×{labels.shape[0]} but the image is "
                            f"{image.width}×{image.height}.")
        region_mask, ids = regions_to_mask(labels, regions)
        names = [NAMES[i] for i in ids]
        if not region_mask.any() and mask is None:
            present = ", ".join(NAMES[i] for i in np.unique(labels))
            raise MaskError(f"none of {', '.join(names)} was found in this image (it shows: {present}): pick "
                            "regions that are there, or paint a mask.")
        selected |= region_mask
    if mask is not None:
        selected |= mask_from_image(mask, image.size)
    return selected, names


def edit_image(service: PipelineRunner, image: Image.Image, req: EditRequest, *,
               mask: Image.Image | np.ndarray | None = None, regions: str | list[str] | None = None,
               labels: np.ndarray | None = None, mask_regions: list[str] | None = None,
               progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> EditResult:
    """Regenerate only the masked part of ``image``; everything outside the feathered mask is kept exactly.

    ``mask_regions`` names the classes a supplied mask was made from (the browser's parse); they are
    only recorded in the PNG.
    """
    # 1. Check inputs before touching the GPU.
    service.check_available()
    req = check_request(req, service.default_preset)
    image = image.convert("RGB")
    selected, names = select_mask(image, mask=mask, regions=regions, labels=labels)
    names = sorted(set(names) | set(mask_regions or []), key=names_order)
    # 2. Grow, check and feather at the working size (bounded work), before the GPU lock.
    work = working_size(*image.size)
    prepared = prepare(selected, req.grow, req.feather, work)
    grown, alpha = prepared.grown, prepared.alpha

    # 3. Run the inpaint pipeline at SD3's working size (here, or on a Ray replica: only this call goes there).
    generated, seconds = _run(service, "inpaint", req, progress, cancel, image=image.resize(work, Image.LANCZOS),
                              mask_image=prepared.work_mask, width=work[0], height=work[1])

    # 4. Composite exactly and record how it was made.
    result = composite(image, generated, alpha)
    record = _record(req, mode="inpaint", regions=names, coverage=float(grown.mean()), work=work,
                     model=service.model, has_mask=mask is not None)
    out = EditResult(result, grown, alpha, req.seed, names, seconds, record=record)
    out.path = save_edit(result, service.output_path(f"{record['mode']}-{req.seed}"), record)
    return out


def edit_faces(service: PipelineRunner, image: Image.Image, req: EditRequest, faces: list[FC.FaceEdit], *,
               labels: np.ndarray | None = None, owner: np.ndarray | None = None,
               mask: Image.Image | np.ndarray | None = None, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> EditResult:
    """Regenerate chosen faces of ``image``, each with its own regions and prompt, in one job.

    ``faces`` come from :func:`webapp.editing.faces.parse_faces` (numbered by detection score); ``labels`` and
    ``owner`` are the image's face parse (needed for region names; ``owner`` also keeps each face's grown mask
    off the other chosen faces); ``mask`` is face-numbered (value k = regenerate for face k, 0 = keep). One
    inpaint per face, each from the original image with the same seed (so a face's result does not depend on
    which other faces were chosen), composited in face-number order; every pixel outside all the faces'
    feathered masks is a bit-exact copy of the input.
    """
    # 1. Check inputs before touching the GPU: the faces, each prompt (the request's by default), the masks.
    service.check_available()
    if not faces:
        raise MaskError("no face chosen: give faces as [{\"face\": 2, \"prompt\": \"…\"}], or edit without faces.")
    faces = sorted(faces, key=lambda f: f.face)
    base = req.prompt if isinstance(req.prompt, str) else ""
    for f in faces:
        if not (f.prompt or base).strip():
            raise UserError(f"face {f.face} has no prompt: give it one (\"prompt\": \"…\") or set the "
                            "request's prompt.")
    req = check_request(replace(req, prompt=faces[0].prompt or base), service.default_preset)  # one seed
    prompts = {f.face: check_request(replace(req, prompt=f.prompt or base)).prompt for f in faces}
    image = image.convert("RGB")
    FC.check_numbers(faces, FC.face_count(owner))
    numbered = FC.numbered_mask(mask, image.size, faces) if mask is not None else None
    selected = FC.selections(faces, image.size, labels=labels, owner=owner, mask=numbered)
    # 2. Grow, check and feather each face at the working size, before the GPU lock.
    work = working_size(*image.size)
    prepared = prepare_faces(selected, owner, req.grow, req.feather, work)

    # 3. One inpaint per face at SD3's working size (progress counts every face's steps).
    small = image.resize(work, Image.LANCZOS)
    per_face = denoising_steps(req.steps, req.strength)
    result, seconds = image, 0.0
    for i, f in enumerate(faces):
        step = None if progress is None else (
            lambda done, _total, _i=i: progress(_i * per_face + done, per_face * len(faces)))
        generated, took = _run(service, "inpaint", replace(req, prompt=prompts[f.face]), step, cancel, image=small,
                               mask_image=prepared[f.face].work_mask, width=work[0], height=work[1])
        # 4. Composite exactly: where this face's alpha is 0 the pixel is kept as it is.
        result = composite(result, generated, prepared[f.face].alpha)
        seconds += took

    grown = np.logical_or.reduce([p.grown for p in prepared.values()])
    alpha = np.maximum.reduce([p.alpha for p in prepared.values()])
    names = sorted({n for f in faces for n in (*f.regions, *f.mask_regions)}, key=names_order)
    record = _record(replace(req, prompt=prompts[faces[0].face]), mode="inpaint", regions=names,
                     coverage=float(grown.mean()), work=work, model=service.model, has_mask=mask is not None)
    record["faces"] = [{"face": f.face, "prompt": prompts[f.face],
                        "regions": sorted({*f.regions, *f.mask_regions}, key=names_order),
                        "mask_coverage": round(float(prepared[f.face].grown.mean()), 4)} for f in faces]
    out = EditResult(result, grown, alpha, req.seed, names, seconds, record=record)
    out.path = save_edit(result, service.output_path(f"inpaint-{req.seed}"), record)
    return out


def edit_chosen_faces(service: PipelineRunner, parser_dir: str | Path, image: Image.Image, req: EditRequest,
                      faces: list[FC.FaceEdit], *, regions: list[str] | None = None,
                      mask: Image.Image | np.ndarray | None = None, face_map: str | Path | Image.Image | None = None,
                      progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> EditResult:
    """:func:`edit_faces` as the API and the CLI call it: faces without regions take ``regions``; the owner map
    is ``face_map`` (the page's) when given, else the server's face parse, which also runs (the parser at
    ``parser_dir``) when any face names regions."""
    from face_studio.images import load_image

    image = image.convert("RGB")
    faces = FC.with_defaults(faces, list(regions or []))
    owner = FC.owner_from_image(load_image(face_map, what="face map"), image.size) if face_map is not None else None
    labels = None
    if any(f.regions for f in faces):
        found = FC.find_faces(parser_dir, image)
        labels = found.labels
        owner = found.owner if owner is None else owner
    return edit_faces(service, image, req, faces, labels=labels, owner=owner, mask=mask, progress=progress,
                      cancel=cancel)


def restyle_image(service: PipelineRunner, image: Image.Image, req: EditRequest, *,
                  progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> EditResult:
    """Img2Img over the whole image with ``req.strength`` (0 keeps it, 1 replaces it), at the photo's
    working size (its aspect, ≤ 1 MP), which the record states."""
    service.check_available()
    req = check_request(req, service.default_preset)
    image = image.convert("RGB")
    work = working_size(*image.size)
    generated, seconds = _run(service, "img2img", req, progress, cancel, image=image.resize(work, Image.LANCZOS),
                              width=work[0], height=work[1])
    result = generated.resize(image.size, Image.LANCZOS)
    full = np.ones((image.height, image.width), dtype=bool)
    record = _record(req, mode="restyle", regions=[], coverage=1.0, work=work, model=service.model,
                     has_mask=False)
    out = EditResult(result, full, full.astype(np.uint8) * 255, req.seed, [], seconds, record=record)
    out.path = save_edit(result, service.output_path(f"{record['mode']}-{req.seed}"), record)
    return out


def _run(service: PipelineRunner, kind: str, req: EditRequest, progress: ProgressFn | None,
         cancel: threading.Event | None, **inputs) -> tuple[Image.Image, float]:
    """One image through the backend's SD run on the pipeline of ``kind`` (``PipelineRunner.run_pipeline``)."""
    steps = denoising_steps(req.steps, req.strength)
    call = dict(prompt=req.prompt, negative_prompt=req.negative_prompt or None, num_inference_steps=req.steps,
                strength=req.strength, guidance_scale=req.guidance, max_sequence_length=req.max_sequence_length,
                **inputs)
    out = service.run_pipeline(kind, call, [req.seed], steps=steps, loras=req.loras, progress=progress, cancel=cancel)
    return out.images[0], out.seconds


def _record(req: EditRequest, *, mode: str, regions: list[str], coverage: float, work: tuple[int, int],
            model: str, has_mask: bool) -> dict:
    return {"mode": mode, **asdict(req), "regions": regions, "mask_from_png": has_mask,
            "mask_coverage": round(coverage, 4), "working_size": list(work), "model": model,
            "version": f"face-studio {__version__}"}


def a1111_text(record: dict) -> str:
    """The A1111-style ``parameters`` chunk for an edit (readers show it like a generation's)."""
    items = {"Steps": record["steps"], "Sampler": SAMPLER, "CFG scale": f"{record['guidance']:g}",
             "Seed": record["seed"], "Size": "{}x{}".format(*record["working_size"]), "Model": record["model"],
             "Denoising strength": f"{record['strength']:g}", "Edit": record["mode"]}
    if record["mode"] == "inpaint":
        items.update({"Regions": "+".join(record["regions"]) or "painted mask", "Mask grow": record["grow"],
                      "Mask blur": record["feather"]})
        if record.get("faces"):
            items["Faces"] = "+".join(str(f["face"]) for f in record["faces"])
    if record.get("loras"):
        items["LoRA"] = ", ".join(f"{name}: {scale:g}" for name, scale in record["loras"])
    items["Version"] = record["version"]
    return params_text(record["prompt"], record.get("negative_prompt", ""), items)


def save_edit(image: Image.Image, path: Path, record: dict) -> Path:
    """Save ``image`` at ``path`` as a PNG carrying the edit record (the one PNG writer: atomic)."""
    return write_png(image, path, a1111_text(record), {"edit": record})
