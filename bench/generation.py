"""Benchmark the SD3.5 transformer (the part that runs every denoising step) on one GPU.

The true SD3.5 Large and Medium transformer architectures (diffusers ``SD3Transformer2DModel``, configs as
published with the checkpoints) are built with random weights on the meta device and materialised straight
on the GPU in bf16, so no download is needed. Inputs are what the pipeline feeds at 1024×1024: 16×128×128
latents, 77 CLIP + 256 T5 text tokens, batch 2 (classifier-free guidance). Reported per model and mode
(eager, ``torch.compile`` of the repeated blocks):

- seconds per step and per 28-step image (a real 28-step Euler loop, transformer only: text encoders and
  the VAE run once per image and are not included),
- peak GPU memory,
- FLOP per step counted with ``torch.utils.flop_counter`` and the fraction of the FLOP floor reached
  (floor = counted FLOP ÷ the bf16 matmul rate measured on this card; 1.0 would be a perfect machine).

Beside those transformer-only rows, one **end-to-end served** row per speed mode (eager, compile, fp8): the
server's own ``GenerationService`` with ``--speed MODE`` (text encoders + transformer + VAE decode + PNG), one
image at the resolution and step count above, timed after a first call that loads and compiles. The speed
modes are the server's code (``webapp.generation.speed``: regional compile, torchao float8), imported here.

Run:  python bench/generation.py --served-model DIR   # GPU: Large + Medium, eager/compile/fp8, + served rows
                                                      #      (DIR: an SD3.5 diffusers folder, e.g. Large)
      python bench/generation.py --models medium --no-compile
      python bench/generation.py --tiny                # CPU: a tiny config + the tiny pipeline (kept alive by CI)
Without CUDA it runs the tiny config on CPU automatically. fp8 needs CUDA compute capability ≥ 8.9: elsewhere
its rows say so and are skipped.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: python bench/generation.py

from webapp.generation.speed import (  # noqa: E402 - the server's code
    compile_regions,
    fp8_unavailable_reason,
    isolated_inductor_config,
    quantize_fp8,
)

# Transformer configs as published with the checkpoints (transformer/config.json).
CONFIGS: dict[str, dict] = {
    "large": dict(  # stabilityai/stable-diffusion-3.5-large (and -large-turbo: same architecture)
        sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=38,
        attention_head_dim=64, num_attention_heads=38, joint_attention_dim=4096, caption_projection_dim=2432,
        pooled_projection_dim=2048, pos_embed_max_size=192, qk_norm="rms_norm",
    ),
    "medium": dict(  # stabilityai/stable-diffusion-3.5-medium (MMDiT-X: dual attention in blocks 0-12)
        sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24,
        attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
        pooled_projection_dim=2048, pos_embed_max_size=384, qk_norm="rms_norm",
        dual_attention_layers=tuple(range(13)),
    ),
    "tiny": dict(  # CPU smoke config: same code path, seconds on 2 cores
        sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=32, caption_projection_dim=32,
        pooled_projection_dim=64, pos_embed_max_size=96, qk_norm="rms_norm", dual_attention_layers=(0,),
    ),
}
CLIP_TOKENS = 77  # CLIP-L and CLIP-G context, concatenated along the feature axis
T5_TOKENS = 256  # the pipeline's default max_sequence_length
IMAGE_STEPS = 28  # SD3.5 Large's default step count
ISSUE_FLOOR_TFLOP_PER_S = 800.0  # the issue's anchor: an H100's plain bf16 matmul rate


@dataclass
class Result:
    model: str
    mode: str
    params_b: float
    resolution: int
    batch: int
    tokens: int
    s_per_step: float | None = None
    s_per_image: float | None = None
    peak_gib: float | None = None
    tflop_per_step: float | None = None
    achieved_tflop_s: float | None = None
    floor_s_per_image: float | None = None
    fraction_of_floor: float | None = None
    issue_floor_s_per_image: float | None = None  # 2·2·P·T FLOP at 800 TFLOP/s, as the issue states it
    fraction_of_issue_floor: float | None = None
    compile_s: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def build_meta(name: str, dtype: torch.dtype):
    """The transformer on the meta device: architecture and shapes, no memory."""
    from diffusers import SD3Transformer2DModel

    with torch.device("meta"):
        model = SD3Transformer2DModel(**CONFIGS[name])
    return model.to(dtype).eval().requires_grad_(False)


def materialise(model, device: torch.device, seed: int = 0):
    """Allocate ``model`` on ``device`` and fill it with random weights (std 0.02, like a fresh init)."""
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02, generator=gen)
        for b in model.buffers():
            if b.is_floating_point():
                b.normal_(0.0, 0.02, generator=gen)
    return model


def make_inputs(name: str, resolution: int, batch: int, device, dtype) -> dict[str, torch.Tensor]:
    cfg = CONFIGS[name]
    side = resolution // 8  # the VAE downsamples by 8
    text_tokens = CLIP_TOKENS + T5_TOKENS
    gen = torch.Generator(device="cpu").manual_seed(1)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    return dict(
        hidden_states=rnd(batch, cfg["in_channels"], side, side),
        encoder_hidden_states=rnd(batch, text_tokens, cfg["joint_attention_dim"]),
        pooled_projections=rnd(batch, cfg["pooled_projection_dim"]),
        timestep=torch.full((batch,), 500.0, device=device, dtype=dtype),
    )


def count_flops(name: str, resolution: int, batch: int, dtype) -> float:
    """FLOP of one transformer forward, counted op by op on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_meta(name, dtype)
    inputs = make_inputs(name, resolution, batch, "meta", dtype)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(**inputs, return_dict=False)
    return float(counter.get_total_flops())


