"""``face-studio serve``: the Gradio app (Parse in the browser with a server fallback, Generate, Edit)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webapp.generation.presets import MEMORY_MODE_NAMES
from webapp.generation.speed import SPEED_MODES
from webapp.parsing import PROVIDER_CHOICES
from webapp.settings import DEFAULT_PARSER_DIR, DEFAULT_PARSER_SOURCE, DEFAULT_SD_MODEL, MAX_BATCH, ServeSettings

HELP = "Start the web app: face parsing in the browser (server fallback), SD3.5 generation and editing."
HUB_PROBE_URL = "https://huggingface.co/api/models/" + DEFAULT_PARSER_SOURCE
HUB_PROBE_TIMEOUT_S = 3.0  # a quick look only; offline machines must start without waiting


def auth_pair(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError(f"--auth wants USER:PASS, got {value!r}")
    return user, password


def lora_spec(value: str) -> tuple[str, float]:
    """``PATH_OR_ID[:WEIGHT_NAME][=SCALE]`` → (``PATH_OR_ID[:WEIGHT_NAME]``, scale); scale defaults to 1."""
    source, sep, scale = value.rpartition("=")
    if not sep:
        source, scale = value, "1.0"
    try:
        number = float(scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lora scale must be a number: {value!r} (e.g. my-lora=0.8)") from None
    if not source:
        raise argparse.ArgumentTypeError(f"--lora needs a path or hub id: {value!r}")
    return source, number


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServeSettings()
    parser.add_argument("--host", default=defaults.host, help=f"address to bind (default {defaults.host}; "
                        "0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (default 7860; 0 = any free port)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    parser.add_argument("--auth", type=auth_pair, metavar="USER:PASS", help="require this login")
    parser.add_argument("--forwarded-allow-ips", default=None, metavar="ADDRS",
                        help="proxies whose X-Forwarded-For is believed for the client's address (comma-separated; "
                             "default 127.0.0.1,::1, and nobody with --share; docs/security.md)")
    parser.add_argument("--parser", type=Path, default=DEFAULT_PARSER_DIR, metavar="DIR",
                        help=f"face-parser export folder made by `face-studio export` (default {DEFAULT_PARSER_DIR})")
    parser.add_argument("--parse-workers", type=positive_int, default=defaults.parse_workers, metavar="N",
                        help=f"server parses run at once, on the CPU (default {defaults.parse_workers})")
    parser.add_argument("--parse-queue", type=positive_int, default=defaults.parse_queue, metavar="N",
                        help=f"server parses allowed to wait; separate from the GPU queue "
                        f"(default {defaults.parse_queue})")
    parser.add_argument("--live-parser", type=Path, default=None, metavar="DIR",
                        help="a small, fast export for the live camera mode (e.g. a `face-studio distil` student "
                        "exported by `face-studio export`); without it live mode runs the main parser, slowly")
    generation = parser.add_argument_group("generation (Generate and Edit views)")
    generation.add_argument("--sd-model", default=DEFAULT_SD_MODEL,
                            help=f"diffusers SD3.5 hub id or local folder (default {DEFAULT_SD_MODEL})")
    generation.add_argument("--device", default=None, help="torch device (default: cuda when present)")
    generation.add_argument("--memory-mode", default=defaults.memory_mode, choices=MEMORY_MODE_NAMES,
                            help="how the pipeline fits the GPU's memory (default auto: from the GPU's size)")
    generation.add_argument("--lora", type=lora_spec, action="append", default=[],
                            metavar="PATH_OR_ID[:WEIGHT_NAME]=SCALE",
                            help="allow this LoRA (repeatable); visitors pick it by name (its file's stem) per "
                                 "request, SCALE is its default strength")
    generation.add_argument("--lora-dir", type=Path, action="append", default=[], metavar="DIR",
                            help="allow every .safetensors LoRA in DIR, each by its file's stem (repeatable)")
    generation.add_argument("--max-queue", type=positive_int, default=defaults.max_queue,
                            help=f"GPU jobs (generate, inpaint, restyle) allowed to wait "
                            f"(default {defaults.max_queue})")
    generation.add_argument("--speed", default=defaults.speed, choices=SPEED_MODES,
                            help="served pipeline speed: eager, compile (regional torch.compile, first request "
                                 "compiles), fp8 (torchao float8 + compile; CUDA cc ≥ 8.9); default auto: compile "
                                 "on CUDA, eager on CPU")
    generation.add_argument("--max-batch", type=positive_int, default=defaults.max_batch,
                            help=f"concurrent generate requests with the same size/steps/preset run as one batch, "
                                 f"up to this many, at most {MAX_BATCH} (default {defaults.max_batch} = off: "
                                 "bit-identical images; batched ones agree with a lone run to ~1 grey level)")
    parser.add_argument("--parse-provider", default=defaults.parse_provider, choices=PROVIDER_CHOICES,
                        help="ONNX Runtime provider for the server parse (default auto: CUDA when onnxruntime-gpu "
                             "and a GPU are there, else CPU)")
    scale = parser.add_argument_group("scale-out on Ray Serve (pip install 'face-studio[ray]'; docs/serving.md)")
    scale.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                       help="run generation and server parse as Ray Serve deployments: auto starts a local Ray "
                            "instance, ADDRESS (host:port or ray://host:port) joins a running cluster")
    scale.add_argument("--replicas", type=positive_int, default=defaults.replicas,
                       help="generation replicas, one GPU each (default 1)")
    scale.add_argument("--min-replicas", type=positive_int, default=None,
                       help="autoscale between --min-replicas and --max-replicas instead of a fixed count")
    scale.add_argument("--max-replicas", type=positive_int, default=None, help="autoscaling upper bound")
    generation.add_argument("--output-dir", type=Path, default=defaults.output_dir,
                            help=f"where generated images are kept (default {defaults.output_dir})")


def check_limits(settings: ServeSettings) -> None:
    """Refuse, in one line, limits the server can't honour (before anything loads)."""
    from face_studio.errors import UserError

    if not 1 <= settings.max_batch <= MAX_BATCH:
        raise UserError(f"--max-batch must be 1…{MAX_BATCH} (got {settings.max_batch}): each batch runs in one "
                        f"pipeline call, so its images must fit the GPU's memory together; try 4.")


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(
        host=args.host, port=args.port, share=args.share, auth=args.auth, parser_dir=args.parser,
        forwarded_allow_ips=args.forwarded_allow_ips,
        live_parser_dir=args.live_parser,
        sd_model=args.sd_model, device=args.device, memory_mode=args.memory_mode, loras=list(args.lora),
        lora_dirs=list(args.lora_dir), max_queue=args.max_queue, output_dir=args.output_dir,
        parse_workers=args.parse_workers, parse_queue=args.parse_queue, speed=args.speed, max_batch=args.max_batch,
        parse_provider=args.parse_provider, ray=args.ray, replicas=args.replicas, min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
    )


