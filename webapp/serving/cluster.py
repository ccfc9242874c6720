"""Start or join Ray, check the request fits the cluster, and deploy the replicas on Ray Serve.

``face-studio serve --ray auto --replicas N`` → :func:`start`: ``ray.init()`` (a local instance, or the one
``ray start --head`` runs on this machine), then one Serve application, ``face-studio``, with one deployment,
:class:`~webapp.serving.replica.StudioReplica` (generation and server parse), ``num_gpus=1`` per replica on
GPU clusters (0 on CPU), a fixed replica count or autoscaling bounds. No HTTP proxy: the Gradio front end
talks to the replicas through deployment handles. Every problem is one :class:`UserError` line.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from face_studio.errors import UserError
from webapp.settings import ServeSettings

log = logging.getLogger(__name__)

APP_NAME = "face-studio"
DEPLOYMENT_NAME = "StudioReplica"
NAMESPACE = "face-studio"
RAY_INSTALL_HINT = "pip install 'face-studio[ray]'"
PROBE_TIMEOUT_S = 3.0  # a cluster that does not answer a TCP connect in this long is reported as unreachable
DEFAULT_RAY_PORT = 6379  # `ray start --head` GCS port
DEFAULT_CLIENT_PORT = 10001  # Ray Client server port (ray://)
CPU_THREADS_PER_REPLICA = 1  # CPU replicas: one core each, so N replicas use N cores side by side
REQUESTS_PER_REPLICA_SLACK = 2  # a replica takes this many batches' worth of requests before Serve queues


@dataclass
class Deployment:
    """A running deployment: its handle and how it was sized."""

    handle: Any
    replicas: int  # the count (or the autoscaling maximum) the front end sizes its queue for
    gpus_per_replica: float


def _import_ray():
    try:
        import ray
        from ray import serve
    except ImportError:
        raise UserError(f"--ray needs Ray Serve, which is not installed: {RAY_INSTALL_HINT}.") from None
    return ray, serve


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Refuse quickly when nothing listens at ``address`` (``host:port`` or ``ray://host:port``)."""
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep:
        host, port = bare, str(DEFAULT_CLIENT_PORT if address.startswith("ray://") else DEFAULT_RAY_PORT)
    try:
        port_number = int(port)
    except ValueError:
        raise UserError(f"--ray {address}: the port {port!r} is not a number; give host:port (e.g. "
                        f"10.0.0.5:{DEFAULT_RAY_PORT}) or auto.") from None
    try:
        with socket.create_connection((host or "127.0.0.1", port_number), timeout=timeout):
            pass
    except OSError as err:
        raise UserError(f"no Ray cluster answers at {address} ({err.strerror or err}): start one there with "
                        f"`ray start --head --port {port_number}`, or use --ray auto for a local instance.") from None


def replica_bounds(settings: ServeSettings) -> tuple[int, int]:
    """(min, max) replicas: a fixed count, or the autoscaling bounds."""
    if settings.min_replicas is None and settings.max_replicas is None:
        return settings.replicas, settings.replicas
    low = settings.min_replicas if settings.min_replicas is not None else 1
    high = settings.max_replicas if settings.max_replicas is not None else max(low, settings.replicas)
    if low > high:
        raise UserError(f"--min-replicas {low} is above --max-replicas {high}: make min ≤ max.")
    return low, high


def check_resources(ray: Any, low: int, gpus_per_replica: float) -> None:
    """The cluster must hold the minimum replicas: one GPU each on GPU clusters, one CPU each on CPU."""
    resources = ray.cluster_resources()
    if gpus_per_replica:
        have = int(resources.get("GPU", 0))
        if low > have:
            raise UserError(f"--replicas {low} needs {low} GPUs (one per replica), but the Ray cluster has {have}: "
                            "lower --replicas, or add GPU machines with `ray start --address HEAD:6379`.")
    else:
        have = int(resources.get("CPU", 0))
        if low * CPU_THREADS_PER_REPLICA > have:
            raise UserError(f"--replicas {low} on CPU needs {low * CPU_THREADS_PER_REPLICA} CPUs, but the Ray "
                            f"cluster has {have}: lower --replicas.")