def matmul_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """The card's plain matmul rate (8192³, the mean of 10 after 3 warm-ups): the ceiling for the floor."""
    if device.type != "cuda":
        return float("nan")
    n = 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / 10
    del a, b
    torch.cuda.empty_cache()
    return 2 * n**3 / dt / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def denoise(model, inputs: dict, steps: int, guidance: float = 3.5) -> torch.Tensor:
    """A flow-matching Euler loop with CFG, as the pipeline runs it (transformer + the update, no VAE)."""
    latents = inputs["hidden_states"][:1].clone()
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        x = torch.cat([latents, latents])
        t = torch.full((2,), float(sigmas[i]) * 1000, device=x.device, dtype=x.dtype)
        pred = model(hidden_states=x, timestep=t, encoder_hidden_states=inputs["encoder_hidden_states"],
                     pooled_projections=inputs["pooled_projections"], return_dict=False)[0]
        uncond, cond = pred.chunk(2)
        pred = uncond + guidance * (cond - uncond)
        latents = latents + (float(sigmas[i + 1]) - float(sigmas[i])) * pred
    return latents


@dataclass
class ServedResult:
    """One end-to-end served row: ``GenerationService`` with ``--speed mode``, one image."""

    mode: str
    resolution: int
    steps: int
    load_s: float | None = None
    first_call_s: float | None = None  # includes the one-time compile in compile / fp8
    s_per_image: float | None = None
    peak_gib: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


SERVED_MODES = ("eager", "compile", "fp8")
SERVED_REPEATS = 2  # timed calls after the first; the mean is reported


def tiny_pipeline_folder(root: Path) -> Path:
    """The test suite's tiny SD3 pipeline (random weights, local tokenizers), saved under ``root``."""
    from tests.generation.tiny_sd3 import build_tiny_sd3

    return build_tiny_sd3(root / "tiny-sd3")


