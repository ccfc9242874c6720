"""Live camera mode in real Chromium with a fake camera (the astronaut as a Y4M clip): frames are parsed by the
live parser in the page, the readout shows the rate, nothing is sent, Stop ends the stream and the loop, and
Snapshot hands the frame to the main parser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import PARSE_TIMEOUT_MS, ParsePage
from tests.browser.fake_camera import FRAME_NUMBER_JS, astronaut_y4m, camera_args, moving_face_y4m
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, build_tiny_parser, train_tiny_parser

pytestmark = pytest.mark.browser

LIVE_SIZE = 128  # the live parser's input size: distinct from the main parser's 512, so the test can tell them apart
READOUT = re.compile(r"^(\d+\.\d) FPS · (\d+) ms a frame")


@pytest.fixture(scope="module")
def camera_browser(browser, tmp_path_factory):
    """A second Chromium from the session's Playwright (a second sync_playwright would fail), with the fake
    camera playing the astronaut."""
    y4m = astronaut_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m")
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera_args(y4m))
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def live_export_dir(tmp_path_factory) -> Path:
    """A second tiny parser, exported at 128 px with labels graphs (--labels-out): the live parser."""
    from webapp.cli import main

    work = tmp_path_factory.mktemp("live-parser")
    model = build_tiny_parser(work / "model", seed=7)
    pre = json.loads((model / "preprocessor_config.json").read_text())
    pre["size"] = {"height": LIVE_SIZE, "width": LIVE_SIZE}
    (model / "preprocessor_config.json").write_text(json.dumps(pre))
    assert main(["export", "--model", str(model), "--out", str(work / "export"), "--dtypes", "fp32,q8",
                 "--labels-out", "--quiet"]) == 0
    return work / "export"


@pytest.fixture(scope="module")
def live_server(tiny_export_dir, live_export_dir):
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    with run_in_thread(ServeSettings(port=0, parser_dir=tiny_export_dir, live_parser_dir=live_export_dir)) as handle:
        yield handle


def open_page(camera_browser, server) -> ParsePage:
    page = ParsePage(camera_browser, server)
    page.context.grant_permissions(["camera"], origin=server.url.rstrip("/"))
    return page.open()


def live_attr(page: ParsePage, name: str) -> str | None:
    return page.page.locator("[data-role=live-box]").get_attribute(name)


def start_live(page: ParsePage, frames: int = 3) -> None:
    page.page.click("[data-role=camera]")
    page.page.wait_for_selector("[data-role=live-box][data-live-state=running]", state="attached",
                                timeout=PARSE_TIMEOUT_MS)
    page.page.wait_for_function(f"Number(document.querySelector('[data-role=live-box]').dataset.frames) >= {frames}",
                                timeout=PARSE_TIMEOUT_MS)


def test_live_mode_parses_the_camera_with_the_live_parser_and_sends_nothing(camera_browser, live_server) -> None:
    page = open_page(camera_browser, live_server)
    try:
        config = json.loads(page.root.get_attribute("data-config"))
        assert config["live"]["modelId"].startswith("live-") and config["live"]["inputSize"] == LIVE_SIZE
        page.requests.clear()
        start_live(page)

        # The worker that parses the frames reports the live model and its 128-px input, not the main one.
        assert live_attr(page, "data-model-id") == config["live"]["modelId"] != config["modelId"]
        assert live_attr(page, "data-input-size") == str(LIVE_SIZE)
        assert page.page.locator("[data-role=live-note]").is_hidden()  # no "slow" warning with a live parser
        page.page.wait_for_function("/FPS/.test(document.querySelector('[data-role=live-readout]').textContent)")
        readout = page.text("live-readout")
        match = READOUT.match(readout)
        assert match and float(match[1]) > 0 and int(match[2]) > 0, readout
        assert "live parser, 128 px, WASM" in readout

        # The overlay is drawn on the video: the live canvas shows the astronaut tinted by the label colours.
        shown = page.page.evaluate("""() => {
            const c = document.querySelector('[data-role=live-canvas]');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let sum = 0; for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
            return {w: c.width, h: c.height, mean: sum / (d.length / 4 * 3)};
        }""")
        assert (shown["w"], shown["h"]) == (640, 480) and shown["mean"] > 20

        # Recolour works live too: choosing a group changes what is drawn (the astronaut clip is a still, so
        # the overlay alone would look the same frame after frame), with no server either.
        grab = "document.querySelector('[data-role=live-canvas]').toDataURL('image/png')"
        overlay_frame = page.page.evaluate(grab)
        assert page.page.evaluate(grab) == overlay_frame
        page.page.click("[data-role=recolour-groups] [data-group=skin]")
        page.page.wait_for_timeout(300)
        assert page.page.evaluate(grab) != overlay_frame

        # Stop: the camera's track ends and the worker gets no more frames.
        page.page.evaluate("""() => {
            const live = document.querySelector('.fs-parse').view.live;
            window.__tracks = live.stream.getVideoTracks();
            window.__calls = 0;
            const parse = live.parser.parse.bind(live.parser);
            live.parser.parse = (...args) => { window.__calls++; return parse(...args); };
        }""")
        page.page.wait_for_function("window.__calls >= 1", timeout=PARSE_TIMEOUT_MS)  # the spy sees the loop
        page.page.click("[data-role=live-stop]")
        assert live_attr(page, "data-live-state") == "stopped"
        assert page.page.evaluate("window.__tracks.map((t) => t.readyState)") == ["ended"]
        calls, frames = page.page.evaluate("window.__calls"), live_attr(page, "data-frames")
        page.page.wait_for_timeout(1500)
        assert page.page.evaluate("window.__calls") == calls, "the worker loop kept parsing after Stop"
        assert live_attr(page, "data-frames") == frames
        assert "Stopped" in page.text("live-readout")

        # Nothing with a body left the page during live mode (frames are pixels in the worker, never uploads).
        sent = [r.url for r in page.requests if r.post_data_buffer]
        assert sent == [], sent
        assert not page.errors
    finally:
        page.close()


def test_snapshot_parses_the_frame_with_the_main_parser(camera_browser, live_server) -> None:
    page = open_page(camera_browser, live_server)
    try:
        page.page.select_option("[data-role=backend]", "wasm")
        start_live(page, frames=1)
        page.page.evaluate("document.querySelector('.fs-parse').dataset.state = 'waiting'")
        page.page.click("[data-role=live-snapshot]")
        page.page.wait_for_selector(".fs-parse[data-state=done], .fs-parse[data-state=error]", state="attached",
                                    timeout=PARSE_TIMEOUT_MS)
        assert page.root.get_attribute("data-state") == "done", page.text("error")
        assert live_attr(page, "data-live-state") == "stopped"
        assert "Parsed in this browser · WASM" in page.text("status")
        # The main parser (512 px) ran on the full 640×480 frame.
        main_info = page.page.evaluate("document.querySelector('.fs-parse').view.parser.info")
        config = json.loads(page.root.get_attribute("data-config"))
        assert main_info["modelId"] == config["modelId"] and main_info["inputSize"] == 512
        labels = np.asarray(Image.open(page.download("labels")))
        assert labels.shape == (480, 640)
    finally:
        page.close()


def test_without_a_live_parser_live_mode_runs_the_main_one_and_says_it_is_slow(camera_browser, server) -> None:
    page = open_page(camera_browser, server)
    try:
        config = json.loads(page.root.get_attribute("data-config"))
        assert config["live"] is None
        start_live(page, frames=1)
        note = page.text("live-note")
        assert page.page.locator("[data-role=live-note]").is_visible()
        assert "No live parser" in note and "too big for video" in note
        assert "face-studio distil" in note and "--live-parser" in note
        assert live_attr(page, "data-model-id") == config["modelId"]
        assert live_attr(page, "data-input-size") == "512"
        page.page.click("[data-role=live-stop]")
    finally:
        page.close()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_serve_refuses_a_live_parser_that_is_not_an_export(tmp_path: Path, capsys, kind) -> None:
    from webapp.cli import main

    folder = tmp_path / "live"
    if kind == "empty":
        folder.mkdir()
    assert main(["serve", "--port", "0", "--live-parser", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--live-parser {folder}" in err
    assert f"face-studio export --model STUDENT_DIR --out {folder}" in err


# The twin test of in-graph post-processing: the same frame through two workers of the page, one running the
# labels graph (upsample + argmax in ONNX Runtime Web, uint8 out), one the logits graph + segment.js's
# logitsToLabels. Float32 (ORT) and float64 (JS) interpolation may order a near-tie differently: a pixel may
# differ only where the two best classes are that close, so the test allows at most 1 in 10,000 pixels.
TWIN = """async ({config, dtype, device, rgbaB64, width, height}) => {
    const { BrowserParser } = await import(config.workerUrl.replace('worker.js', 'browser-parser.js'));
    const rgba = Uint8Array.from(atob(rgbaB64), (c) => c.charCodeAt(0));
    const out = {};
    for (const graph of ['labels', 'logits']) {
        const parser = new BrowserParser({ ...config, labelsGraph: graph === 'labels' ? [dtype] : [] });
        await parser.load({ device, dtype, numThreads: 1 });
        const result = await parser.parse(rgba, width, height);
        parser.dispose();
        out[graph] = { labels: Array.from(result.labels), timings: result.timings,
                       boundary: result.boundaryPixels };
    }
    return out;
}"""


def run_twin(page: ParsePage, config: dict, dtype: str, device: str) -> dict:
    import base64

    from skimage import data

    image = Image.fromarray(data.astronaut()).resize((640, 480), Image.BILINEAR).convert("RGBA")
    rgba = base64.b64encode(np.asarray(image).tobytes()).decode()
    return page.page.evaluate(TWIN, {"config": config, "dtype": dtype, "device": device, "rgbaB64": rgba,
                                     "width": 640, "height": 480})


def assert_twins(out: dict) -> None:
    labels, logits = np.array(out["labels"]["labels"]), np.array(out["logits"]["labels"])
    assert labels.shape == logits.shape == (480 * 640,)
    assert out["labels"]["boundary"] is None and out["logits"]["boundary"] > 0  # each path really ran
    assert len(np.unique(logits)) > 1  # a map with borders, so the upsample is exercised
    differ = int((labels != logits).sum())
    assert differ <= labels.size // 10_000, f"{differ} of {labels.size} pixels differ"


@pytest.mark.parametrize("dtype", ["fp32", "q8"])
def test_labels_graph_equals_the_js_post_processing_in_wasm(camera_browser, live_server, dtype) -> None:
    page = open_page(camera_browser, live_server)
    try:
        live = json.loads(page.root.get_attribute("data-config"))
        config = {**live, **live["live"]}
        assert set(config["labelsGraph"]) == {"fp32", "q8"}
        assert_twins(run_twin(page, config, dtype, "wasm"))
        assert not page.errors
    finally:
        page.close()


@pytest.mark.slow
def test_labels_graph_equals_the_js_post_processing_in_webgpu(browser, live_server) -> None:
    """One frame each way on WebGPU (SwiftShader here: ~25 s a frame for a tiny model)."""
    chromium = browser.browser_type.launch(executable_path=CHROMIUM,
                                           args=[a for a in CHROMIUM_ARGS if a != "--disable-gpu"]
                                           + ["--enable-unsafe-webgpu"])
    try:
        page = ParsePage(chromium, live_server).open()
        if not page.page.evaluate("async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter())"):
            pytest.skip("this Chromium has no WebGPU adapter")
        live = json.loads(page.root.get_attribute("data-config"))
        page.page.set_default_timeout(PARSE_TIMEOUT_MS)
        assert_twins(run_twin(page, {**live, **live["live"]}, "fp32", "webgpu"))
        page.close()
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def noisy_camera_browser(browser, tmp_path_factory):
    """Chromium whose fake camera plays a still scene with sensor noise (σ 3 grey levels, a new draw a frame)."""
    y4m = astronaut_y4m(tmp_path_factory.mktemp("camera") / "noisy.y4m", frames=30, noise=3.0)
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera_args(y4m))
    yield chromium
    chromium.close()


def flicker_run(page: ParsePage, hysteresis: float, frames: int = 8) -> float:
    """Live mode on the still clip with this flicker filter; the share of pixels whose label changed between
    consecutive frames (live.js's metric)."""
    page.page.evaluate(f"document.querySelector('.fs-parse').view.live.options.hysteresis = {hysteresis}")
    start_live(page, frames=frames)
    flicker = page.page.evaluate("document.querySelector('.fs-parse').view.live.flicker()")
    assert float(live_attr(page, "data-flicker")) == pytest.approx(flicker, abs=1e-4)
    totals = page.page.evaluate("document.querySelector('.fs-parse').view.live.totals")
    assert totals["compared"] >= (frames - 1) * 640 * 480 * 0.5  # consecutive frames were compared
    page.page.click("[data-role=live-stop]")
    return flicker


def test_flicker_on_a_still_clip_and_the_hysteresis_filter(noisy_camera_browser, live_server) -> None:
    """Flicker measured on a still, noisy clip: without the filter the tiny random parser (near-ties everywhere)
    flips labels from frame to frame; with live mode's default (a margin relative to the model's own logit gaps,
    so it works on this model's close logits too) far fewer."""
    page = open_page(noisy_camera_browser, live_server)
    try:
        page.page.select_option("[data-role=backend]", "wasm")
        default = page.page.evaluate("document.querySelector('.fs-parse').view.live.options.hysteresis")
        before = flicker_run(page, 0)
        after = flicker_run(page, default)
        assert 0 < before <= 1
        assert after <= before / 2, (before, after)
        assert not page.errors
    finally:
        page.close()


# Face crops live (issue 15): a synthetic face moves across a backdrop; every frame the worker parsed is
# identified by the clip's marker (fake_camera.moving_face_y4m), so each label map shown can be held against
# the true face square of that very frame.
SPY_FRAMES = """() => {
    const live = document.querySelector('.fs-parse').view.live;
    window.__seen = [];
    const parse = live.parser.parse.bind(live.parser);
    live.parser.parse = async (rgba, width, height, options) => {
        const out = await parse(rgba, width, height, options);
        out.frame = FRAME_NUMBER;
        return out;
    };
    const describe = live.describe.bind(live);
    live.describe = (result) => { // what the box says about the label map now drawn
        describe(result);
        const d = live.box.dataset;
        window.__seen.push({ frame: result.frame, detected: Boolean(result.timings.detect), faces: Number(d.faces),
            boxes: JSON.parse(d.faceBoxes), crops: JSON.parse(d.faceCrops),
            labelsBox: d.labelsBox ? JSON.parse(d.labelsBox) : null,
            centre: d.labelsCentre ? JSON.parse(d.labelsCentre) : null });
    };
}""".replace("FRAME_NUMBER", FRAME_NUMBER_JS)


@pytest.fixture(scope="module")
def trained_live_server(tiny_export_dir, tmp_path_factory):
    """A live parser trained briefly on synthetic faces (a random one labels a face crop all background), at 64 px
    with labels graphs, served next to the tiny main parser."""
    from webapp.cli import main
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    work = tmp_path_factory.mktemp("trained-live")
    export = work / "export"
    assert main(["export", "--model", str(train_tiny_parser(work)), "--out", str(export), "--dtypes", "fp32,q8",
                 "--labels-out", "--quiet"]) == 0
    with run_in_thread(ServeSettings(port=0, parser_dir=tiny_export_dir, live_parser_dir=export)) as handle:
        yield handle


@pytest.fixture(scope="module")
def moving_face_camera(browser, tmp_path_factory):
    """Chromium whose fake camera plays a synthetic face moving left to right (30 frames), and its true squares."""
    y4m, squares = moving_face_y4m(tmp_path_factory.mktemp("camera") / "moving-face.y4m")
    chromium = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera_args(y4m))
    yield chromium, squares
    chromium.close()


