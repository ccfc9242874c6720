"""The Generate API through a live server and gradio_client, serving the tiny SD3 folder on CPU."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.generation.bad_inputs import BAD_INPUTS
from tests.generation.conftest import start_server
from webapp.generation.params import PNG_JSON_KEY, PNG_TEXT_KEY
from webapp.generation.pipeline import NO_GPU_MESSAGE

# prompt, negative, preset, steps, guidance, width, height, seed, images, T5 max tokens
GOOD = dict(prompt="a portrait photo, soft light", negative_prompt="", preset="Custom", steps=2, guidance=4.5,
            width=64, height=64, seed=11, num_images=1, max_sequence_length=77)


def generate(client: Client, lora: str | None = None, lora_scale: float | None = None, **changes):
    """The 10 original parameters positionally (as older clients send them); the LoRA pair only when given."""
    args = list({**GOOD, **changes}.values())
    if lora is not None:
        args += [lora, lora_scale]
    return client.predict(*args, api_name="/generate")


def raw_generate_error(url: str, **changes) -> str:
    """``generate`` over plain HTTP, as a page or curl sends it (gradio_client won't send NaN): the error event."""
    import httpx

    base = url.rstrip("/") + "/gradio_api"
    data = [*{**GOOD, **changes}.values(), None, None]  # + lora, lora_scale: none
    body = json.dumps({"data": data})  # allow_nan: NaN goes out as the JavaScript literal
    event = httpx.post(f"{base}/call/generate", content=body, headers={"Content-Type": "application/json"}).json()
    stream = httpx.get(f"{base}/call/generate/{event['event_id']}", timeout=120).text
    assert "event: error" in stream, stream
    return stream


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_generate_returns_pngs_of_the_requested_size(client):
    images, seed_used, parameters = generate(client, width=96, height=64, num_images=2, seed=40)
    assert len(images) == 2
    for item, seed in zip(images, (40, 41), strict=True):
        with Image.open(item["image"]) as png:
            assert png.format == "PNG"
            assert png.size == (96, 64)
            assert f"Seed: {seed}" in png.text[PNG_TEXT_KEY]  # image i carries seed + i
        assert f"seed {seed}" in item["caption"]
    assert seed_used == 40
    assert "Size: 96x64" in parameters
    assert pixels(images[0]["image"]).std() > 1.0  # a real image, not a flat fill


def test_random_seed_is_returned_and_reproduces(client):
    images, seed_used, _ = generate(client, seed=-1)
    assert 0 <= seed_used < 2**32
    again, _, _ = generate(client, seed=seed_used)
    assert np.array_equal(pixels(images[0]["image"]), pixels(again[0]["image"]))


def test_same_seed_gives_the_same_pixels(client):
    first, _, _ = generate(client, seed=1234)
    second, _, _ = generate(client, seed=1234)
    other, _, _ = generate(client, seed=1235)
    assert np.array_equal(pixels(first[0]["image"]), pixels(second[0]["image"]))
    assert not np.array_equal(pixels(first[0]["image"]), pixels(other[0]["image"]))


def test_png_parameters_round_trip_into_the_fields(client):
    sent = dict(prompt='a sailor, "old", with a pipe: oil painting\nsecond line', negative_prompt="blurry, lowres",
                preset="Medium", steps=3, guidance=2.5, width=512, height=512, seed=99, num_images=1,
                max_sequence_length=128)
    images, _, _ = generate(client, **sent)
    with Image.open(images[0]["image"]) as png:
        assert PNG_JSON_KEY in png.text and PNG_TEXT_KEY in png.text
    fields = client.predict(handle_file(images[0]["image"]), api_name="/read_parameters")
    prompt, negative, preset, steps, guidance, width, height, seed, seq_len, aspect = fields
    assert (prompt, negative, preset) == (sent["prompt"], sent["negative_prompt"], sent["preset"])
    assert (steps, guidance, width, height, seed) == (3, 2.5, 512, 512, 99)
    assert int(seq_len) == 128
    assert aspect == "custom"
    # and the loaded fields make the same image again
    again, _, _ = generate(client, prompt=prompt, negative_prompt=negative, preset=preset, steps=steps,
                           guidance=guidance, width=width, height=height, seed=seed, max_sequence_length=seq_len)
    assert np.array_equal(pixels(images[0]["image"]), pixels(again[0]["image"]))


def test_read_parameters_refuses_a_png_without_parameters(client, tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (16, 16), "red").save(plain)
    with pytest.raises(AppError, match="carries no generation parameters"):
        client.predict(handle_file(str(plain)), api_name="/read_parameters")


def test_no_endpoint_takes_a_server_path_for_a_lora(client, tiny_lora):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert not {"/lora_load", "/lora_unload"} & set(endpoints)
    generate_params = [p["parameter_name"] for p in endpoints["/generate"]["parameters"]]
    assert generate_params[-2:] == ["lora", "lora_scale"]  # a name from a list, and a number
    lora = endpoints["/generate"]["parameters"][-2]
    assert lora["component"] == "Dropdown" and lora["parameter_default"] == "(none)"
    with pytest.raises(ValueError, match="Cannot find a function with `api_name`: /lora_load"):
        client.predict(str(tiny_lora), 1.0, api_name="/lora_load")


def test_the_page_offers_lora_names_and_never_their_paths(server, tiny_lora):
    import httpx

    config = httpx.get(server.url + "config", timeout=30).json()
    dropdown = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "generate-lora")
    assert [choice[0] for choice in dropdown["props"]["choices"]] == ["(none)", "tiny_style"]
    assert str(tiny_lora.parent) not in json.dumps(config)


