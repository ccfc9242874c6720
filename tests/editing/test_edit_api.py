"""The `inpaint` and `restyle` APIs through gradio_client against the live app."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.bad_input import BadInput
from tests.editing.bad_inputs import BAD_INPUTS, INPAINT
from webapp.editing.fields import INPAINT as INPAINT_FIELDS
from webapp.editing.fields import RESTYLE as RESTYLE_FIELDS

FILES = ("image", "mask", "face_map")


@pytest.fixture(scope="module")
def client(edit_server):
    from gradio_client import Client

    return Client(edit_server.url, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory, portrait) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("api")
    paths = {"photo": folder / "photo.png", "mask": folder / "mask.png", "small": folder / "small.png",
             "empty": folder / "empty.png", "text": folder / "notes.png", "facemap": folder / "facemap.png",
             "numbered": folder / "numbered.png"}
    portrait.save(paths["photo"])
    mask = np.zeros((portrait.height, portrait.width), dtype=np.uint8)
    mask[30:70, 50:150] = 255
    Image.fromarray(mask).save(paths["mask"])
    Image.new("L", (10, 10), 255).save(paths["small"])
    Image.new("L", portrait.size, 0).save(paths["empty"])
    paths["text"].write_text("not a picture")
    owner, numbered = face_maps(portrait.width, portrait.height)
    Image.fromarray(owner).save(paths["facemap"])
    Image.fromarray(numbered).save(paths["numbered"])
    return paths


def face_maps(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """A 3-face owner map for the portrait (face 1 in the middle, 2 left, 3 right; 2 and 1 touch) and the
    page's face-numbered mask for faces 2 and 3 (value k = regenerate for face k)."""
    owner = np.zeros((h, w), dtype=np.uint8)
    owner[10:140, 0:60], owner[10:140, 60:130], owner[10:140, 140:200] = 2, 1, 3
    numbered = np.zeros_like(owner)
    numbered[30:70, 10:58] = 2
    numbered[60:100, 150:190] = 3
    return owner, numbered


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


def _good_call(files: dict[str, Path], surface: str) -> tuple[str, dict]:
    """A call of ``surface``'s API that succeeds, as (api name, keyword values)."""
    if surface == INPAINT:
        return "/inpaint", {"image": files["photo"], "mask": files["mask"], "regions": "", "prompt": "red hair",
                            "negative": "", "strength": 0.85, "steps": 3, "guidance": 4.5, "seed": 3, "grow": 0,
                            "feather": 0, "mask_regions": "hair", "faces": "", "face_map": None}
    return "/restyle", {"image": files["photo"], "prompt": "watercolour", "negative": "", "strength": 0.5,
                        "steps": 4, "guidance": 4.5, "seed": 9}


def _raw_call(url: str, api: str, args: list) -> str:
    """The API over plain HTTP, as a page or curl sends it (gradio_client refuses to send NaN): the error."""
    import httpx

    base = url.rstrip("/") + "/gradio_api"
    data = []
    for value in args:
        if isinstance(value, Path):
            with value.open("rb") as handle:
                [path] = httpx.post(f"{base}/upload", files={"files": (value.name, handle)}).json()
            value = {"path": path, "orig_name": value.name, "meta": {"_type": "gradio.FileData"}}
        data.append(value)
    body = json.dumps({"data": data})  # allow_nan: NaN goes out as the JavaScript literal
    event = httpx.post(f"{base}/call{api}", content=body, headers={"Content-Type": "application/json"}).json()
    stream = httpx.get(f"{base}/call{api}/{event['event_id']}", timeout=120).text
    assert "event: error" in stream, stream
    return stream


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c.surface.startswith("API ")], ids=lambda c: c.id)
def test_api_bad_inputs_name_the_field_then_still_serve(edit_server, client, files, case: BadInput) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    api, values = _good_call(files, case.surface)
    forged = {k: v.removeprefix("filedata:") for k, v in case.kwargs.items()
              if isinstance(v, str) and v.startswith("filedata:")}
    values.update({k: files[v] if k in FILES and k not in forged else v for k, v in case.kwargs.items()})
    for name, path in forged.items():  # a FileData the client never uploaded: a server path, as curl can send
        values[name] = {"path": path, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}
    order = INPAINT_FIELDS if api == "/inpaint" else RESTYLE_FIELDS
    if forged or any(isinstance(v, float) and not math.isfinite(v) for v in case.kwargs.values()):
        message = _raw_call(edit_server.url, api, [values[n] for n in order])
    else:
        with pytest.raises(AppError) as info:
            client.predict(*[handle_file(str(values[n])) if n in FILES and values[n] else values[n]
                             for n in order],
                           api_name=api)
        message = str(info.value)
    assert case.expect in message
    assert "index" not in message and "int()" not in message
    assert len(message) < 2000 and os.getcwd() not in message and "/etc/" not in message
    png, _, _ = _inpaint(client, files["photo"], files["mask"])  # the server keeps serving
    assert Image.open(png).size == (200, 152)


def test_restyle_api_keeps_the_photos_aspect(client, files) -> None:
    from gradio_client import handle_file

    png, _, record = client.predict(handle_file(str(files["photo"])), "watercolour", "", 0.5, 4, 4.5, 9,
                                    api_name="/restyle")
    assert record["mode"] == "restyle" and Image.open(png).size == (200, 152)
    assert record["working_size"] == [336, 256]


def test_api_keywords_are_the_field_names(client, files) -> None:
    """gradio_client users call by the same names the page's payload uses."""
    from gradio_client import handle_file

    png, _, record = client.predict(image=handle_file(str(files["photo"])), prompt="watercolour", negative="",
                                    strength=0.5, steps=2, seed=4, api_name="/restyle")
    assert record["steps"] == 2 and record["seed"] == 4 and Image.open(png).size == (200, 152)


def test_two_faces_two_prompts_in_one_request(client, files) -> None:
    """The page's request: a face-numbered mask, the face map, a prompt per face; face 1 is left as it was."""
    from gradio_client import handle_file

    faces = '[{"face": 2, "prompt": "red hair", "mask_regions": "hair"}, {"face": 3, "prompt": "a smile"}]'
    png, _, record = client.predict(image=handle_file(str(files["photo"])), mask=handle_file(str(files["numbered"])),
                                    prompt="", steps=3, seed=5, grow=6, feather=4, faces=faces,
                                    face_map=handle_file(str(files["facemap"])), api_name="/inpaint")
    before = np.asarray(Image.open(files["photo"]).convert("RGB"))
    after = np.asarray(Image.open(png).convert("RGB"))
    owner, numbered = face_maps(*Image.open(files["photo"]).size)
    changed = (before != after).any(axis=-1)
    assert not changed[owner == 1].any(), "face 1 was not chosen but changed"
    assert changed[numbered == 2].mean() > 0.9 and changed[numbered == 3].mean() > 0.9
    # Grown by 6 and feathered by 4 px at most: nothing changed farther out (the rest is bit-exact).
    from webapp.editing.masks import grow

    reach = grow(numbered > 0, 6 + 4 * 4)
    assert not changed[~reach].any()
    assert [(f["face"], f["prompt"], f["regions"]) for f in record["faces"]] == [
        (2, "red hair", ["hair"]), (3, "a smile", [])]
    assert record["mask_from_png"] is True and "Faces: 2+3" in Image.open(png).text["parameters"]