def test_face_crop_live_mode_keeps_the_overlay_on_a_moving_face(moving_face_camera, trained_live_server) -> None:
    chromium, squares = moving_face_camera
    page = open_page(chromium, trained_live_server)
    try:
        page.page.select_option("[data-role=backend]", "wasm")
        start_live(page, frames=1)
        assert page.page.is_checked("[data-role=live-faces]")  # on by default: the detector loaded
        page.page.evaluate(SPY_FRAMES)
        page.page.wait_for_function("window.__seen.length >= 21", timeout=PARSE_TIMEOUT_MS)
        seen = page.page.evaluate("window.__seen")[1:]  # the first was in flight before the spy: no frame number
        assert all(0 <= s["frame"] < len(squares) for s in seen), seen
        side = squares[0][2] - squares[0][0]
        faced = [s for s in seen if s["faces"]]
        assert len(faced) >= 0.8 * len(seen), seen  # the face is found (at the edge of the frame it may not be)
        # A frame between detector runs parses the crop of an older frame (the face moves 10 px a clip frame,
        # 300 px/s; the worker re-detects once the picture moved), so the overlay may trail it a little there.
        slack = 0.25 * side
        for s in faced:
            x0, y0, x1, y1 = square = squares[s["frame"]]
            assert s["faces"] == 1 and s["labelsBox"], s
            # The overlay is on the face: every labelled pixel inside the face's crop, within the face's true
            # square (give or take the crop's overhang and a reused crop's trail), centred on it.
            cx0, cy0, cx1, cy1 = s["crops"][0]
            lx0, ly0, lx1, ly1 = s["labelsBox"]
            assert cx0 <= lx0 and cy0 <= ly0 and lx1 <= cx1 and ly1 <= cy1, s
            assert x0 - slack <= lx0 and y0 - slack <= ly0 and lx1 <= x1 + slack and ly1 <= y1 + slack, (s, square)
            assert abs(s["centre"][0] - (x0 + x1) / 2) < slack and abs(s["centre"][1] - (y0 + y1) / 2) < slack, \
                (s, square)
            if s["detected"]:  # detected on this very frame: the face's box is inside its true square
                bx0, by0, bx1, by1 = s["boxes"][0]
                assert x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1, (s, square)
        assert any(s["detected"] for s in faced)
        assert re.search(r" · 1 face$", page.text("live-readout")), page.text("live-readout")
        # The frames parsed span the face's path (so the overlay was seen to move with it).
        centres = [s["centre"][0] for s in faced]
        assert max(centres) - min(centres) > 100, centres

        # Between detector runs a frame reuses the last crops. The worker re-detects when the picture moved since
        # its last run (detectMotion): with an endless cropMaxAgeMs the moving face is still found again...
        live = "document.querySelector('.fs-parse').view.live"
        page.page.evaluate(f"{live}.options.cropMaxAgeMs = 1e9")
        count = page.page.evaluate("window.__seen.length")
        page.page.wait_for_function(f"window.__seen.length >= {count + 1}", timeout=PARSE_TIMEOUT_MS)
        detect, count = page.page.evaluate(f"[{live}.totals.detect, window.__seen.length]")
        page.page.wait_for_function(f"window.__seen.length >= {count + 4}", timeout=PARSE_TIMEOUT_MS)
        assert page.page.evaluate(f"{live}.totals.detect") > detect
        assert any(s["detected"] for s in page.page.evaluate("window.__seen")[count:])
        # ...and with the motion rule off too (age alone), the detector stops running and the crop stays put
        # while the face moves on.
        page.page.evaluate(f"{live}.options.detectMotion = 0")
        count = page.page.evaluate("window.__seen.length")
        page.page.wait_for_function(f"window.__seen.length >= {count + 1}", timeout=PARSE_TIMEOUT_MS)
        detect, count = page.page.evaluate(f"[{live}.totals.detect, window.__seen.length]")
        page.page.wait_for_function(f"window.__seen.length >= {count + 3}", timeout=PARSE_TIMEOUT_MS)
        reused = page.page.evaluate("window.__seen")[count - 1:]
        assert page.page.evaluate(f"{live}.totals.detect") == detect
        assert len({json.dumps(s["crops"]) for s in reused}) == 1 and len({s["frame"] for s in reused}) > 1, reused
        page.page.evaluate(f"{live}.options.cropMaxAgeMs = 0")

        # Face crop off: the whole frame again, and the readout says so at its end (its start unchanged).
        page.page.uncheck("[data-role=live-faces]")
        page.page.wait_for_function("/face crop off: whole frame$/.test("
                                    "document.querySelector('[data-role=live-readout]').textContent)",
                                    timeout=PARSE_TIMEOUT_MS)
        assert live_attr(page, "data-faces") == "0"
        assert READOUT.match(page.text("live-readout"))
        page.page.click("[data-role=live-stop]")
        assert not page.errors
    finally:
        page.close()