def test_one_clients_lora_never_changes_another_clients_image(server):
    a, b = Client(server.url, verbose=False), Client(server.url, verbose=False)
    base = pixels(generate(b, seed=5)[0][0]["image"])
    # A and B ask at the same time, twice each, with the same seed; only A names the LoRA
    jobs = [(who, c.submit(*{**GOOD, "seed": 5}.values(), *lora, api_name="/generate"))
            for _ in range(2) for who, c, lora in (("A", a, ("tiny_style", 1.0)), ("B", b, ("(none)", None)))]
    results = {"A": [], "B": []}
    for who, job in jobs:
        images, _, parameters = job.result(timeout=300)
        results[who].append((pixels(images[0]["image"]), parameters))
    for image, parameters in results["B"]:
        assert np.array_equal(image, base) and "LoRA" not in parameters
    for image, parameters in results["A"]:
        assert not np.array_equal(image, base) and 'LoRA: "tiny_style: 1"' in parameters
    assert np.array_equal(results["A"][0][0], results["A"][1][0])


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.tried for c in BAD_INPUTS])
def test_bad_inputs_are_clear_errors_and_the_server_keeps_serving(server, client, tiny_lora, case):
    if any(isinstance(v, float) and v != v for v in case.kwargs.values()):  # NaN
        message = raw_generate_error(server.url, **case.kwargs)
    else:
        with pytest.raises(AppError) as err:
            generate(client, **case.kwargs)
        message = str(err.value)
    assert case.expect in message and "preprocess" not in message
    assert str(tiny_lora.parent) not in message.replace(str(case.kwargs.get("lora")), "")
    images, _, _ = generate(client)  # the next request is served
    with Image.open(images[0]["image"]) as image:
        assert image.size == (64, 64)


def test_cancel_stops_the_job_at_the_next_step(server):
    from webapp.backend import backend_for

    service = backend_for(server.settings)
    before = set(service.output_dir.iterdir())
    steps_seen: list[int] = []
    client = Client(server.url, verbose=False)
    job = client.submit(*{**GOOD, "steps": 150, "width": 256, "height": 256}.values(), api_name="/generate")
    # wait until denoising has started (the service's progress reaches the job), then cancel
    deadline = time.time() + 120
    while not service._cancel and time.time() < deadline:
        time.sleep(0.05)
    assert service._cancel, "the job never started"
    cancel_event = next(iter(service._cancel.values()))
    watcher = threading.Thread(target=lambda: steps_seen.append(cancel_event.wait(120)))
    watcher.start()
    client.predict(api_name="/cancel")
    watcher.join()
    assert steps_seen == [True]  # the running job's flag was set
    deadline = time.time() + 120
    while service._cancel and time.time() < deadline:  # the handler has returned (after saving, if it saved)
        time.sleep(0.05)
    assert not service._cancel
    with pytest.raises(Exception):  # noqa: B017 - cancelled jobs end in gradio_client's own exception type
        job.result(timeout=60)
    assert set(service.output_dir.iterdir()) == before  # nothing written: it stopped early
    images, _, _ = generate(client)
    assert len(images) == 1


def test_missing_model_folder_is_a_clear_error_and_the_server_keeps_serving(tmp_path):
    missing = tmp_path / "no-such-model"
    handle = start_server(sd_model=str(missing), device="cpu", parser_dir=tmp_path / "none",
                          output_dir=tmp_path / "out")
    try:
        client = Client(handle.url, verbose=False)
        for _ in range(2):  # asked twice: the same clear answer, the server still up
            with pytest.raises(AppError, match=f"model folder {missing.name} does not exist"):
                generate(client)
        assert client.predict(api_name="/cancel") == ()  # other endpoints still answer
    finally:
        handle.close()


def test_folder_without_model_index_is_refused(tmp_path):
    from webapp.generation.pipeline import ModelLoadError, PipelineOwner

    (tmp_path / "weights").mkdir()
    owner = PipelineOwner(str(tmp_path / "weights"), device="cpu")
    with pytest.raises(ModelLoadError, match="not a diffusers pipeline folder"):
        owner.get()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_cuda(), reason="this machine has a CUDA GPU: the no-GPU refusal cannot happen here")
def test_without_gpu_generate_is_refused_and_the_view_says_so(tiny_sd3_dir, tmp_path):
    import httpx

    handle = start_server(sd_model=str(tiny_sd3_dir), device=None, parser_dir=tmp_path / "none",
                          output_dir=tmp_path / "out")
    try:
        client = Client(handle.url, verbose=False)
        with pytest.raises(AppError) as err:
            generate(client)
        assert str(err.value).strip() == NO_GPU_MESSAGE
        config = httpx.get(handle.url + "config", timeout=30).json()
        texts = [c.get("props", {}).get("value") for c in config["components"]]
        assert any(isinstance(t, str) and "Generation is off on this server" in t and "--device cpu" in t
                   for t in texts)
        run_button = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "generate-run")
        assert run_button["props"]["interactive"] is False
        assert not list((tmp_path / "out").glob("*.png"))
    finally:
        handle.close()
