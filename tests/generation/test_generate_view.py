"""The Generate tab's layout, read from the Blocks config (no browser, no model load): the result galleries
invite no uploads, "Seed used" is empty (not 0) before a run, and the status line renders the backend's data."""

from __future__ import annotations

from webapp.settings import ServeSettings


def _components(settings: ServeSettings) -> dict[str, dict]:
    from webapp.app import build_app

    demo = build_app(settings)
    return {c["props"].get("elem_id"): c for c in demo.config["components"] if c["props"].get("elem_id")}


def test_results_invite_no_upload_and_seed_used_is_empty_before_a_run(tiny_sd3_dir, tmp_path):
    settings = ServeSettings(sd_model=str(tiny_sd3_dir), device="cpu", parser_dir=tmp_path / "no-parser",
                             output_dir=tmp_path / "out", port=0)
    found = _components(settings)
    for gallery in ("generate-images", "generate-session"):
        assert found[gallery]["props"]["interactive"] is False, gallery  # no "Drop Media Here"
    seed_used = found["generate-seed-used"]["props"]
    assert seed_used.get("value") is None and seed_used["placeholder"]  # shown empty, not "0"
    assert "(loads on first use)" in found["generate-status"]["props"]["value"]
