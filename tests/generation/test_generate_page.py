"""The Generate view in Debian Chromium: generate from the page, then drop the PNG back to load its fields."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

TIMEOUT_MS = 120_000  # model load + a few steps on 2 busy cores


@pytest.fixture(scope="module")
def page(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server.url)
    page.get_by_role("tab", name="Generate").click()
    yield page
    page.close()
    assert not errors, errors


def fill(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")


def test_generate_from_the_page_then_load_the_png_back(page, tmp_path):
    fill(page, "Prompt", "a child laughing in the sun")
    fill(page, "Negative prompt", "blurry")
    fill(page, "Steps (1–150)", "3")
    fill(page, "Width", "80")
    fill(page, "Height", "64")
    fill(page, "Seed (-1 = random)", "4242")
    page.locator("#generate-run").click()
    image = page.locator("#generate-images img").first
    image.wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_label("Seed used").input_value() == "4242"
    assert "Size: 80x64" in page.get_by_label("Parameters").input_value()
    page.locator("#generate-session img").first.wait_for(timeout=TIMEOUT_MS)  # kept in the session gallery

    # Download what the page shows and drop it on the PNG field after clearing the fields.
    png = tmp_path / "made.png"
    png.write_bytes(page.request.get(image.get_attribute("src")).body())
    fill(page, "Prompt", "something else")
    fill(page, "Negative prompt", "")
    fill(page, "Steps (1–150)", "28")
    fill(page, "Width", "1024")
    fill(page, "Seed (-1 = random)", "-1")
    page.get_by_text("Load parameters from a PNG").click()
    page.locator("#generate-png input[type=file]").set_input_files(str(png))
    prompt = page.get_by_label("Prompt", exact=True)
    page.wait_for_function("el => el.value === 'a child laughing in the sun'", arg=prompt.element_handle(),
                           timeout=TIMEOUT_MS)
    assert page.get_by_label("Negative prompt").input_value() == "blurry"
    assert page.get_by_label("Steps (1–150)").input_value() == "3"
    assert page.get_by_label("Width").input_value() == "80"
    assert page.get_by_label("Height").input_value() == "64"
    assert page.get_by_label("Seed (-1 = random)").input_value() == "4242"


def test_picking_a_preset_sets_its_steps_and_guidance(page):
    page.get_by_label("Model preset").click()
    page.get_by_role("option", name="Large Turbo").click()
    steps = page.get_by_label("Steps (1–150)")
    page.wait_for_function("el => el.value === '4'", arg=steps.element_handle(), timeout=TIMEOUT_MS)
    assert page.get_by_label("Guidance (CFG)").input_value() == "0"
