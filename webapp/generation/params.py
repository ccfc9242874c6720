"""Generation parameters: the ``generate`` API's :class:`~webapp.fields.Field` records (checks, page labels,
API docs), validation of every input (specific messages), and the PNG metadata that carries them — an
AUTOMATIC1111-style ``parameters`` text chunk plus a JSON chunk — and reading both back."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from face_studio import __version__
from face_studio.atomic import save_image
from webapp.fields import Field, FieldError, fmt, number
from webapp.generation import presets as P
from webapp.generation.loras import NO_LORA

PNG_TEXT_KEY = "parameters"  # the chunk AUTOMATIC1111, Forge and ComfyUI readers look for
PNG_JSON_KEY = "face-studio"  # our exact copy, as JSON
SAMPLER = "Euler (flow matching)"  # SD3's FlowMatchEulerDiscreteScheduler


# An input to ``generate`` is out of range or of the wrong kind; the message says which and the fix. The same
# error as every endpoint's field checks (webapp.fields), under the name generation code has always used.
ParameterError = FieldError


# The generate API's parameters, in their positional order.
GENERATE = ("prompt", "negative_prompt", "preset", "steps", "guidance", "width", "height", "seed", "num_images",
            "max_sequence_length", "lora", "lora_scale")


def generate_fields(preset: str = "Custom") -> dict[str, Field]:
    """Every ``generate`` parameter, by name; steps and guidance default to (and their range messages name)
    ``preset``'s values."""
    spec = P.PRESETS.get(preset, P.PRESETS["Custom"])
    made_for = f"{preset} is made for"
    fields = (
        Field("prompt", "text", "Prompt", ""),
        Field("negative_prompt", "text", "Negative prompt", ""),
        Field("preset", "choice", "Model preset", preset, choices=tuple(P.PRESET_NAMES)),
        Field("steps", "int", f"Steps ({P.MIN_STEPS}–{P.MAX_STEPS})", spec.steps, P.MIN_STEPS, P.MAX_STEPS, 1,
              f"{made_for} {spec.steps}"),
        Field("guidance", "float", "Guidance (CFG)", spec.guidance, P.MIN_GUIDANCE, P.MAX_GUIDANCE, 0.1,
              f"{made_for} {fmt(spec.guidance)}"),
        Field("width", "int", "Width", 1024, P.MIN_SIDE, P.MAX_SIDE, P.SIZE_MULTIPLE),
        Field("height", "int", "Height", 1024, P.MIN_SIDE, P.MAX_SIDE, P.SIZE_MULTIPLE),
        Field("seed", "int", "Seed (-1 = random)", -1, -1, P.MAX_SEED, 1, "-1 picks a random seed"),
        Field("num_images", "int", f"Images per run (1–{P.MAX_IMAGES})", 1, 1, P.MAX_IMAGES, 1,
              what="images per run"),
        Field("max_sequence_length", "choice", "T5 max tokens", P.DEFAULT_SEQ_LENGTH, choices=tuple(P.SEQ_LENGTHS),
              what="T5 max sequence length"),
        Field("lora", "text", "LoRA", NO_LORA),
        Field("lora_scale", "float", "LoRA scale (empty: the server's)", None, step=0.05),
    )
    return {f.name: f for f in fields}


@dataclass(frozen=True)
class GenerationRequest:
    """One validated ``generate`` call. ``seed`` is the first image's seed; image *i* uses ``seed + i``."""

    prompt: str
    negative_prompt: str = ""
    preset: str = "Custom"
    steps: int = 28
    guidance: float = 4.5
    width: int = 1024
    height: int = 1024
    seed: int = -1
    num_images: int = 1
    max_sequence_length: int = P.DEFAULT_SEQ_LENGTH
    loras: tuple[tuple[str, float], ...] = ()  # allowed LoRA names with scales, for this request only

    @property
    def skip_guidance_layers(self) -> tuple[int, ...]:
        return P.PRESETS[self.preset].skip_guidance_layers

    def with_seed(self) -> GenerationRequest:
        """This request with a concrete seed (a random one when ``seed`` is -1)."""
        if self.seed >= 0:
            return self
        return replace(self, seed=secrets.randbelow(P.MAX_SEED + 1))

    def image_seed(self, index: int) -> int:
        return (self.seed + index) % (P.MAX_SEED + 1)


