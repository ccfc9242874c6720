"""The batched queue and per-request LoRAs: a LoRA choice is part of the batch key, so requests with different
LoRAs (or scales) never share a pipeline call, and each image matches its run alone with its own LoRA."""

from __future__ import annotations

import threading

import pytest

from tests.generation.conftest import build_tiny_lora
from tests.serving.conftest import max_diff
from webapp.generation.batching import BATCH_PIXEL_TOLERANCE, batch_key
from webapp.generation.params import validate
from webapp.generation.service import GenerationService

# (LoRA name or None, scale or None = the operator's)
CHOICES = [(None, None), ("tiny_style", None), ("tiny_style", 0.25), (None, None)]


@pytest.fixture(scope="module")
def lora_file(tiny_sd3_dir, tmp_path_factory):
    return build_tiny_lora(tiny_sd3_dir, tmp_path_factory.mktemp("lora"))


def _request(service: GenerationService, i: int):
    from dataclasses import replace

    name, scale = CHOICES[i]
    request = validate(prompt="a face", steps=3, width=64, height=64, seed=100 + i)
    return replace(request, loras=service.choose_loras(name, scale))


def test_batch_key_keeps_lora_choices_apart(settings_for, lora_file):
    service = GenerationService(settings_for(loras=[(str(lora_file), 1.0)]))
    keys = [batch_key(_request(service, i)) for i in range(4)]
    assert keys[0] == keys[3]  # no LoRA, same size: may share
    assert len({keys[0], keys[1], keys[2]}) == 3  # none / scale 1 / scale 0.25: never share


def test_concurrent_requests_with_different_loras_never_share_a_call(settings_for, lora_file, tmp_path):
    opts = dict(loras=[(str(lora_file), 1.0)])
    alone = GenerationService(settings_for(max_batch=1, output_dir=tmp_path / "alone", **opts))
    batched = GenerationService(settings_for(max_batch=4, output_dir=tmp_path / "batched", **opts))
    requests = [_request(batched, i) for i in range(4)]
    out, errors = {}, []
    barrier = threading.Barrier(4)

    def run(i):
        barrier.wait()
        try:
            out[i] = batched.generate(requests[i])
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    # three distinct choices → at least three calls; the two LoRA-less requests may share one
    assert batched.batcher.calls >= 3 and sum(batched.batcher.batch_sizes) == 4, batched.batcher.batch_sizes
    for i, request in enumerate(requests):
        got = out[i].images[0]
        assert got.parameters.loras == list(request.loras)
        ref = alone.generate(request).images[0]
        assert max_diff(ref.image, got.image) <= BATCH_PIXEL_TOLERANCE
    # and the LoRA did change the image (so a LoRA leaking into a neighbour's batch would show)
    assert max_diff(out[0].images[0].image, alone.generate(requests[1]).images[0].image) > BATCH_PIXEL_TOLERANCE


def test_run_batch_refuses_mixed_lora_choices(settings_for, lora_file):
    service = GenerationService(settings_for(loras=[(str(lora_file), 1.0)], max_batch=4))
    with pytest.raises(ValueError, match="LoRA choice"):
        service.run_batch([_request(service, 0), _request(service, 1)])


def test_replica_passes_the_lora_name_to_the_service(settings_for, lora_file):
    """The Ray replica (plain Python, no Ray needed) runs the service's own path with the named LoRA; an
    unknown name comes back as the catalog's one-line user error."""
    from dataclasses import asdict

    from webapp.serving.replica import StudioReplica

    replica = StudioReplica(settings_for(loras=[(str(lora_file), 0.5)]))
    assert replica.status()["loras"] == ["tiny_style"]
    request = asdict(validate(prompt="a face", steps=2, width=64, height=64, seed=7))
    items = list(replica.generate(request, "tiny_style"))
    assert items[-1]["type"] == "result", items[-1]
    assert items[-1]["loras"] == [["tiny_style", 0.5]]
    assert items[-1]["images"][0]["parameters"]["loras"] == [("tiny_style", 0.5)]
    plain = list(replica.generate(request))[-1]
    assert plain["loras"] == [] and plain["images"][0]["array"].shape == (64, 64, 3)  # arrays, not PNGs
    assert (plain["images"][0]["array"] != items[-1]["images"][0]["array"]).any()
    bad = list(replica.generate(request, "nope"))[-1]
    assert bad["type"] == "error" and "no LoRA named 'nope'" in bad["message"]
