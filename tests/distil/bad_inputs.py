"""Bad inputs to ``face-studio distil`` and ``face-studio evaluate --teacher``: one clear line, exit 2, and no
output folder left behind. ``{teacher}``, ``{photos}``, ``{out}``… in ``args`` are filled in by the test
(tests/distil/test_bad_inputs.py) with folders it builds."""

from __future__ import annotations

from tests.bad_input import BadInput

DISTIL = "face-studio distil"
EVALUATE = "face-studio evaluate"


def distil(*extra: str, teacher: str = "{teacher}", images: str = "{photos}") -> tuple[str, ...]:
    return ("distil", "--teacher", teacher, "--images", images, "--student", "tiny", "--size", "64", "--out",
            "{out}", "--epochs", "2", "--batch", "4", "--quiet", *extra)


BAD_INPUTS: list[BadInput] = [
    BadInput(DISTIL, "--images: an empty folder", "no images in the folder", distil(images="{empty}")),
    BadInput(DISTIL, "--images: a folder that does not exist", "no such folder", distil(images="{missing}")),
    BadInput(DISTIL, "--images: one file is not a picture", "is not an image we can read",
             distil(images="{broken_photos}")),
    BadInput(DISTIL, "--images: one photo only", "distillation needs at least 2", distil(images="{one_photo}")),
    BadInput(DISTIL, "--teacher: a BERT model", "not a SegFormer", distil(teacher="{bert}")),
    BadInput(DISTIL, "--teacher: a 5-class SegFormer", "not the 19 face labels", distil(teacher="{five_classes}")),
    BadInput(DISTIL, "--teacher: a folder without config.json", "has no config.json", distil(teacher="{empty}")),
    BadInput(DISTIL, "--size 100", "--size must be a multiple of 32", distil("--size", "100")),
    BadInput(DISTIL, "--teacher-size 500", "--teacher-size must be a multiple of 32", distil("--teacher-size", "500")),
    BadInput(DISTIL, "--alpha 1.5", "--alpha must be between 0", distil("--alpha", "1.5")),
    BadInput(DISTIL, "--temperature 0", "--temperature must be a positive number", distil("--temperature", "0")),
    BadInput(DISTIL, "--init: a tiny model for --student mit-b0", "pick the matching --student",
             distil("--init", "{teacher}", "--student", "mit-b0")),
    BadInput(DISTIL, "--lr 1e30 (training diverges)", "training diverged. Lower --lr", distil("--lr", "1e30")),
    BadInput(DISTIL, "--resume with no earlier run", "no checkpoint to continue", distil("--resume")),
    BadInput(EVALUATE, "--teacher: a 5-class SegFormer", "not the 19 face labels",
             ("evaluate", "--model", "{teacher}", "--teacher", "{five_classes}", "--data", "{photos}", "--quiet")),
    BadInput(EVALUATE, "--teacher with --data: an empty folder", "no images in the folder",
             ("evaluate", "--model", "{teacher}", "--teacher", "{teacher}", "--data", "{empty}", "--quiet")),
]
