"""The Edit view in real Chromium: parse in the browser, pick a region, and only after the user confirms
send image + mask in exactly one upload; the result comes back from the tiny SD3 pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser
TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("edit-page") / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(path)
    return path


def test_one_upload_with_image_and_mask_only_after_confirming(edit_server, edit_settings, browser,
                                                             photo: Path) -> None:
    image_bytes = photo.read_bytes()
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    requests = []
    page.on("request", lambda r: requests.append(r))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(edit_server.url)
    page.get_by_role("tab", name="Edit").click()
    root = page.locator(".fs-edit")
    root.locator("input[data-role=file]").set_input_files(str(photo))
    page.wait_for_selector(".fs-edit[data-state=ready], .fs-edit[data-state=error]", state="attached",
                           timeout=TIMEOUT_MS)
    assert root.get_attribute("data-state") == "ready", root.locator("[data-role=error]").text_content()
    assert not root.locator("[data-role=result]").is_visible(), "the result panel shows before any result"
    assert not root.locator("[data-role=confirm]").is_visible()

    # Chromium does not expose multipart bodies built from Blobs, so every POST counts as a possible
    # carrier; the upload's content is checked on the server below.
    def posts() -> list:
        return [r for r in requests if r.method == "POST"]

    assert posts() == [], "the page sent something to the server while parsing"
    # Pick the largest region the (random, tiny) parser found, write a prompt, 2 steps.
    first = root.locator("[data-role=regions] input[type=checkbox]").first
    first.check()
    chosen = first.get_attribute("data-class")
    root.locator("[data-role=prompt]").fill("short red curly hair")
    root.locator("[data-role=steps]").fill("2")
    root.locator("[data-role=seed]").fill("7")
    root.locator("[data-role=send]").click()
    assert root.get_attribute("data-state") == "confirming"
    assert "uploads this image and its mask" in root.locator("[data-role=confirm-text]").text_content()
    root.locator("[data-role=confirm-no]").click()
    page.wait_for_timeout(500)
    assert posts() == [], "cancelling the notice still uploaded the image"

    root.locator("[data-role=send]").click()
    root.locator("[data-role=confirm-yes]").click()
    page.wait_for_selector(".fs-edit[data-state=done], .fs-edit[data-state=error]", state="attached",
                           timeout=TIMEOUT_MS)
    assert root.get_attribute("data-state") == "done", root.locator("[data-role=error]").text_content()

    uploads = [r for r in posts() if r.url.endswith("/gradio_api/upload")]
    assert len(uploads) == 1, f"{len(uploads)} uploads"
    others = [r for r in posts() if r not in uploads]
    assert [r.url.split("?")[0].rsplit("/", 2)[-2:] for r in others] == [["queue", "join"]]
    join = json.loads(others[0].post_data_buffer)
    files = [d for d in join["data"] if isinstance(d, dict)]
    # The page's named payload reached Gradio in the order of the fields the server serves.
    from webapp.editing.fields import DEFAULT_FEATHER, DEFAULT_GROW, INPAINT

    sent = dict(zip(INPAINT, join["data"], strict=True))
    assert (sent["steps"], sent["seed"], sent["grow"], sent["feather"]) == (2, 7, DEFAULT_GROW, DEFAULT_FEATHER)
    assert sent["prompt"] == "short red curly hair" and sent["regions"] == "" and sent["mask_regions"] == chosen
    assert len(files) == 2 and image_bytes[:64] not in others[0].post_data_buffer
    # The one upload carried both: the photo, byte for byte, and a mask of its size.
    received = [Path(f["path"]) for f in files]
    assert received[0].read_bytes() == image_bytes
    mask = Image.open(received[1])
    assert mask.size == (256, 256) and set(np.unique(np.asarray(mask))) <= {0, 255}
    assert all(r.url.startswith(edit_server.url.rstrip("/")) or r.url.startswith(("blob:", "data:"))
               for r in requests), "a request left the page's origin"
    info = root.locator("[data-role=result-info]").text_content()
    assert "Seed 7" in info and chosen in info
    size = page.evaluate("(() => { const i = document.querySelector('.fs-edit [data-role=after]');"
                         " return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [256, 256]
    assert errors == []
    page.close()
    # The PNG the page links to is the server's composite, with its record.
    saved = sorted(Path(edit_settings.output_dir).glob("*-inpaint-7.png"))
    assert saved, "the page's edit was not saved"
    record = json.loads(Image.open(saved[-1]).text["face-studio"])["edit"]
    assert record["mask_from_png"] is True and record["steps"] == 2 and record["regions"] == [chosen]
    assert np.asarray(Image.open(saved[-1])).shape == (256, 256, 3)


def test_one_click_from_the_generate_gallery_to_edit(edit_server, browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(edit_server.url)
    page.get_by_role("tab", name="Generate").click()
    for label, value in (("Prompt", "a portrait"), ("Steps (1–150)", "2"), ("Width", "96"), ("Height", "80")):
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_label(label, exact=True).press("Tab")
    page.locator("#generate-run").click()
    page.locator("#generate-images img").first.wait_for(timeout=TIMEOUT_MS)
    page.locator("#generate-to-edit").click()
    page.wait_for_selector(".fs-edit[data-state=ready], .fs-edit[data-state=error]", state="attached",
                           timeout=TIMEOUT_MS)
    root = page.locator(".fs-edit")
    assert root.get_attribute("data-state") == "ready", root.locator("[data-role=error]").text_content()
    size = page.evaluate("[document.querySelector('.fs-edit canvas').width,"
                         " document.querySelector('.fs-edit canvas').height]")
    assert size == [96, 80]
    page.close()


def test_edit_changes_face_2_only(edit_server, edit_settings, browser, tmp_path: Path) -> None:
    """Issue 15's acceptance: three faces found in the page; face 2 picked by clicking it, one of its regions
    ticked, its own prompt; one request; every pixel of faces 1 and 3 (and outside face 2's mask) unchanged."""
    from tests.editing.test_edit_faces import group_photo
    from webapp.editing.fields import DEFAULT_FEATHER, DEFAULT_GROW, INPAINT
    from webapp.editing.masks import grow

    photo = tmp_path / "group.png"
    group_photo().save(photo)
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    requests: list = []
    page.on("request", lambda r: requests.append(r))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(edit_server.url)
    page.get_by_role("tab", name="Edit").click()
    root = page.locator(".fs-edit")
    root.locator("input[data-role=file]").set_input_files(str(photo))
    page.wait_for_selector(".fs-edit[data-state=ready], .fs-edit[data-state=error]", state="attached",
                           timeout=TIMEOUT_MS)
    assert root.get_attribute("data-state") == "ready", root.locator("[data-role=error]").text_content()
    assert root.get_attribute("data-faces") == "3"
    # Click face 2 on the picture (the brush is off): it is chosen and its regions are listed.
    box = page.evaluate("document.querySelector('.fs-edit').view.faces[1].box")
    canvas = root.locator("canvas").bounding_box()
    scale = canvas["width"] / 480
    page.mouse.click(canvas["x"] + (box[0] + box[2]) / 2 * scale, canvas["y"] + (box[1] + box[3]) / 2 * scale)
    assert root.get_attribute("data-chosen") == "2"
    assert root.locator("[data-role=regions-title]").text_content() == "Regions of face 2"
    region = root.locator("[data-role=regions] input[type=checkbox]").first
    region.check()
    chosen = region.get_attribute("data-class")
    assert root.locator("[data-role=send]").is_disabled(), "no prompt yet: nothing to send"
    root.locator("textarea[data-role=face-prompt][data-face='2']").fill("short red curly hair")
    root.locator("[data-role=steps]").fill("2")
    root.locator("[data-role=seed]").fill("8")
    root.locator("[data-role=send]").click()
    assert "its face map" in root.locator("[data-role=confirm-text]").text_content()
    root.locator("[data-role=confirm-yes]").click()
    page.wait_for_selector(".fs-edit[data-state=done], .fs-edit[data-state=error]", state="attached",
                           timeout=TIMEOUT_MS)
    assert root.get_attribute("data-state") == "done", root.locator("[data-role=error]").text_content()
    assert "face 2" in root.locator("[data-role=result-info]").text_content()

    posts = [r for r in requests if r.method == "POST"]
    assert len([r for r in posts if r.url.endswith("/gradio_api/upload")]) == 1
    [join] = [r for r in posts if r.url.split("?")[0].endswith("/queue/join")]
    sent = dict(zip(INPAINT, json.loads(join.post_data_buffer)["data"], strict=True))
    assert json.loads(sent["faces"]) == [{"face": 2, "prompt": "short red curly hair", "mask_regions": chosen}]
    mask = np.asarray(Image.open(sent["mask"]["path"]))
    owner = np.asarray(Image.open(sent["face_map"]["path"]))
    assert set(np.unique(mask)) == {0, 2} and owner.max() == 3
    assert ((mask == 2) <= (owner == 2)).all(), "face 2's regions reach beyond face 2"
    saved = sorted(Path(edit_settings.output_dir).glob("*-inpaint-8.png"))
    before = np.asarray(Image.open(photo).convert("RGB"))
    after = np.asarray(Image.open(saved[-1]).convert("RGB"))
    changed = (before != after).any(axis=-1)
    assert changed[mask == 2].mean() > 0.9
    assert not changed[(owner == 1) | (owner == 3)].any(), "face 1 or 3 changed"
    assert not changed[~grow(mask == 2, DEFAULT_GROW + 4 * DEFAULT_FEATHER)].any(), "a pixel far from face 2 changed"
    assert errors == []
    page.close()
