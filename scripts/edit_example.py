"""Make docs/img/edit-example.png: the README's edit example, with tiny local models (labelled so).

A synthetic face (``face-studio synth``'s renderer) and its exact hair label as the mask go through
``face-studio edit`` with a tiny random-weight SD3 pipeline built locally (tests/generation/tiny_sd3.py),
so the regenerated hair is noise: the figure shows the mechanism — only the masked pixels change — not quality.

    .venv/bin/python scripts/edit_example.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from face_studio.labels import LABEL2ID
    from face_studio.preprocess import colorize
    from face_studio.training.synth import render_face
    from tests.generation.tiny_sd3 import build_tiny_sd3
    from webapp.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        face, labels = render_face(seed=7, size=320)
        face.save(tmp / "face.png")
        Image.fromarray((labels == LABEL2ID["hair"]).astype(np.uint8) * 255).save(tmp / "hair.png")
        sd3 = build_tiny_sd3(tmp / "tiny-sd3")
        rc = cli(["edit", str(tmp / "face.png"), "--mask", str(tmp / "hair.png"), "--prompt", "short red curly hair",
                  "--out", str(tmp / "edited.png"), "--sd-model", str(sd3), "--device", "cpu", "--steps", "8",
                  "--seed", "1", "--grow", "2", "--feather", "6", "--save-mask", str(tmp / "alpha.png")])
        assert rc == 0
        edited = Image.open(tmp / "edited.png").convert("RGB")
        alpha = np.asarray(Image.open(tmp / "alpha.png"))[..., None] / 255.0
        base = np.asarray(face, dtype=np.float32)
        tint = colorize(labels).astype(np.float32)
        parse = Image.fromarray((base * 0.45 + tint * 0.55).astype(np.uint8))
        mask_view = Image.fromarray((base * (1 - alpha * 0.7) + np.array([255, 40, 120]) * alpha * 0.7)
                                    .astype(np.uint8))
        unchanged = float((np.asarray(edited) == np.asarray(face)).all(axis=-1)[alpha[..., 0] == 0].mean())

    panels = [(face, "1. input (synthetic face)"), (parse, "2. its label map"),
              (mask_view, "3. hair, grown 2 px, feathered 6 px"), (edited, "4. regenerated (tiny random SD3)")]
    w, h = face.size
    sheet = Image.new("RGB", (4 * w + 5 * 8, h + 8 + 26), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, title) in enumerate(panels):
        x = 8 + i * (w + 8)
        sheet.paste(img, (x, 8))
        draw.text((x + 4, h + 14), title, fill="black")
    out = ROOT / "docs" / "img" / "edit-example.png"
    sheet.save(out, optimize=True)
    print(f"wrote {out}; pixels outside the feathered mask identical to the input: {unchanged:.2%}")


if __name__ == "__main__":
    main()