def _hub_reachable() -> bool:
    import os
    import urllib.request

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        with urllib.request.urlopen(HUB_PROBE_URL, timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _offer_export(parser_dir: Path) -> None:
    """No export yet: on a terminal with the hub in reach, offer to make one (the export shows progress)."""
    if not sys.stdin.isatty() or not _hub_reachable():
        return
    answer = input(f"No face-parser export in {parser_dir}. Export {DEFAULT_PARSER_SOURCE} there now "
                   "(downloads ~340 MB)? [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        from export.build import export_model
        from face_studio.errors import UserError

        try:
            export_model(DEFAULT_PARSER_SOURCE, parser_dir)
        except UserError as err:
            print(f"the export failed ({err}); starting without a parser (the Parse view says how to make one)",
                  file=sys.stderr)


def check_live_parser(live_dir: Path | None) -> None:
    """``--live-parser`` must name an intact export (the page would otherwise fail to load it mid-stream)."""
    from face_studio.errors import UserError
    from webapp.parsing import available_dtypes

    if live_dir is None:
        return
    if not Path(live_dir).is_dir():
        raise UserError(f"--live-parser {live_dir}: no such folder; export your live parser there with "
                        f"`face-studio export --model STUDENT_DIR --out {live_dir}`.")
    if not available_dtypes(live_dir):
        raise UserError(f"--live-parser {live_dir} holds no ONNX model (onnx/model*.onnx): export it with "
                        f"`face-studio export --model STUDENT_DIR --out {live_dir}`.")
    check_export(live_dir, "--live-parser", f"face-studio export --model STUDENT_DIR --out {live_dir}")


def check_export(folder: str | Path, flag: str, fix: str) -> str | None:
    """Refuse to serve a damaged export, before the server starts: every file the manifest lists must be there
    with its size and sha256 (about 1 s a 300 MB graph here: bench/export_check.py), and the model must predict
    the 19 face labels. Raises a one-line ``UserError`` naming ``fix`` (a `face-studio export` command); returns
    a note when the folder has no manifest to check against (an export made by hand), else None."""
    import json

    from export.manifest import check_files, read
    from face_studio.errors import UserError
    from face_studio.labels import NUM_LABELS

    folder = Path(folder)
    manifest = read(folder)
    if manifest is None:
        return (f"{flag} {folder} has no readable manifest.json, so its files can't be checked; "
                f"`{fix}` writes one.")
    problems = check_files(folder, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{flag} {folder} is damaged: {problems[0]}{more}. Export it again with `{fix}` "
                        f"(`face-studio verify {folder}` lists every problem).")
    try:
        labels = len(json.loads((folder / "config.json").read_text()).get("id2label") or {})
    except (OSError, ValueError, AttributeError):
        labels = None
    if labels != NUM_LABELS:
        raise UserError(f"{flag} {folder} predicts {labels if labels is not None else 'an unknown number of'} "
                        f"classes, not the {NUM_LABELS} face labels: export a 19-class face parser with `{fix}`.")
    return None


def run(args: argparse.Namespace) -> int:
    from webapp.generation.loras import LoraCatalog
    from webapp.parsing import missing_export_message
    from webapp.server import serve

    settings = settings_from_args(args)
    check_limits(settings)
    LoraCatalog.from_options(settings.loras, settings.lora_dirs)  # a bad --lora / --lora-dir: one line, exit 2
    check_live_parser(settings.live_parser_dir)
    message = missing_export_message(settings.parser_dir)
    if message:
        print(f"note: {message}", file=sys.stderr)
        _offer_export(Path(settings.parser_dir))
    if not missing_export_message(settings.parser_dir):  # an export to serve: intact, or no start
        note = check_export(settings.parser_dir, "--parser", f"face-studio export --out {settings.parser_dir}")
        if note:
            print(f"note: {note}", file=sys.stderr)
    if not settings.ray:  # with --ray each replica resolves its own speed mode (its status line says which)
        from webapp.backend import backend_for

        note = backend_for(settings).status().speed_note
        if note:
            print(f"note: {note}", file=sys.stderr)  # e.g. --speed fp8 without an fp8 GPU → eager
    serve(settings)
    return 0