def run_served(folder: Path, device: torch.device, mode: str, resolution: int, steps: int, log) -> ServedResult:
    """Time the server's generation path end to end in one speed mode (a fresh load, so modes don't mix)."""
    import tempfile

    from webapp.generation.params import validate
    from webapp.generation.service import GenerationService
    from webapp.settings import ServeSettings

    r = ServedResult(mode=mode, resolution=resolution, steps=steps)
    with tempfile.TemporaryDirectory(prefix="bench-served-") as out:
        settings = ServeSettings(sd_model=str(folder), device=device.type, memory_mode="full", speed=mode,
                                 max_batch=1, output_dir=Path(out))
        service = GenerationService(settings)
        plan = service.owner.speed_plan
        if plan.mode != mode:
            r.error = f"skipped: {plan.note}"
            return r
        request = validate(prompt="a portrait photo of a woman with red hair, soft light", preset="Custom",
                           steps=steps, width=resolution, height=resolution, seed=0,
                           max_sequence_length=256 if device.type == "cuda" else 77)
        t0 = time.perf_counter()
        service.owner.get()
        r.load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        service.generate(request)
        sync(device)
        r.first_call_s = time.perf_counter() - t0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for _ in range(SERVED_REPEATS):
            service.generate(request)
        sync(device)
        r.s_per_image = (time.perf_counter() - t0) / SERVED_REPEATS
        if device.type == "cuda":
            r.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
        r.notes.append(service.owner.speed.details or "eager")
        del service
    return r


class Fp8Unavailable(RuntimeError):
    """This device cannot run torchao float8: the row is skipped with the reason."""


