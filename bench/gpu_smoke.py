"""The GPU fast path's smoke check: one command, offline (random weights, true shapes where they matter), one line
per check — ``PASS name: detail`` / ``FAIL name: detail`` / ``SKIP name: why`` — then a timing table; exit 1 on
any FAIL. Written for the first 15 minutes on a lent GPU (issue 19): under 8 minutes on an H100.

Checks, in order (the server's own code: ``webapp.generation.speed`` / ``pipeline`` / ``run`` / ``batching``,
``webapp.parse_providers``):

- ``recompile-budget``: a Medium-shaped transformer (CUDA: the true SD3.5 Medium config, bf16; CPU: the same
  layout with tiny widths), regionally compiled as the server does, with two LoRAs loaded first; sizes, batch 1
  (skip-layer pass) / 2 (CFG) / 4 (two requests), two T5 lengths, LoRA switches and scales. PASS: no
  "hit config.recompile_limit", graphs within the budget.
- ``dynamic-cost`` (GPU): s/step at 1024² (Medium, batch 2) eager vs compile with dynamic shapes vs static
  shapes. PASS when dynamic is within 5 % of static (else set ``speed.COMPILE_DYNAMIC = False``).
- ``fp8-compile-lora`` (GPU, compute capability ≥ 8.9, torchao): Medium in float8 + regional compile + a LoRA;
  finite output, cosine to the bf16 output; the CUDA and torchao versions are printed.
- ``fp8-memory-te-lora``: ``--memory-mode fp8`` with a LoRA that carries text-encoder weights (tiny pipeline).
- ``compile-refused``: ``--speed compile`` with ``--memory-mode fp8`` / ``offload`` runs eager with one line.
- ``same-seed``: grey-level differences of the same seed — eager twice, eager vs compile, a size before vs after
  another size was compiled, batched vs single (tiny pipeline).
- ``oom-recovery``: CUDA: a forced out-of-memory (``set_per_process_memory_fraction``) → the advice, then a
  successful run with allocated memory back to its level. CPU: an injected ``torch.OutOfMemoryError`` through
  the same path (tensors freed before the cache is emptied).
- ``batch-oom-halves``: a batch that runs out of memory (injected) is retried in halves; every caller served.
- ``cuda-parse`` (onnxruntime-gpu): q8 vs fp16 on the CUDA provider, nodes that ran on the CPU, ms per frame.

Run:  python bench/gpu_smoke.py                          # CUDA (inductor)
      python bench/gpu_smoke.py --device cpu             # CI: tiny shapes, torch.compile's eager backend
      python bench/gpu_smoke.py --device cpu --backend inductor   # CPU codegen (gcc): real compile numbers
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from webapp.generation import speed as S  # noqa: E402 - the server's code

MEDIUM_TINY = dict(  # Medium's layout (dual attention in the first blocks, a context-pre-only last block), tiny
    sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=6, attention_head_dim=8,
    num_attention_heads=4, joint_attention_dim=32, caption_projection_dim=32, pooled_projection_dim=64,
    pos_embed_max_size=96, qk_norm="rms_norm", dual_attention_layers=(0, 1, 2),
)
CLIP_TOKENS = 77


class Skip(Exception):
    """The check cannot run here (the message says what it needs)."""


@dataclass
class Outcome:
    name: str
    status: str  # PASS / FAIL / SKIP
    detail: str
    seconds: float


class Smoke:
    def __init__(self, device: str, backend: str, root: Path) -> None:
        self.device = device
        self.cuda = device.startswith("cuda")
        self.backend = backend
        self.root = root
        self.outcomes: list[Outcome] = []
        self.timings: list[tuple[str, str]] = []  # (what, value) for the table
        self._tiny: Path | None = None

    # ------------------------------------------------------------------------------------------ helpers

    def run(self, name: str, fn: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        try:
            status, detail = "PASS", fn()
        except Skip as why:
            status, detail = "SKIP", str(why)
        except AssertionError as err:
            status, detail = "FAIL", str(err) or "assertion failed"
        except Exception as err:  # a crash is a failure of that check; the others still run
            status, detail = "FAIL", f"{type(err).__name__}: {err}".splitlines()[0][:300]
            traceback.print_exc(file=sys.stderr)
        seconds = time.perf_counter() - t0
        self.outcomes.append(Outcome(name, status, detail, seconds))
        print(f"{status} {name}: {detail}", flush=True)
        if self.cuda:
            torch.cuda.empty_cache()

    def needs_gpu(self, what: str = "a CUDA GPU") -> None:
        if not self.cuda:
            raise Skip(f"needs {what} (this run: --device {self.device})")

    @property
    def tiny(self) -> Path:
        if self._tiny is None:
            from tests.generation.tiny_sd3 import build_tiny_sd3

            self._tiny = build_tiny_sd3(self.root / "tiny-sd3")
        return self._tiny

    def service(self, name: str, **overrides):
        from webapp.generation.service import GenerationService
        from webapp.settings import ServeSettings

        settings = ServeSettings(**{"sd_model": str(self.tiny), "device": self.device, "memory_mode": "full",
                                    "speed": "eager", "max_batch": 1, "output_dir": self.root / name,
                                    **overrides})
        service = GenerationService(settings)
        service.owner.compile_backend = self.backend
        return service

    def sizes(self) -> list[tuple[int, int]]:  # (width, height)
        return [(1024, 1024), (1344, 768), (768, 1344), (512, 512)] if self.cuda else [(64, 64), (96, 64), (64, 128)]

    # ------------------------------------------------------------------------------------------- checks

    def transformer(self, medium_true: bool):
        from diffusers import SD3Transformer2DModel

        if medium_true:
            from bench.generation import build_meta, materialise

            return materialise(build_meta("medium", torch.bfloat16), torch.device(self.device))
        torch.manual_seed(0)
        return SD3Transformer2DModel(**MEDIUM_TINY).eval().requires_grad_(False).to(self.device)

    def inputs(self, model, width: int, height: int, batch: int, t5: int) -> dict:
        cfg = model.config
        gen = torch.Generator("cpu").manual_seed(1)
        dtype = next(model.parameters()).dtype

        def rnd(*shape):
            return torch.randn(*shape, generator=gen).to(self.device, dtype)

        return dict(hidden_states=rnd(batch, cfg.in_channels, height // 8, width // 8),
                    encoder_hidden_states=rnd(batch, CLIP_TOKENS + t5, cfg.joint_attention_dim),
                    pooled_projections=rnd(batch, cfg.pooled_projection_dim),
                    timestep=torch.full((batch,), 500.0, device=self.device, dtype=dtype), return_dict=False)

    @staticmethod
    def add_loras(model, names=("a", "b"), rank: int = 8) -> None:
        from peft import LoraConfig

        for i, name in enumerate(names):
            torch.manual_seed(10 + i)
            model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                         target_modules=["to_q", "to_k", "to_v", "to_out.0"]), adapter_name=name)
        with torch.no_grad():  # a LoRA-sized change (peft's random init would swamp 0.02-std base weights)
            for param_name, param in model.named_parameters():
                if ".lora_B." in param_name:
                    param.mul_(0.01)
        model.disable_adapters()

    def check_recompile_budget(self) -> str:
        model = self.transformer(medium_true=self.cuda)
        skip = [7, 8, 9] if self.cuda else [3]  # Medium's skip-layer guidance blocks
        self.add_loras(model)
        S.compile_regions(model, lora_states=3, backend=self.backend)
        hits = S.recompile_limit_watch().hits
        limit = torch._dynamo.config.recompile_limit
        (w0, h0), *others = self.sizes()
        t5s = (256, 77) if self.cuda else (32, 16)
        sequence = [(w0, h0, 2, t5s[0], None, None), (w0, h0, 1, t5s[0], None, skip)]  # CFG, then the SLG pass
        sequence += [(w, h, 2, t5s[0], None, None) for w, h in others]
        sequence += [(w0, h0, 4, t5s[0], None, None), (w0, h0, 2, t5s[1], None, None)]
        sequence += [(w0, h0, 2, t5s[0], ("a", 1.0), None), (others[0][0], others[0][1], 2, t5s[0], ("a", 0.5), None),
                     (w0, h0, 1, t5s[0], ("a", 0.7), skip), (w0, h0, 2, t5s[1], ("b", 1.0), None),
                     (w0, h0, 2, t5s[0], None, None)]
        with torch.no_grad():
            for width, height, batch, t5, lora, skip_layers in sequence:
                if lora:
                    model.enable_adapters()
                    model.set_adapters([lora[0]], weights=[lora[1]])
                else:
                    model.disable_adapters()
                out = model(**self.inputs(model, width, height, batch, t5), skip_layers=skip_layers)[0]
                assert torch.isfinite(out).all(), f"non-finite output at {width}×{height} batch {batch}"
        graphs = S.compiled_graphs(model)
        budget = S.recompile_budget(S.block_variants(model), 3)
        detail = (f"{graphs} graphs for {len(sequence)} calls ({S.block_variants(model)} block variants, "
                  f"{len(self.sizes())} sizes, batch 1/2/4, 2 T5 lengths, 2 LoRAs); budget {budget}, limit {limit}")
        assert S.recompile_limit_watch().hits == hits, f"hit config.recompile_limit: {detail}"
        assert graphs <= budget, f"more graphs than the budget: {detail}"
        del model
        torch._dynamo.reset()
        return detail

    def check_dynamic_cost(self) -> str:
        self.needs_gpu()
        rows = {}
        for label, dynamic in (("eager", None), ("compile dynamic", True), ("compile static", False)):
            torch._dynamo.reset()
            model = self.transformer(medium_true=True)
            if label != "eager":
                S.compile_regions(model, backend=self.backend, dynamic=dynamic)
            inputs = self.inputs(model, 1024, 1024, 2, 256)
            with torch.no_grad():
                for _ in range(2):
                    model(**inputs)  # compile + warm-up
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(5):
                    model(**inputs)
                torch.cuda.synchronize()
            rows[label] = (time.perf_counter() - t0) / 5
            self.timings.append((f"Medium 1024² batch 2, s/step, {label}", f"{rows[label]:.4f}"))
            del model
        torch._dynamo.reset()
        ratio = rows["compile dynamic"] / rows["compile static"]
        detail = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in rows.items()) + f"; dynamic/static {ratio:.3f}"
        assert ratio <= 1.05, f"dynamic shapes cost speed here ({detail}): set speed.COMPILE_DYNAMIC = False"
        return detail

    def check_fp8_compile_lora(self) -> str:
        self.needs_gpu()
        reason = S.fp8_unavailable_reason(self.device)
        if reason:
            raise Skip(reason)
        import torchao
        from peft.utils import get_peft_model_state_dict

        reference_model = self.transformer(medium_true=True)  # bf16, the same random weights (seed 0)
        self.add_loras(reference_model, names=("a",), rank=16)
        reference_model.enable_adapters()
        reference_model.set_adapters(["a"], weights=[1.0])
        inputs = self.inputs(reference_model, 1024, 1024, 2, 256)
        with torch.no_grad():
            reference = reference_model(**inputs)[0].float()
        lora = {k: v.detach().clone() for k, v in get_peft_model_state_dict(reference_model, adapter_name="a").items()}
        del reference_model
        torch.cuda.empty_cache()
        model = self.transformer(medium_true=True)
        n = S.quantize_fp8(model)  # the server's order: quantize, compile, then the LoRAs (preloaded)
        S.compile_regions(model, lora_states=2, backend=self.backend)
        model.load_lora_adapter({f"transformer.{k}": v for k, v in lora.items()}, adapter_name="a",
                                prefix="transformer")
        model.set_adapters(["a"], weights=[1.0])
        with torch.no_grad():
            out = model(**inputs)[0].float()
        cosine = torch.nn.functional.cosine_similarity(out.flatten(), reference.flatten(), dim=0).item()
        detail = (f"{n} linears float8, finite={bool(torch.isfinite(out).all())}, cosine to bf16 {cosine:.4f}; "
                  f"torch {torch.__version__}, CUDA {torch.version.cuda}, torchao {torchao.__version__}")
        del model
        torch._dynamo.reset()
        assert torch.isfinite(out).all() and cosine >= 0.98, detail
        return detail

    def check_fp8_memory_te_lora(self) -> str:
        from tests.serving.loras import build_text_encoder_lora
        from webapp.generation.params import validate

        lora = build_text_encoder_lora(self.tiny, self.root / "te-lora")
        service = self.service("fp8-memory", memory_mode="fp8", loras=[(str(lora), 1.0)])
        request = validate(prompt="a portrait photo", steps=2, width=64, height=64, seed=7)
        plain = service.generate(request)
        styled = service.generate(replace(request, loras=service.owner.catalog.choose("te_style")))
        adapters = service.owner.get().get_list_adapters()
        diff = _max_diff(plain.images[0].image, styled.images[0].image)
        detail = f"adapters {dict(adapters)}; the LoRA changes the image by up to {diff} grey levels"
        assert "te_style" in adapters.get("text_encoder", []) and diff > 0, detail
        return detail

    def check_compile_refused(self) -> str:
        notes = []
        for speed in ("compile", "fp8"):
            for memory_mode in ("fp8", "offload"):
                plan = S.resolve_speed(speed, "cuda", memory_mode)
                assert plan.mode == "eager" and "does not combine" in plan.note, (speed, memory_mode, plan)
                notes.append(plan.note)
        service = self.service("refused", speed="compile", memory_mode="fp8")
        from webapp.generation.params import validate

        service.generate(validate(prompt="a face", steps=2, width=64, height=64, seed=1))
        assert not S.is_compiled(service.owner.get().transformer), "compiled despite --memory-mode fp8"
        return f"4 combinations → eager, e.g. \"{notes[0][:90]}…\""

    def check_same_seed(self) -> str:
        from webapp.generation.batching import BATCH_PIXEL_TOLERANCE
        from webapp.generation.params import validate

        (w0, h0), (w1, h1), *_ = self.sizes()
        if self.cuda:
            w0 = h0 = 512
            w1, h1 = 640, 512
        req = validate(prompt="a portrait photo of a woman with red hair", steps=4, width=w0, height=h0, seed=7)
        eager, compiled = self.service("eager"), self.service("compile", speed="compile")
        a1, a2 = eager.generate(req), eager.generate(req)
        c1 = compiled.generate(req)
        compiled.generate(replace(req, width=w1, height=h1))
        c2 = compiled.generate(req)
        batched = self.service("batched", max_batch=2)
        b = batched.run_batch([req, replace(req, seed=8)])[0]
        d = {"eager twice": _max_diff(a1.images[0].image, a2.images[0].image),
             "eager vs compile": _max_diff(a1.images[0].image, c1.images[0].image),
             "compile before vs after a new size": _max_diff(c1.images[0].image, c2.images[0].image),
             "batched vs single": _max_diff(a1.images[0].image, b.images[0].image)}
        for k, v in d.items():
            self.timings.append((f"same seed, max grey-level diff: {k}", str(v)))
        detail = ", ".join(f"{k} {v}" for k, v in d.items()) + f" (backend {self.backend})"
        assert d["eager twice"] == 0, detail
        assert d["eager vs compile"] <= S.COMPILE_PIXEL_TOLERANCE, detail
        assert d["compile before vs after a new size"] <= S.COMPILE_PIXEL_TOLERANCE, detail
        assert d["batched vs single"] <= BATCH_PIXEL_TOLERANCE, detail
        torch._dynamo.reset()
        return detail

    def check_oom_recovery(self) -> str:
        from webapp.generation.params import validate
        from webapp.generation.pipeline import OutOfMemory

        service = self.service("oom")
        pipe = service.owner.get()
        small = validate(prompt="a face", steps=2, width=64, height=64, seed=1)
        service.generate(small)
        if self.cuda:
            torch.cuda.synchronize()
            level = torch.cuda.memory_allocated()
            total = torch.cuda.get_device_properties(torch.device(self.device)).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, (level + 2**20) / total))
            try:
                service.generate(replace(small, width=1024, height=1024, num_images=1))
                raise AssertionError("no out-of-memory error under a 1 MiB margin")
            except OutOfMemory as err:
                message = str(err)
            finally:
                torch.cuda.set_per_process_memory_fraction(1.0)
            after = torch.cuda.memory_allocated()
            service.generate(small)
            detail = (f"forced OOM → \"{message[:80]}…\"; allocated {level / 2**20:.1f} MiB before, "
                      f"{after / 2**20:.1f} MiB after; the next run works")
            assert after <= level + 2**20, detail
            return detail
        refs: list = []

        def hook(_m, _args, _kwargs):
            activation = torch.ones(4, 1024, 1024)
            refs.append(weakref.ref(activation))
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

        alive: list[bool] = []
        release = service.owner.release_memory
        service.owner.release_memory = lambda: (alive.append(refs[-1]() is not None), release())[1]
        handle = pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            service.generate(small)
            raise AssertionError("the injected OOM did not surface")
        except OutOfMemory as err:
            message = str(err)
        finally:
            handle.remove()
        service.generate(small)
        detail = f"injected OOM → \"{message[:80]}…\"; activation freed before emptying the cache: {alive == [False]}"
        assert alive == [False], detail
        return detail

    def check_batch_oom_halves(self) -> str:
        from webapp.generation.batching import BatchJob
        from webapp.generation.params import validate

        service = self.service("batch-oom", max_batch=4)
        pipe = service.owner.get()

        def hook(_m, args, kwargs):
            if kwargs.get("hidden_states", args[0] if args else None).shape[0] > 4:
                raise torch.OutOfMemoryError("CUDA out of memory (injected above 2 requests)")

        handle = pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
        jobs = [BatchJob(validate(prompt=f"a face {i}", steps=2, width=64, height=64, seed=i)) for i in range(4)]
        try:
            outcomes = service.batcher._call(jobs, lambda d, t: None, lambda: False)
        finally:
            handle.remove()
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        detail = f"4 requests → {service.batcher.oom_splits} split(s), {4 - len(failed)} of 4 served"
        assert not failed and service.batcher.oom_splits == 1, detail
        return detail

    def check_cuda_parse(self) -> str:
        import numpy as np
        import onnxruntime as ort

        from face_studio.onnx_files import DTYPE_FILES, INPUT_NAME
        from webapp.parse_providers import PROVIDERS, node_placement, select_providers
        from webapp.parsing import FaceParser

        if PROVIDERS["cuda"] not in ort.get_available_providers():
            raise Skip("needs onnxruntime-gpu (CUDAExecutionProvider) in place of onnxruntime")
        from tests.conftest import build_tiny_parser
        from webapp.cli import main

        model = build_tiny_parser(self.root / "parser", preset="tiny")
        export = self.root / "parser-export"
        assert main(["export", "--model", str(model), "--out", str(export)]) == 0, "export failed"
        providers, _ = select_providers("cuda", self.device)
        pixels = np.random.default_rng(0).standard_normal((1, 3, 512, 512), dtype=np.float32)
        parts = []
        for dtype in ("q8", "fp16"):
            placement = node_placement(export / DTYPE_FILES[dtype], providers, {INPUT_NAME: pixels})
            session = ort.InferenceSession(str(export / DTYPE_FILES[dtype]), providers=providers)
            session.run(None, {INPUT_NAME: pixels})
            t0 = time.perf_counter()
            for _ in range(10):
                session.run(None, {INPUT_NAME: pixels})
            ms = (time.perf_counter() - t0) * 100
            self.timings.append((f"parse 512² on CUDA EP, {dtype}, ms/frame", f"{ms:.2f}"))
            parts.append(f"{dtype}: {placement.get(PROVIDERS['cpu'], 0)} of {sum(placement.values())} nodes on "
                         f"the CPU, {ms:.1f} ms")
        parser = FaceParser(export, "q8", provider="cuda", device=self.device)
        parser.parse_batch([_face()])
        detail = "; ".join(parts) + f"; the server parse loads {parser.dtype} on {parser.providers[0]}"
        assert parser.dtype == "fp16" and parser.providers[0] == PROVIDERS["cuda"], detail
        return detail


def _face():
    from PIL import Image

    return Image.new("RGB", (300, 400), (200, 150, 120))


def _max_diff(a, b) -> int:
    """Largest per-channel difference of two images (PIL images, as the service returns them)."""
    import numpy as np

    x = np.asarray(a.convert("RGB")).astype(np.int16)
    y = np.asarray(b.convert("RGB")).astype(np.int16)
    return int(np.abs(x - y).max())


CHECKS = ("recompile-budget", "dynamic-cost", "fp8-compile-lora", "fp8-memory-te-lora", "compile-refused",
          "same-seed", "oom-recovery", "batch-oom-halves", "cuda-parse")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cuda, cuda:N or cpu (default: cuda when there is one)")
    parser.add_argument("--backend", default=None,
                        help="torch.compile backend: inductor (default on CUDA) or eager (default on CPU)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(CHECKS)}")
    args = parser.parse_args(argv)
    backend = args.backend or ("inductor" if args.device.startswith("cuda") else "eager")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("FAIL device: --device cuda but torch sees no CUDA GPU", flush=True)
        return 1
    only = CHECKS if not args.only else tuple(c.strip() for c in args.only.split(","))
    unknown = [c for c in only if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {unknown}: choose from {', '.join(CHECKS)}")
    logging.basicConfig(level=logging.ERROR)
    card = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "CPU"
    print(f"# gpu_smoke on {card} (--device {args.device}, backend {backend}, torch {torch.__version__})", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as tmp:
        smoke = Smoke(args.device, backend, Path(tmp))
        for name in only:
            smoke.run(name, getattr(smoke, "check_" + name.replace("-", "_")))
    total = time.perf_counter() - start
    print("\n| check | result | seconds |\n|---|---|---|")
    for o in smoke.outcomes:
        print(f"| {o.name} | {o.status} | {o.seconds:.1f} |")
    if smoke.timings:
        print("\n| measured | value |\n|---|---|")
        for what, value in smoke.timings:
            print(f"| {what} | {value} |")
    print(f"\ntotal {total:.0f} s on {card}. Rerun: python bench/gpu_smoke.py --device {args.device}"
          + (f" --backend {backend}" if args.backend else ""))
    failed = [o.name for o in smoke.outcomes if o.status == "FAIL"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