@dataclass
class ImageParameters:
    """What one saved PNG records: enough to make the same image again."""

    prompt: str
    negative_prompt: str
    preset: str
    steps: int
    guidance: float
    width: int
    height: int
    seed: int
    max_sequence_length: int
    model: str = ""
    sampler: str = SAMPLER
    skip_guidance_layers: list[int] = field(default_factory=list)
    loras: list[tuple[str, float]] = field(default_factory=list)
    version: str = f"face-studio {__version__}"

    @classmethod
    def from_request(cls, request: GenerationRequest, index: int, model: str) -> ImageParameters:
        return cls(prompt=request.prompt, negative_prompt=request.negative_prompt, preset=request.preset,
                   steps=request.steps, guidance=request.guidance, width=request.width, height=request.height,
                   seed=request.image_seed(index), max_sequence_length=request.max_sequence_length, model=model,
                   skip_guidance_layers=list(request.skip_guidance_layers), loras=list(request.loras))


# --------------------------------------------------------------------------------------------- validation


def _text(value: Any, name: str, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ParameterError(f"{name} must be text, got {type(value).__name__}.")
    if required and not value.strip():
        raise ParameterError(f"the {name} is empty: describe the image you want.")
    if len(value) > P.MAX_PROMPT_CHARS:
        raise ParameterError(
            f"the {name} is {len(value):,} characters, over the limit of {P.MAX_PROMPT_CHARS:,}: the text "
            f"encoders read at most 512 tokens (about 2,000-3,000 characters), so shorten it.")
    return value


def validate(prompt: Any, negative_prompt: Any = "", preset: Any = "Custom", steps: Any = None,
             guidance: Any = None, width: Any = 1024, height: Any = 1024, seed: Any = -1, num_images: Any = 1,
             max_sequence_length: Any = P.DEFAULT_SEQ_LENGTH) -> GenerationRequest:
    """Check every input of ``generate``; ``steps`` / ``guidance`` of ``None`` take the preset's defaults.

    Raises :class:`ParameterError` naming the input, what was wrong and what to use instead.
    """
    # 1. The preset first: it sets the defaults and the size range.
    if not isinstance(preset, str) or preset not in P.PRESETS:
        raise ParameterError(f"unknown preset {preset!r}: choose one of {', '.join(P.PRESET_NAMES)}.")
    spec = P.PRESETS[preset]
    # 2. Text.
    prompt = _text(prompt, "prompt", required=True)
    negative_prompt = _text(negative_prompt, "negative prompt", required=False)
    # 3. Sampling, size, seed, batch: the Field records' ranges (the one number validator).
    fields = generate_fields(preset)
    steps = spec.steps if steps is None else fields["steps"].check(steps)
    guidance = spec.guidance if guidance is None else fields["guidance"].check(guidance)
    # 4. Size: multiples of 16, inside the preset's megapixel range.
    width, height = (number(v, n, whole=True) for v, n in ((width, "width"), (height, "height")))
    for name, side in (("width", width), ("height", height)):
        if side % P.SIZE_MULTIPLE:
            lower = max(P.MIN_SIDE, side // P.SIZE_MULTIPLE * P.SIZE_MULTIPLE)
            raise ParameterError(f"{name} must be a multiple of {P.SIZE_MULTIPLE}, got {side}: use {lower} or "
                                 f"{lower + P.SIZE_MULTIPLE}.")
        fields[name].check(side)
    pixels = width * height
    if not spec.min_pixels <= pixels <= spec.max_pixels:
        raise ParameterError(
            f"{width}×{height} is {pixels / P.MEGAPIXEL:.2f} MP; {preset} works between "
            f"{spec.min_megapixels:g} and {spec.max_megapixels:g} MP (1 MP = 1024×1024): pick an aspect "
            f"preset or change the size.")
    # 5. Seed, batch, text length.
    seed = fields["seed"].check(seed)
    num_images = fields["num_images"].check(num_images)
    max_sequence_length = number(max_sequence_length, "T5 max sequence length", whole=True)
    if max_sequence_length not in P.SEQ_LENGTHS:
        raise ParameterError(f"T5 max sequence length must be one of {', '.join(map(str, P.SEQ_LENGTHS))}, "
                             f"got {max_sequence_length}.")
    return GenerationRequest(prompt=prompt, negative_prompt=negative_prompt, preset=preset, steps=steps,
                             guidance=guidance, width=width, height=height, seed=seed, num_images=num_images,
                             max_sequence_length=max_sequence_length)


# ----------------------------------------------------------------------------------------------- metadata


def _quote(value: str) -> str:
    """A1111 quotes a value holding a comma, colon or quote (its own ``quote()``)."""
    if "," not in value and ":" not in value and '"' not in value and "\n" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def a1111_text(prompt: str, negative_prompt: str, settings: Mapping[str, Any]) -> str:
    """AUTOMATIC1111's ``parameters`` layout: the prompt, ``Negative prompt: …``, one ``Key: value, …`` line
    (empty values left out, values with commas or colons quoted as A1111 quotes them)."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(str(value))}" for key, value in settings.items() if value != ""))
    return "\n".join(lines)


def to_a1111(params: ImageParameters) -> str:
    """The ``parameters`` text of a generated image."""
    items: dict[str, Any] = {
        "Steps": params.steps,
        "Sampler": params.sampler,
        "CFG scale": f"{params.guidance:g}",
        "Seed": params.seed,
        "Size": f"{params.width}x{params.height}",
        "Model": params.model,
        "Preset": params.preset,
        "Max sequence length": params.max_sequence_length,
    }
    if params.skip_guidance_layers:
        items["Skip layer guidance"] = " ".join(map(str, params.skip_guidance_layers))
    if params.loras:
        items["LoRA"] = ", ".join(f"{name}: {scale:g}" for name, scale in params.loras)
    items["Version"] = params.version
    return a1111_text(params.prompt, params.negative_prompt, items)


def write_png(image: Image.Image, path: str | Path, text: str, data: Mapping[str, Any]) -> Path:
    """The one PNG-with-parameters writer (Generate and Edit): ``text`` goes in the ``parameters`` chunk
    (A1111 readers), ``data`` as JSON in ours; written atomically (no half-written file, ever)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_TEXT_KEY, text)
    info.add_text(PNG_JSON_KEY, json.dumps(data, ensure_ascii=False))
    return save_image(image, path, format="PNG", pnginfo=info)


def save_png(image: Image.Image, path: str | Path, params: ImageParameters) -> Path:
    """A generated image with its parameters (see :func:`write_png`)."""
    return write_png(image, path, to_a1111(params), asdict(params))


_PARAM_RE = re.compile(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> dict[str, Any]:
    """Parse an A1111 ``parameters`` text (ours, A1111's, Forge's) into ImageParameters field names.

    Unknown keys are ignored; keys that are absent are absent from the result.
    """
    lines = text.strip().split("\n")
    settings_line = lines[-1] if lines else ""
    found = dict(_PARAM_RE.findall(settings_line))
    if len(found) < 3:  # not a settings line: the whole text is the prompt
        found, body = {}, lines
    else:
        body = lines[:-1]
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(negative_lines)}

    def value(key: str) -> str | None:
        raw = found.get(key)
        if raw is None:
            return None
        raw = raw.strip()
        if raw.startswith('"'):
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return raw.strip('"')
        return raw

    conversions = (("Steps", "steps", int), ("CFG scale", "guidance", float), ("Seed", "seed", int),
                   ("Model", "model", str), ("Preset", "preset", str), ("Sampler", "sampler", str),
                   ("Max sequence length", "max_sequence_length", int))
    for key, name, kind in conversions:
        raw = value(key)
        if raw is not None:
            try:
                out[name] = kind(raw)
            except ValueError:
                pass  # a malformed field is skipped, the rest still loads
    size = value("Size")
    if size and re.fullmatch(r"\d+x\d+", size):
        out["width"], out["height"] = (int(v) for v in size.split("x"))
    return out


def read_png_parameters(source: str | Path) -> dict[str, Any]:
    """The parameters stored in a PNG: our JSON chunk when present (exact), else its A1111 text.

    Raises :class:`ParameterError` when the file is not a PNG or carries no parameters.
    """
    path = Path(source)
    if not path.is_file():
        raise ParameterError(f"no file at {path}: drop a PNG made by face-studio, AUTOMATIC1111 or Forge.")
    try:
        with Image.open(path) as image:
            image.load()
            fmt = image.format
            text = dict(getattr(image, "text", {}) or {})
    except (OSError, SyntaxError, ValueError) as err:
        raise ParameterError(f"'{path.name}' is not an image we can read ({err}): drop a PNG.") from None
    if fmt != "PNG":
        raise ParameterError(f"'{path.name}' is a {fmt or 'non-image'} file; parameters are read from PNG text "
                             "chunks only: drop the PNG the image was saved as.")
    if PNG_JSON_KEY in text:
        try:
            data = json.loads(text[PNG_JSON_KEY])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            known = {f for f in ImageParameters.__dataclass_fields__}
            return {k: v for k, v in data.items() if k in known}
    if PNG_TEXT_KEY in text and text[PNG_TEXT_KEY].strip():
        return parse_a1111(text[PNG_TEXT_KEY])
    raise ParameterError(f"'{path.name}' carries no generation parameters (no '{PNG_TEXT_KEY}' text chunk): "
                         "only PNGs saved by face-studio, AUTOMATIC1111 or Forge have them.")
