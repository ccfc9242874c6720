"""Scale-out on Ray Serve (acceptance): a local Ray instance on CPU, the tiny SD3 pipeline, 2 replicas behind
the Gradio app. Concurrent generate calls with distinct seeds all return their own images (equal to the same
seed run alone); Edit's inpaint runs its pipeline call on a replica and gives the single box's image, with no
pipeline loaded on the front end; with one replica killed mid-run every request still completes. Bad input:
one line each."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from gradio_client import Client
from PIL import Image

from face_studio.errors import UserError
from tests.serving.conftest import max_diff
from webapp.generation.batching import BATCH_PIXEL_TOLERANCE
from webapp.generation.params import PNG_TEXT_KEY, validate
from webapp.generation.service import GenerationService
from webapp.serving import cluster

pytest.importorskip("ray.serve", reason="the Ray tests need pip install 'face-studio[ray]'")

N = 6
STEPS = 3


@pytest.fixture(scope="module")
def ray_server(tiny_sd3_dir, tiny_export_dir, tmp_path_factory):
    """`face-studio serve --ray auto --replicas 2 --device cpu` with the tiny model, on a free port."""
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    settings = ServeSettings(sd_model=str(tiny_sd3_dir), device="cpu", ray="auto", replicas=2, max_batch=2, port=0,
                             parser_dir=tiny_export_dir, output_dir=tmp_path_factory.mktemp("front-end"))
    handle = run_in_thread(settings)
    yield handle
    handle.close()
    cluster.stop()


def _call(url: str, seed: int, steps: int = STEPS):
    client = Client(url, verbose=False)
    return client.predict(f"a portrait, seed {seed}", "", "Custom", steps, 4.5, 64, 64, seed, 1, 77,
                          api_name="/generate")


def test_two_replicas_serve_concurrent_calls_each_with_its_own_image(ray_server, settings_for, tmp_path):
    from webapp.backend import backend_for
    from webapp.views.generate import status_markdown

    service = backend_for(ray_server.settings)
    assert service.lane("generate") == ("replicas", 2 * ray_server.settings.max_batch)  # not serialised
    assert "**Ray Serve** 2 replica(s), CPU" in status_markdown(service.status())
    assert len(cluster.replica_actors()) == 2
    seeds = [1000 + 7 * i for i in range(N)]
    out: dict[int, tuple] = {}
    threads = [threading.Thread(target=lambda s=s: out.__setitem__(s, _call(ray_server.url, s))) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert sorted(out) == seeds  # none lost
    alone = GenerationService(settings_for(max_batch=1, output_dir=tmp_path / "alone"))
    for seed in seeds:
        images, seed_used, _ = out[seed]
        assert seed_used == seed and len(images) == 1
        with Image.open(images[0]["image"]) as png:
            assert f"Seed: {seed}" in png.text[PNG_TEXT_KEY] and f"seed {seed}" in png.text[PNG_TEXT_KEY]
        ref = alone.generate(validate(prompt=f"a portrait, seed {seed}", steps=STEPS, width=64, height=64,
                                      seed=seed, max_sequence_length=77))
        assert max_diff(ref.images[0].image, images[0]["image"]) <= BATCH_PIXEL_TOLERANCE  # none mixed up


def test_edit_runs_on_a_replica_with_the_single_box_image_and_no_front_end_pipeline(ray_server, tmp_path):
    """Inpaint through the live app under --ray: the mask is prepared and the result composited on the front
    end, only the pipeline call runs on a replica. Same seed → the single box's image (within 2 grey levels:
    a 1-thread replica and this process sum floats in another order); outside the mask, the photo exactly."""
    import gc

    import httpx
    import numpy as np
    from gradio_client import handle_file

    from webapp.backend.local import LocalBackend
    from webapp.editing.service import EditRequest

    rng = np.random.default_rng(5)
    photo = Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (30, 20, 70, 60))  # white = regenerate
    photo.save(tmp_path / "photo.png")
    mask.save(tmp_path / "mask.png")
    gc.collect()  # services other tests made and dropped
    status = httpx.get(ray_server.url + "status", timeout=30).json()
    pipelines_before, inpaints_before = status["front_end_pipelines"], status["served"]["inpaint"]
    # image, mask, regions, prompt, negative, strength, steps, guidance, seed, grow, feather, mask_regions
    out, _, record = Client(ray_server.url, verbose=False).predict(
        handle_file(str(tmp_path / "photo.png")), handle_file(str(tmp_path / "mask.png")), "", "short red hair", "",
        0.9, STEPS, 4.5, 11, 0, 4, "", api_name="/inpaint")
    status = httpx.get(ray_server.url + "status", timeout=30).json()
    assert status["backend"] == "ray" and status["replicas"] == 2 and status["served"]["inpaint"] == inpaints_before + 1
    assert status["front_end_pipelines"] == pipelines_before  # the edit loaded no pipeline here
    if pipelines_before == 0:  # this module alone (a full session may hold other tests' local pipelines)
        assert status["front_end_pipelines"] == 0
    assert record["seed"] == 11
    single = LocalBackend(replace(ray_server.settings, ray=None, output_dir=tmp_path / "single"))
    ref = single.inpaint(photo, EditRequest(prompt="short red hair", strength=0.9, steps=STEPS, guidance=4.5, seed=11,
                                            grow=0, feather=4), mask=mask)
    assert max_diff(ref.path, out) <= BATCH_PIXEL_TOLERANCE
    got = np.asarray(Image.open(out).convert("RGB"))
    outside = ref.alpha == 0
    assert np.array_equal(got[outside], np.asarray(photo)[outside])  # composited on the front end, bit-exact


def test_a_replica_killed_mid_run_loses_no_request(ray_server):
    import ray
    from gradio_client.utils import Status

    from webapp.backend import backend_for

    service = backend_for(ray_server.settings)
    before = service.retries
    client = Client(ray_server.url, verbose=False)
    seeds = [2000 + i for i in range(N)]
    jobs = [client.submit(f"a portrait, seed {s}", "", "Custom", 60, 4.5, 64, 64, s, 1, 77, api_name="/generate")
            for s in seeds]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until denoising steps are streaming back
        if any(j.status().code == Status.PROGRESS for j in jobs):
            break
        time.sleep(0.05)
    ray.kill(cluster.replica_actors()[0], no_restart=False)
    results = [j.result(timeout=600) for j in jobs]
    assert [r[1] for r in results] == seeds  # every request completed, each with its own seed
    assert service.retries > before  # some were re-sent to the live replica
    deadline = time.monotonic() + 120
    while len(cluster.replica_actors()) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(cluster.replica_actors()) == 2  # Serve restarted the killed replica


def test_server_parse_runs_on_a_replica_with_the_same_label_map(ray_server, tiny_export_dir, tmp_path):
    import os

    import numpy as np
    from gradio_client import handle_file

    from webapp.backend import backend_for
    from webapp.parsing import get_parser
    from webapp.serving.remote import RemoteParser

    image = Image.new("RGB", (96, 80), (200, 150, 120))
    image.paste((40, 30, 20), (20, 20, 60, 60))
    path = tmp_path / "face.png"
    image.save(path)
    backend = backend_for(ray_server.settings)
    reply = RemoteParser(backend.handle, "fp32").parse_reply(image)
    assert reply["pid"] != os.getpid() and reply["providers"] == ["CPUExecutionProvider"]
    labels = backend.parse(image, "fp32").result.labels
    assert np.array_equal(labels, get_parser(tiny_export_dir, "fp32").parse(image))  # the same label map
    label_map, _, summary = Client(ray_server.url, verbose=False).predict(handle_file(str(path)), "fp32",
                                                                          api_name="/parse")
    assert summary["backend"] == "server · ONNX Runtime (CPU)"
    assert np.array_equal(np.asarray(Image.open(label_map)), labels)


def test_more_replicas_than_gpus_is_one_clear_line(ray_server, settings_for):
    with pytest.raises(UserError) as err:
        cluster.start(settings_for(ray="auto", replicas=2, device="cuda"))  # this Ray cluster has no GPU
    assert str(err.value).startswith("--replicas 2 needs 2 GPUs (one per replica), but the Ray cluster has 0")


def test_unreachable_cluster_is_one_clear_line_and_exit_2(settings_for, capsys):
    from webapp.cli import main

    with pytest.raises(UserError, match=r"no Ray cluster answers at 127\.0\.0\.1:1 .*ray start --head"):
        cluster.probe_address("127.0.0.1:1")
    settings = settings_for()
    rc = main(["serve", "--ray", "127.0.0.1:1", "--sd-model", settings.sd_model, "--device", "cpu", "--port", "0",
               "--parser", str(settings.parser_dir), "--output-dir", str(settings.output_dir)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no Ray cluster answers at 127.0.0.1:1") or "no Ray cluster answers" in err[-1]


def test_replica_bounds_and_options():
    from webapp.settings import ServeSettings

    assert cluster.replica_bounds(ServeSettings(replicas=3)) == (3, 3)
    assert cluster.replica_bounds(ServeSettings(min_replicas=1, max_replicas=4)) == (1, 4)
    with pytest.raises(UserError, match="--min-replicas 5 is above --max-replicas 2"):
        cluster.replica_bounds(ServeSettings(min_replicas=5, max_replicas=2))
    fixed = cluster.deployment_options(ServeSettings(max_batch=4), 1.0, 2, 2)
    assert fixed["num_replicas"] == 2 and fixed["ray_actor_options"]["num_gpus"] == 1.0
    auto = cluster.deployment_options(ServeSettings(), 1.0, 1, 4)
    assert auto["autoscaling_config"]["min_replicas"] == 1 and auto["autoscaling_config"]["max_replicas"] == 4