def run_mode(model, name: str, mode: str, inputs: dict, device, steps: int, result: Result,
             log) -> None:
    if mode.startswith("fp8"):
        reason = fp8_unavailable_reason(str(device))
        if reason:
            raise Fp8Unavailable(reason)
        with torch.no_grad():
            n = quantize_fp8(model)  # torchao, exactly as `serve --speed fp8` does
        result.notes.append(f"{n} linears in float8 e4m3 (torchao, per-row scales)")
        log(f"  {n} linears quantized to float8 (torchao)")
    with torch.inference_mode():
        if mode.endswith("compile"):
            # Regional compilation: each JointTransformerBlock compiled (the same code for every layer),
            # which compiles in a fraction of a full-model compile and keeps its speed.
            t0 = time.perf_counter()
            compile_regions(model)  # the server's regional compile (webapp.generation.speed)
            denoise(model, inputs, 2)
            sync(device)
            result.compile_s = time.perf_counter() - t0
            log(f"  compiled + warm-up in {result.compile_s:.1f} s")
        else:
            denoise(model, inputs, 2)  # warm-up: cuBLAS handles, allocator
            sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        out = denoise(model, inputs, steps)
        sync(device)
        elapsed = time.perf_counter() - t0
    if not torch.isfinite(out.float()).all():
        result.notes.append("non-finite latents (random weights); timing unaffected")
    result.s_per_step = elapsed / steps
    result.s_per_image = result.s_per_step * IMAGE_STEPS
    if device.type == "cuda":
        result.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", default="large,medium", help="comma list of: large, medium (GPU)")
    parser.add_argument("--tiny", action="store_true", help="the tiny config on CPU (what CI runs)")
    parser.add_argument("--resolution", type=int, default=None, help="image side in px (1024 on GPU, 64 tiny)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (28 on GPU, 2 tiny)")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--no-fp8", action="store_true", help="skip the float8 mode (run last: it changes weights)")
    parser.add_argument("--budget-s", type=float, default=360.0,
                        help="start no new mode once this many seconds have passed (default 360)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--served-model", type=Path, default=None, metavar="DIR",
                        help="SD3 diffusers folder for the end-to-end served rows (GPU; --tiny builds the tiny one)")
    parser.add_argument("--no-served", action="store_true", help="transformer-only rows, no served rows")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    import diffusers.utils.logging

    diffusers.utils.logging.set_verbosity_error()  # the meta build's "cast with to()" note is not for us

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in models if m not in ("large", "medium")]
        if unknown:
            parser.error(f"unknown model(s) {unknown}: choose from large, medium")
        dtype, resolution, steps = torch.bfloat16, args.resolution or 1024, args.steps or IMAGE_STEPS
        card = torch.cuda.get_device_name(device)
        modes = ["eager"] if args.no_compile else ["eager", "compile"]
        if not args.no_fp8:
            modes.append("fp8" if args.no_compile else "fp8-compile")
    else:
        if not args.tiny:
            log("no CUDA GPU: running the tiny config on CPU (numbers are a smoke test, not a benchmark)")
        models, dtype, resolution, steps = ["tiny"], torch.float32, args.resolution or 64, args.steps or 2
        card = "CPU"
        modes = ["eager"] if args.no_compile else ["eager", "compile"]
        if not args.no_fp8:
            modes.append("fp8")  # refused on CPU with the server's reason (torchao float8 needs CUDA ≥ 8.9)
        for real in ("large", "medium"):  # the real architectures still get built and run, on meta
            n = sum(p.numel() for p in build_meta(real, torch.bfloat16).parameters())
            log(f"{real} (meta device): {n / 1e9:.2f} B parameters, "
                f"{count_flops(real, 1024, 2, torch.bfloat16) / 1e12:.1f} TFLOP per CFG step at 1024²")
    if resolution % 16:
        parser.error(f"--resolution must be a multiple of 16, got {resolution}")
    import diffusers

    log(f"device {card} · torch {torch.__version__} · diffusers {diffusers.__version__} · {dtype} · "
        f"{resolution}² · {steps} timed steps")
    rate = matmul_tflops(device, dtype)
    if cuda:
        log(f"plain bf16 matmul (8192³): {rate:.0f} TFLOP/s")

    results: list[Result] = []
    for name in models:
        meta = build_meta(name, dtype)
        n_params = sum(p.numel() for p in meta.parameters())
        del meta
        tokens = (resolution // 8 // 2) ** 2 + CLIP_TOKENS + T5_TOKENS
        flops = count_flops(name, resolution, 2, dtype)
        log(f"{name}: {n_params / 1e9:.2f} B parameters, {tokens} tokens, {flops / 1e12:.1f} TFLOP per step "
            f"(counted; the issue's 2·2·P·T estimate: {4 * n_params * tokens / 1e12:.1f})")
        model = materialise(build_meta(name, dtype), device)
        inputs = make_inputs(name, resolution, 2, device, dtype)
        for mode in modes:
            r = Result(model=name, mode=mode, params_b=n_params / 1e9, resolution=resolution, batch=2,
                       tokens=tokens, tflop_per_step=flops / 1e12)
            if time.perf_counter() - start > args.budget_s:
                r.error = f"skipped: over the {args.budget_s:.0f} s budget"
                results.append(r)
                log(f"  {mode}: {r.error}")
                continue
            try:
                with isolated_inductor_config():  # torchao's fp8 sets global inductor flags: not for later rows
                    run_mode(model, name, mode, inputs, device, steps, r, log)
            except Fp8Unavailable as err:
                r.error = f"skipped: {err}"
                log(f"  {mode}: {r.error}")
            except Exception as err:  # a failed mode is reported, and the rest still runs
                r.error = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
                log(f"  {mode}: FAILED {r.error}")
                torch._dynamo.reset()
            else:
                r.achieved_tflop_s = flops / r.s_per_step / 1e12
                if math.isfinite(rate):
                    r.floor_s_per_image = IMAGE_STEPS * flops / (rate * 1e12)
                    r.fraction_of_floor = r.floor_s_per_image / r.s_per_image
                if cuda:
                    r.issue_floor_s_per_image = IMAGE_STEPS * 4 * n_params * tokens / (ISSUE_FLOOR_TFLOP_PER_S * 1e12)
                    r.fraction_of_issue_floor = r.issue_floor_s_per_image / r.s_per_image
                peak = f"{r.peak_gib:.1f} GiB peak" if r.peak_gib is not None else ""
                log(f"  {mode}: {r.s_per_step:.3f} s/step, {r.s_per_image:.2f} s per {IMAGE_STEPS}-step image, "
                    f"{r.achieved_tflop_s:.0f} TFLOP/s, {peak}"
                    + (f", {r.fraction_of_floor:.2f} of the floor ({r.floor_s_per_image:.2f} s)"
                       if r.fraction_of_floor else ""))
            results.append(r)
            if args.json:  # written after every mode, so a run cut short still leaves its numbers
                write_json(args.json, card, rate, results)
        del model, inputs
        torch._dynamo.reset()  # compiled graphs hold the weights: drop them before the next model's peak
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()

    served = [] if args.no_served else served_rows(args, modes, device, resolution, steps, start, log)
    print_table(results, card, rate)
    print_served(served, card)
    if args.json:
        write_json(args.json, card, rate, results, served)
    log("done")
    return 0 if all(r.error is None or r.error.startswith("skipped") for r in [*results, *served]) else 1


def served_rows(args, modes: list[str], device: torch.device, resolution: int, steps: int, start: float,
                log) -> list[ServedResult]:
    """One end-to-end served row per speed mode that the transformer rows ran."""
    import tempfile

    wanted = [m for m in SERVED_MODES if any(x.startswith(m) for x in modes)]
    folder = args.served_model
    tmp = None
    if folder is None and device.type == "cpu":
        tmp = tempfile.TemporaryDirectory(prefix="bench-tiny-sd3-")
        folder = tiny_pipeline_folder(Path(tmp.name))
    rows = []
    for mode in wanted:
        r = ServedResult(mode=mode, resolution=resolution, steps=steps)
        if folder is None:
            r.error = "skipped: pass --served-model DIR (an SD3.5 diffusers folder) for the end-to-end rows"
        elif time.perf_counter() - start > args.budget_s:
            r.error = f"skipped: over the {args.budget_s:.0f} s budget"
        else:
            try:
                with isolated_inductor_config():  # each served mode with inductor's defaults
                    r = run_served(folder, device, mode, resolution, steps, log)
            except Exception as err:  # reported in the table; the other modes still run
                r.error = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
            torch._dynamo.reset()
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        log(f"  served {mode}: " + (r.error or f"{r.s_per_image:.3f} s/image (first call {r.first_call_s:.1f} s)"))
        rows.append(r)
    if tmp is not None:
        tmp.cleanup()
    return rows


def print_served(rows: list[ServedResult], card: str) -> None:
    if not rows:
        return
    print(f"\n{card} — served end to end (text encoders + transformer + VAE decode + PNG), 1 image, "
          f"{rows[0].resolution}², {rows[0].steps} steps, CFG")
    print("| speed mode | s/image | first call s (load excluded; compiles) | load s | peak GiB | notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r.error:
            print(f"| {r.mode} | {r.error} |||||")
            continue
        peak = f"{r.peak_gib:.1f}" if r.peak_gib is not None else "–"
        print(f"| {r.mode} | {r.s_per_image:.3f} | {r.first_call_s:.1f} | {r.load_s:.1f} | {peak} | "
              f"{'; '.join(r.notes)} |")


def write_json(path: Path, card: str, rate: float, results: list[Result],
               served: list[ServedResult] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": card, "torch": torch.__version__, "matmul_tflop_s": rate,
                                "results": [asdict(r) for r in results],
                                "served": [asdict(r) for r in served or []]}, indent=2))


