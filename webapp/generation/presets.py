"""Generation presets and limits, as data: one place for the numbers the view, the API and the docs use."""

from __future__ import annotations

from dataclasses import dataclass

MEGAPIXEL = 1024 * 1024  # SD3.5's native 1024×1024 is "1 MP"


@dataclass(frozen=True)
class Preset:
    """Defaults and limits for one SD3.5 model family."""

    name: str
    hub_id: str | None  # the checkpoint these defaults were published for (None: any SD3 folder)
    steps: int
    guidance: float
    min_megapixels: float
    max_megapixels: float
    # Skip-layer guidance (SLG): transformer blocks skipped in an extra pass during the middle of sampling.
    skip_guidance_layers: tuple[int, ...] = ()
    note: str = ""

    @property
    def min_pixels(self) -> int:
        return round(self.min_megapixels * MEGAPIXEL)

    @property
    def max_pixels(self) -> int:
        return round(self.max_megapixels * MEGAPIXEL)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("Large", "stabilityai/stable-diffusion-3.5-large", steps=28, guidance=3.5,
               min_megapixels=0.25, max_megapixels=1.0, note="8.1 B MMDiT; best quality"),
        Preset("Large Turbo", "stabilityai/stable-diffusion-3.5-large-turbo", steps=4, guidance=0.0,
               min_megapixels=0.25, max_megapixels=1.0, note="timestep-distilled Large: 4 steps, no CFG"),
        Preset("Medium", "stabilityai/stable-diffusion-3.5-medium", steps=40, guidance=4.5,
               min_megapixels=0.25, max_megapixels=2.0, skip_guidance_layers=(7, 8, 9),
               note="2.5 B MMDiT-X; up to 2 MP; skip-layer guidance on blocks 7, 8, 9"),
        # Any other SD3-architecture diffusers folder (fine-tunes, small dev models): no SLG, wide size range.
        Preset("Custom", None, steps=28, guidance=4.5, min_megapixels=64 * 64 / MEGAPIXEL, max_megapixels=2.0,
               note="another SD3 folder: sizes from 64×64 to 2 MP"),
    )
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)

# Limits for every preset. diffusers needs sides divisible by 16 (8× VAE, 2× patch).
SIZE_MULTIPLE = 16
MIN_SIDE = 64
MAX_SIDE = 2048  # 2 MP at the most extreme aspect we offer (21:9 at 2 MP is 2160 wide: capped here)
MIN_STEPS, MAX_STEPS = 1, 150  # A1111's range; Turbo wants 4, Medium 40
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MAX_PROMPT_CHARS = 4000  # T5 reads at most 512 tokens (~2,000-3,000 characters); beyond that is cut anyway
MAX_IMAGES = 8  # images per run; each extra image adds a full batch row on the GPU
MAX_SEED = 2**32 - 1  # A1111 seeds are uint32; -1 = random
SEQ_LENGTHS: tuple[int, ...] = (77, 128, 256, 512)  # T5 max_sequence_length choices; diffusers allows ≤ 512
DEFAULT_SEQ_LENGTH = 256

# Width × height per aspect ratio at ~1 MP (Large, Turbo) and ~2 MP (Medium can go there), multiples of 16.
ASPECTS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "4:3": (1152, 896),
    "3:4": (896, 1152),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "21:9": (1536, 640),
}

# Memory modes (``serve --memory-mode``). "auto" picks one from the GPU's memory, see pick_memory_mode().
MEMORY_MODES: dict[str, str] = {
    "auto": "chosen from the GPU's memory at start",
    "full": "everything on the GPU in bf16 (fastest; Large needs ~30 GiB, Medium ~20 GiB)",
    "offload": "model CPU offload: each model moves to the GPU only while it runs (slower; ~18 GiB for Large)",
    "no-t5": "drop the T5 text encoder (text_encoder_3=None): saves ~9 GiB, weaker prompt following",
    "fp8": "fp8 layerwise casting of the transformer (weights stored in float8, computed in bf16)",
}
MEMORY_MODE_NAMES: tuple[str, ...] = tuple(MEMORY_MODES)

# GiB that each part takes in bf16 (parameters × 2 bytes): the basis for "auto".
T5_GIB = 8.9  # T5-XXL encoder, 4.76 B parameters
CLIP_GIB = 1.5  # CLIP-L + OpenCLIP bigG with projections, 0.82 B
VAE_GIB = 0.2
TRANSFORMER_GIB = {"Large": 15.0, "Large Turbo": 15.0, "Medium": 4.2, "Custom": 15.0}  # Custom: assume Large
HEADROOM_GIB = 4.0  # activations at 1 MP with CFG, the VAE decode, the CUDA context


def preset_for_model(sd_model: str) -> str:
    """The preset whose checkpoint ``sd_model`` names (hub id or a folder named after it), else "Custom"."""
    name = sd_model.rstrip("/").lower()
    if "large-turbo" in name or "large_turbo" in name:
        return "Large Turbo"
    if "3.5-large" in name or "3_5-large" in name or name.endswith("large"):
        return "Large"
    if "3.5-medium" in name or name.endswith("medium"):
        return "Medium"
    return "Custom"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a clear error listing the choices otherwise."""
    from face_studio.errors import UserError

    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESET_NAMES)}.") from None


def pick_memory_mode(preset: str, gpu_gib: float | None) -> str:
    """The memory mode "auto" resolves to for a model of ``preset`` on a GPU with ``gpu_gib`` GiB.

    full when everything fits with headroom; fp8 (transformer weights halved) when that fits; otherwise
    model CPU offload, which needs only the largest single model on the GPU at a time.
    """
    if gpu_gib is None:  # CPU: memory modes are GPU concepts
        return "full"
    transformer = TRANSFORMER_GIB.get(preset, TRANSFORMER_GIB["Custom"])
    full = transformer + T5_GIB + CLIP_GIB + VAE_GIB + HEADROOM_GIB
    if gpu_gib >= full:
        return "full"
    if gpu_gib >= full - transformer / 2:
        return "fp8"
    return "offload"
