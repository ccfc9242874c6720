"""The Parse view in real Chromium: browser parsing, its privacy, the server fallback, bad inputs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from face_studio.labels import LABELS
from face_studio.preprocess import colorize, overlay
from tests.parsing.samples import says
from webapp.parsing import area_summary

pytestmark = pytest.mark.browser


def server_labels(server, path: Path, dtype: str = "q8", faces: str = "auto") -> np.ndarray:
    """The server `parse` API's label map; faces="auto" is also the page's default (each face on its own crop)."""
    from gradio_client import Client, handle_file

    label_path, _, _ = Client(server.url, verbose=False).predict(handle_file(path), dtype, faces, api_name="/parse")
    return np.asarray(Image.open(label_path))


def canvas_pixels(page) -> np.ndarray:
    data_url = page.page.evaluate("document.querySelector('[data-role=canvas]').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def test_browser_parse_matches_server_and_never_sends_the_image(parse_page, server, samples) -> None:
    page = parse_page.open()
    assert page.page.evaluate("crossOriginIsolated") is True
    image_bytes = samples["wide"].read_bytes()

    assert page.upload(samples["wide"]) == "done", page.text("error")
    assert page.root.get_attribute("data-backend") == "wasm"
    threads = page.page.evaluate("navigator.hardwareConcurrency")
    assert f"Parsed in this browser · WASM q8 · {threads} thread" in page.text("status")
    assert "never left this page" in page.text("status")
    for stage in ("load", "preprocess", "model", "postprocess"):
        assert stage in page.text("timings")

    # No request carries the image, none goes to another host, the API is never called.
    origin = urlsplit(server.url).netloc
    for request in page.requests:
        parts = urlsplit(request.url)
        assert parts.scheme in ("blob", "data") or parts.netloc == origin, request.url
        assert "/gradio_api/upload" not in parts.path and "/gradio_api/call" not in parts.path, request.url
        body = request.post_data_buffer or b""
        assert image_bytes[1000:1064] not in body, request.url

    # Label map: pixel = class id, close to the server's `parse` on the same q8 file. Not identical: ORT-web's
    # WASM kernels for dynamically quantized layers round differently from native ORT's, and a random-weight
    # model has class boundaries nearly everywhere, so ~0.7 % of pixels flip (fp32 is exact: next test).
    labels = np.asarray(Image.open(page.download("labels")))
    assert labels.shape == (480, 640)
    agreement = (labels == server_labels(server, samples["wide"])).mean()
    assert agreement >= 0.98, f"browser and server agree on {agreement:.2%} of pixels"

    # The overlay on screen is the shared-palette blend of that label map.
    image = Image.open(samples["wide"]).convert("RGB")
    shown = canvas_pixels(page).astype(int)
    expected = np.asarray(overlay(image, labels, 0.5)).astype(int)
    assert np.abs(shown - expected).max() <= 1
    legend = page.page.locator("[data-role=legend] li").all_text_contents()
    assert any(LABELS[int(np.bincount(labels.ravel()).argmax())].title in item for item in legend)

    # Downloads: colour mask, JSON of % area.
    mask = np.asarray(Image.open(page.download("mask")).convert("RGB"))
    assert np.array_equal(mask, colorize(labels))
    areas = json.loads(page.download("json").read_text())
    assert areas["backend"] == "wasm" and areas["width"] == 640
    for name, value in area_summary(labels).items():
        assert abs(areas["area_percent"][name] - value) < 1e-3, name

    # Click a region to isolate it; the cut-out then holds exactly that class.
    page.page.click("[data-role=canvas]")
    isolated = page.text("isolated")
    chosen = next(label for label in LABELS if f"Isolated: {label.title} (" in isolated)
    assert (labels[238:243, 318:323] == chosen.id).any()
    cut = np.asarray(Image.open(page.download("cutout")).convert("RGBA"))
    assert np.array_equal(cut[..., 3] > 0, labels == chosen.id)
    assert np.array_equal(cut[labels == chosen.id][:, :3], np.asarray(image)[labels == chosen.id])
    assert not page.errors


def test_browser_fp32_label_map_equals_the_server(parse_page, server, samples) -> None:
    page = parse_page.open()
    page.page.select_option("[data-role=backend]", "wasm")
    page.page.select_option("[data-role=dtype]", "fp32")
    assert page.upload(samples["wide"]) == "done", page.text("error")
    assert "Parsed in this browser · WASM fp32" in page.text("status")
    labels = np.asarray(Image.open(page.download("labels")))
    agreement = (labels == server_labels(server, samples["wide"], "fp32")).mean()
    assert agreement >= 0.99, f"browser and server agree on {agreement:.2%} of pixels"  # measured: 100 %


def test_browser_failure_falls_back_to_the_server_and_says_so(parse_page, server, samples) -> None:
    page = parse_page
    page.page.route("**/onnx/*.onnx", lambda route: route.abort("failed"))  # the model can't be loaded
    page.open()
    assert page.upload(samples["wide"]) == "done", page.text("error")
    assert page.root.get_attribute("data-backend") == "server"
    status = page.text("status")
    assert "Parsed on the server" in status and "the browser could not run the model" in status
    labels = np.asarray(Image.open(page.download("labels")))
    assert np.array_equal(labels, server_labels(server, samples["wide"]))


def test_server_by_choice(parse_page, samples) -> None:
    page = parse_page.open()
    page.page.select_option("[data-role=backend]", "server")
    page.page.select_option("[data-role=dtype]", "fp32")
    assert page.upload(samples["wide"]) == "done", page.text("error")
    assert page.root.get_attribute("data-backend") == "server"
    assert "you chose the server" in page.text("status") and "fp32" in page.text("status")
    assert not any("/onnx/" in r.url for r in page.requests)  # the browser never loaded a model
    # Through the one API client: Gradio's queue (position and progress), not the plain /call/ route.
    assert any(r.url.endswith("/gradio_api/queue/join") for r in page.requests)
    assert not any("/gradio_api/call/" in r.url for r in page.requests)


def test_bad_inputs_get_clear_messages_and_the_page_keeps_working(parse_page, samples) -> None:
    page = parse_page.open()
    for kind in ("non-image", "corrupt", "bomb", "empty"):
        assert page.upload(samples[kind]) == "error", kind
        message = page.text("error")
        assert says(message, kind) and samples[kind].name in message, f"{kind}: {message}"
    # A cut JPEG too (browsers would draw it with a grey bottom; the server refuses it).
    data = samples["wide"].parent / "cut.jpg"
    jpeg = io.BytesIO()
    Image.open(samples["wide"]).convert("RGB").save(jpeg, format="JPEG", quality=90)
    data.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    assert page.upload(data) == "error"
    assert says(page.text("error"), "corrupt") and "cut.jpg" in page.text("error")
    assert page.upload(samples["wide"]) == "done", page.text("error")
    assert page.page.locator("[data-role=error]").is_hidden()
    assert not page.errors


def test_page_without_an_export_says_how_to_make_one(browser, tmp_path: Path) -> None:
    from tests.browser.conftest import ParsePage
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    missing = tmp_path / "no-export"
    with run_in_thread(ServeSettings(port=0, parser_dir=missing)) as handle:
        page = ParsePage(browser, handle).open()
        try:
            page.page.wait_for_selector("[data-role=error]:not([hidden])", timeout=30_000)
            assert f"face-studio export --out {missing}" in page.text("error")
            assert "Then restart face-studio serve" in page.page.locator("#parse-missing").text_content()
        finally:
            page.close()


def test_an_export_made_at_128_px_runs_at_128_in_the_browser(browser, samples, tmp_path: Path) -> None:
    """The export's preprocessor size reaches the worker: browser fp32 = server fp32 on a 128-px parser."""
    import json as _json

    from tests.browser.conftest import ParsePage
    from tests.conftest import build_tiny_parser
    from webapp.cli import main
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    model = build_tiny_parser(tmp_path / "m128", seed=4)
    pre = _json.loads((model / "preprocessor_config.json").read_text())
    pre["size"] = {"height": 128, "width": 128}
    (model / "preprocessor_config.json").write_text(_json.dumps(pre))
    export = tmp_path / "exp128"
    assert main(["export", "--model", str(model), "--out", str(export), "--dtypes", "fp32", "--quiet"]) == 0
    with run_in_thread(ServeSettings(port=0, parser_dir=export)) as handle:
        page = ParsePage(browser, handle).open()
        try:
            page.page.select_option("[data-role=backend]", "wasm")
            page.page.select_option("[data-role=dtype]", "fp32")
            assert page.upload(samples["wide"]) == "done", page.text("error")
            labels = np.asarray(Image.open(page.download("labels")))
            assert np.array_equal(labels, server_labels(handle, samples["wide"], "fp32"))
        finally:
            page.close()


def test_with_auth_the_page_logs_in_and_still_parses_in_the_browser(browser, tiny_export_dir, samples) -> None:
    """--auth guards our static files too; after Gradio's login the worker, wasm and model still load."""
    from tests.browser.conftest import ParsePage
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    with run_in_thread(ServeSettings(port=0, parser_dir=tiny_export_dir, auth=("ada", "lovelace"))) as handle:
        page = ParsePage(browser, handle)
        try:
            page.page.goto(handle.url)
            page.page.get_by_label("username").fill("ada")
            page.page.get_by_label("password").fill("lovelace")
            page.page.get_by_role("button", name="Login").click()
            page.page.wait_for_selector(".fs-parse[data-state]", state="attached", timeout=60_000)
            page.page.select_option("[data-role=backend]", "wasm")
            assert page.upload(samples["wide"]) == "done", page.text("error")
            assert "Parsed in this browser · WASM" in page.text("status")
        finally:
            page.close()