def wants_gpu(ray: Any, settings: ServeSettings) -> bool:
    """GPU replicas unless the device is the CPU, or ``auto`` on a cluster without GPUs."""
    if settings.device == "cpu":
        return False
    if settings.device in (None, "", "auto"):
        return ray.cluster_resources().get("GPU", 0) > 0
    return True


def deployment_options(settings: ServeSettings, gpus_per_replica: float, low: int, high: int) -> dict[str, Any]:
    """The ``serve.deployment`` options: resources per replica, count or autoscaling, in-flight requests."""
    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {"num_gpus": gpus_per_replica,
                              "num_cpus": 0 if gpus_per_replica else CPU_THREADS_PER_REPLICA},
        # enough in flight per replica to fill a batch and have the next one waiting
        "max_ongoing_requests": max(1, settings.max_batch) * REQUESTS_PER_REPLICA_SLACK,
        "health_check_period_s": 2.0,
        "graceful_shutdown_timeout_s": 5.0,
    }
    from webapp.serving.replica import SIMULATE_ENV

    if os.environ.get(SIMULATE_ENV):  # bench/serving.py --simulate-gpu-ms: these replicas sleep in place of the GPU
        options["ray_actor_options"]["runtime_env"] = {"env_vars": {SIMULATE_ENV: os.environ[SIMULATE_ENV]}}
    if low == high:
        options["num_replicas"] = low
    else:
        options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high,
                                         "target_ongoing_requests": max(1, settings.max_batch)}
    return options


def _runtime_env() -> dict[str, Any]:
    """Run from a source checkout (not pip-installed): the replicas need the checkout on their path too.
    Joined machines need face-studio installed (docs/serving.md)."""
    import webapp

    root = str(Path(webapp.__file__).resolve().parent.parent)
    paths = [root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


def start(settings: ServeSettings) -> Deployment:
    """Start (``--ray auto``) or join (``--ray ADDRESS``) Ray and deploy the replicas; blocks until every
    replica has loaded its pipeline."""
    ray, serve = _import_ray()
    low, high = replica_bounds(settings)
    address = settings.ray or "auto"
    if address != "auto":
        probe_address(address)
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == "auto" else address, namespace=NAMESPACE,
                     include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env=_runtime_env())
        except ConnectionError as err:
            raise UserError(f"could not join the Ray cluster at {address}: {err}") from None
    gpus_per_replica = 1.0 if wants_gpu(ray, settings) else 0.0
    check_resources(ray, low, gpus_per_replica)
    from webapp.serving.replica import StudioReplica

    options = deployment_options(settings, gpus_per_replica, low, high)
    app = serve.deployment(StudioReplica).options(**options).bind(
        settings, None if gpus_per_replica else CPU_THREADS_PER_REPLICA)
    serve.start(proxy_location="Disabled")
    log.info("deploying %s (%s replicas, %g GPU each) on Ray", DEPLOYMENT_NAME,
             low if low == high else f"{low}–{high}", gpus_per_replica)
    try:
        handle = serve.run(app, name=APP_NAME, route_prefix=None, blocking=False)
    except Exception as err:  # a replica that fails to start (bad model folder …) fails the deploy
        raise UserError(f"the Ray Serve replicas did not start: {str(err).splitlines()[-1][:400]}") from None
    return Deployment(handle=handle, replicas=high, gpus_per_replica=gpus_per_replica)


def stop() -> None:
    """Delete the application and shut Serve down (the local Ray instance stops with the process)."""
    ray, serve = _import_ray()
    if ray.is_initialized():
        try:
            serve.delete(APP_NAME)
            serve.shutdown()
        finally:
            ray.shutdown()


def replica_actors() -> list[Any]:
    """Handles of the running replica actors (for tests and operations: ``ray.kill`` one)."""
    ray, _ = _import_ray()
    from ray.util import list_named_actors

    names = [a["name"] for a in list_named_actors(all_namespaces=True)
             if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT_NAME}")]
    return [ray.get_actor(name, namespace="serve") for name in names]
