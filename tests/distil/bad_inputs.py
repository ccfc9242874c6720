"""Bad inputs to ``face-studio distil`` and ``face-studio evaluate --teacher``: one clear line, exit 2, and no
output folder left behind. ``{teacher}``, ``{photos}``, ``{out}``… in ``args`` are filled in by the test
(tests/distil/test_bad_inputs.py) with folders it builds; ``{run}`` is a copy of a finished two-epoch run, which a
refused ``--resume`` must leave exactly as it was."""

from __future__ import annotations

from tests.bad_input import BadInput

DISTIL = "face-studio distil"
EVALUATE = "face-studio evaluate"


def distil(*extra: str, teacher: str = "{teacher}", images: str = "{photos}", out: str = "{out}",
           student: str = "tiny", size: str = "64") -> tuple[str, ...]:
    return ("distil", "--teacher", teacher, "--images", images, "--student", student, "--size", size, "--out",
            out, "--epochs", "2", "--batch", "4", "--quiet", *extra)


def resume(**changed: str) -> tuple[str, ...]:
    """``--resume`` of the finished run in ``{run}`` with one option changed."""
    return distil("--resume", out="{run}", **changed)


def evaluate_teacher(*extra: str) -> tuple[str, ...]:
    return ("evaluate", "--model", "{teacher}", "--teacher", "{teacher}", "--data", "{photos}", "--quiet", *extra)


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
    BadInput(DISTIL, "--size 4096 (was killed for memory)", "--size must be a multiple of 32 from 32 to 2048",
             distil(size="4096")),
    BadInput(DISTIL, "--size 100000", "--size must be a multiple of 32 from 32 to 2048", distil(size="100000")),
    BadInput(DISTIL, "--seed -1", "--seed must be 0…", distil("--seed", "-1")),
    BadInput(DISTIL, "--teacher /nonexistent (a path, not a hub id)", "no such folder",
             distil(teacher="/nonexistent-teacher")),
    BadInput(DISTIL, "--out /proc/x (can't be created)", "can't write there", distil(out="/proc/face-studio-x")),
    BadInput(DISTIL, "--teacher-size 500", "--teacher-size must be a multiple of 32", distil("--teacher-size", "500")),
    BadInput(DISTIL, "--alpha 1.5", "--alpha must be between 0", distil("--alpha", "1.5")),
    BadInput(DISTIL, "--temperature 0", "--temperature must be a positive number", distil("--temperature", "0")),
    BadInput(DISTIL, "--init: a tiny model for --student mit-b0", "pick the matching --student",
             distil("--init", "{teacher}", "--student", "mit-b0")),
    BadInput(DISTIL, "--lr 1e30 (training diverges)", "training diverged. Lower --lr", distil("--lr", "1e30")),
    BadInput(DISTIL, "--resume with no earlier run", "no checkpoint to continue", distil("--resume")),
    BadInput(DISTIL, "--resume with another --student", "--student mit-b0 (was tiny)", resume(student="mit-b0")),
    BadInput(DISTIL, "--resume with another --size", "--size 96 (was 64)", resume(size="96")),
    BadInput(DISTIL, "--resume with another --images folder", "--images holds other photos than the run started "
             "with", resume(images="{other_photos}")),
    BadInput(EVALUATE, "--teacher: a 5-class SegFormer", "not the 19 face labels",
             ("evaluate", "--model", "{teacher}", "--teacher", "{five_classes}", "--data", "{photos}", "--quiet")),
    BadInput(EVALUATE, "--teacher with --data: an empty folder", "no images in the folder",
             ("evaluate", "--model", "{teacher}", "--teacher", "{teacher}", "--data", "{empty}", "--quiet")),
    BadInput(EVALUATE, "--teacher with --limit -1", "--limit must be at least 1", evaluate_teacher("--limit", "-1")),
    BadInput(EVALUATE, "--teacher with --limit 0", "--limit must be at least 1", evaluate_teacher("--limit", "0")),
    BadInput(EVALUATE, "--teacher with --batch 0", "--batch must be at least 1", evaluate_teacher("--batch", "0")),
    BadInput(EVALUATE, "--teacher with --size 33", "--size must be a multiple of 32",
             evaluate_teacher("--size", "33")),
    BadInput(EVALUATE, "--teacher with --teacher-size 100", "--teacher-size must be a multiple of 32",
             evaluate_teacher("--teacher-size", "100")),
]
