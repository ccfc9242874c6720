"""The `inpaint` and `restyle` APIs through gradio_client against the live app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def client(edit_server):
    from gradio_client import Client

    return Client(edit_server.url, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory, portrait) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("api")
    paths = {"photo": folder / "photo.png", "mask": folder / "mask.png", "small": folder / "small.png",
             "empty": folder / "empty.png", "text": folder / "notes.png"}
    portrait.save(paths["photo"])
    mask = np.zeros((portrait.height, portrait.width), dtype=np.uint8)
    mask[30:70, 50:150] = 255
    Image.fromarray(mask).save(paths["mask"])
    Image.new("L", (10, 10), 255).save(paths["small"])
    Image.new("L", portrait.size, 0).save(paths["empty"])
    paths["text"].write_text("not a picture")
    return paths


def _inpaint(client, image, mask=None, regions="", strength=0.85, seed=3):
    from gradio_client import handle_file

    return client.predict(handle_file(str(image)), handle_file(str(mask)) if mask else None, regions, "red hair",
                          "", strength, 3, 4.5, seed, 0, 0, "hair", api_name="/inpaint")


def test_inpaint_api_keeps_outside_pixels(client, files) -> None:
    png, _before_after, record = _inpaint(client, files["photo"], files["mask"])
    before = np.asarray(Image.open(files["photo"]).convert("RGB"))
    after = np.asarray(Image.open(png).convert("RGB"))
    keep = np.asarray(Image.open(files["mask"])) == 0
    assert np.array_equal(before[keep], after[keep])
    assert (before[~keep] != after[~keep]).any(axis=-1).mean() > 0.9
    assert record["regions"] == ["hair"] and record["mask_from_png"] is True
    assert json.loads(Image.open(png).text["face-studio"])["edit"]["seed"] == 3


@pytest.mark.parametrize("case, expected", [
    ("small", "the mask is 10×10 but the image is 200×152"),
    ("empty", "the mask is empty"),
    ("unknown", "unknown region name(s): 'beard'"),
    ("not_image", "is not an image we can read"),
    ("strength", "strength must be between 0.05 and 1"),
])
def test_inpaint_api_errors_then_still_serves(client, files, case: str, expected: str) -> None:
    from gradio_client.exceptions import AppError

    args = {"small": dict(mask=files["small"]), "empty": dict(mask=files["empty"]),
            "unknown": dict(regions="hair,beard"), "not_image": dict(image=files["text"], mask=files["mask"]),
            "strength": dict(mask=files["mask"], strength=0)}[case]
    image = args.pop("image", files["photo"])
    with pytest.raises(AppError) as info:
        _inpaint(client, image, **args)
    assert expected in str(info.value)
    png, _, _ = _inpaint(client, files["photo"], files["mask"])  # the server keeps serving
    assert Image.open(png).size == (200, 152)


def test_restyle_api(client, files) -> None:
    from gradio_client import handle_file

    png, _, record = client.predict(handle_file(str(files["photo"])), "watercolour", "", 0.5, 4, 4.5, 9,
                                    api_name="/restyle")
    assert record["mode"] == "restyle" and Image.open(png).size == (200, 152)