def print_table(results: list[Result], card: str, rate: float) -> None:
    print(f"\n{card} — SD3.5 transformer, batch 2 (CFG), {IMAGE_STEPS}-step image = transformer only")
    print("| model | mode | params | TFLOP/step | s/step | s/image | TFLOP/s | peak GiB | floor s/image | "
          "fraction of floor | issue floor s/image | fraction of issue floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if r.error:
            print(f"| {r.model} | {r.mode} | {r.params_b:.2f} B | {r.tflop_per_step:.1f} | {r.error} ||||||||")
            continue

        def f(v, spec):
            return format(v, spec) if v is not None else "–"

        print(f"| {r.model} | {r.mode} | {r.params_b:.2f} B | {r.tflop_per_step:.1f} | {r.s_per_step:.3f} | "
              f"{r.s_per_image:.2f} | {r.achieved_tflop_s:.0f} | {f(r.peak_gib, '.1f')} | "
              f"{f(r.floor_s_per_image, '.2f')} | {f(r.fraction_of_floor, '.2f')} | "
              f"{f(r.issue_floor_s_per_image, '.2f')} | {f(r.fraction_of_issue_floor, '.2f')} |")
    if math.isfinite(rate):
        print(f"floor = counted FLOP ÷ {rate:.0f} TFLOP/s (plain bf16 matmul measured here). Issue floor = "
              f"2·2·params·tokens FLOP ÷ {ISSUE_FLOOR_TFLOP_PER_S:.0f} TFLOP/s (it counts the adaLN weights, "
              "which see one pooled vector, as if they saw every token). fraction = floor ÷ measured.")


if __name__ == "__main__":
    sys.exit(main())
