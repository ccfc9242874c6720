"""face-studio as a Ray Serve application, for ``serve run deploy/serve_config.yaml`` and a KubeRay RayService.

Two deployments: ``StudioReplica`` (generation + server parse, one GPU each: :mod:`webapp.serving.replica`) and
``StudioFrontEnd`` (one replica): the same Gradio server as ``face-studio serve`` (page, API, ``/healthz``,
``/status``, ``--auth``), started inside the front-end actor on ``port`` and wired to the replicas' handle
through :class:`~webapp.serving.remote.RayBackend`. The Gradio server listens itself (its queue streams and the
page's cross-origin isolation headers pass untouched); Serve's HTTP proxy is not in its path.

``import_path: webapp.serving.app:build_app`` with ``args`` = ``face-studio serve`` options by their settings
names (``sd_model``, ``device``, ``replicas``, ``port``, …; see :func:`settings_from_args`).
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from face_studio.errors import UserError
from webapp.serving import cluster
from webapp.serving.replica import StudioReplica
from webapp.settings import ServeSettings

log = logging.getLogger(__name__)

FRONT_END_NAME = "StudioFrontEnd"
PATH_FIELDS = {"parser_dir", "live_parser_dir", "output_dir"}


def settings_from_args(args: dict[str, Any] | None) -> ServeSettings:
    """``ServeSettings`` from the config file's ``args`` (settings names; unknown names: one clear error)."""
    args = dict(args or {})
    known = {f.name for f in fields(ServeSettings)} - {"ray", "share"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise UserError(f"serve config args: unknown option(s) {', '.join(unknown)}; use face-studio serve's "
                        f"settings names: {', '.join(sorted(known))}.")
    for name in PATH_FIELDS & set(args):
        args[name] = Path(args[name]) if args[name] is not None else None
    if "lora_dirs" in args:
        args["lora_dirs"] = [Path(p) for p in args["lora_dirs"]]
    if "loras" in args:
        args["loras"] = [(str(spec), float(scale)) for spec, scale in args["loras"]]
    if args.get("auth") is not None:
        args["auth"] = tuple(args["auth"])
    return replace(ServeSettings(**args), ray="serve")


class StudioFrontEnd:
    """The Gradio front end inside Serve: serves on ``settings.port`` until the application is deleted."""

    def __init__(self, replica_handle: Any, args: dict[str, Any], gpus_per_replica: float) -> None:
        from webapp.backend import register
        from webapp.server import run_in_thread
        from webapp.serving.remote import RayBackend

        settings = settings_from_args(args)
        low, high = cluster.replica_bounds(settings)
        register(settings, RayBackend(settings, cluster.Deployment(handle=replica_handle, replicas=high,
                                                                   gpus_per_replica=gpus_per_replica)))
        self.server = run_in_thread(settings)
        log.info("face-studio front end at %s (replicas %s)", self.server.url, low if low == high else f"{low}–{high}")

    def check_health(self) -> None:
        """Serve's health check: the Gradio server is still open."""
        if self.server._closed.is_set():
            raise RuntimeError("the Gradio server has stopped")

    def __call__(self, *_: Any) -> str:
        return f"face-studio serves its page and API at port {self.server.port} of this node."

    def __del__(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.close()


def build_app(args: dict[str, Any] | None = None):
    """Serve's application builder: the replicas (sized as ``face-studio serve --ray`` sizes them: one GPU
    each unless ``device: cpu``) behind the front end."""
    from ray import serve

    settings = settings_from_args(args)
    low, high = cluster.replica_bounds(settings)
    gpus = 0.0 if settings.device == "cpu" else 1.0
    replicas = serve.deployment(StudioReplica).options(**cluster.deployment_options(settings, gpus, low, high)).bind(
        settings, None if gpus else cluster.CPU_THREADS_PER_REPLICA)
    front = serve.deployment(StudioFrontEnd).options(name=FRONT_END_NAME, num_replicas=1,
                                                     ray_actor_options={"num_cpus": 0},
                                                     health_check_period_s=10.0)
    return front.bind(replicas, dict(args or {}), gpus)
