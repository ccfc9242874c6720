"""Bad inputs of the ``inpaint`` and ``restyle`` APIs (the docs' table is generated from these).

Each case's ``kwargs`` replace values of a good call (``tests/editing/test_edit_api.py``: the astronaut, a
mask over the hair, prompt "red hair", 3 steps); a string value of a file field (``image``, ``mask``) names
one of that test's files: ``small`` (10×10 mask), ``empty`` (all black), ``text`` (not a picture).
"""

from __future__ import annotations

from pathlib import Path

from tests.bad_input import BadInput

INPAINT, RESTYLE = "API inpaint", "API restyle"
NAN = float("nan")

BAD_INPUTS: list[BadInput] = [
    BadInput(INPAINT, "grow = None", "grow must be a whole number between -128 and 128, got None",
             kwargs={"grow": None}, exit_code=None),
    BadInput(INPAINT, "feather = None", "feather must be a whole number between 0 and 64, got None",
             kwargs={"feather": None}, exit_code=None),
    BadInput(INPAINT, "seed = NaN", "seed must be a whole number between -1 and 4294967295, got nan",
             kwargs={"seed": NAN}, exit_code=None),
    BadInput(INPAINT, "steps = NaN", "steps must be a whole number between 1 and 150, got nan",
             kwargs={"steps": NAN}, exit_code=None),
    BadInput(INPAINT, "grow = NaN", "grow must be a whole number between -128 and 128, got nan",
             kwargs={"grow": NAN}, exit_code=None),
    BadInput(INPAINT, "feather = NaN", "feather must be a whole number between 0 and 64, got nan",
             kwargs={"feather": NAN}, exit_code=None),
    BadInput(INPAINT, "grow = 1000", "grow must be between -128 and 128, got 1000", kwargs={"grow": 1000},
             exit_code=None),
    BadInput(INPAINT, "guidance = 31", "guidance must be between 0 and 30, got 31", kwargs={"guidance": 31},
             exit_code=None),
    BadInput(INPAINT, "regions = '²'", "regions: unknown region name(s): '²'", kwargs={"regions": "²"},
             exit_code=None),
    BadInput(INPAINT, "regions = 'hair,beard'", "regions: unknown region name(s): 'beard'",
             kwargs={"regions": "hair,beard"}, exit_code=None),
    BadInput(INPAINT, "regions: 100,000 characters of names", "regions is 100,000 characters long, over the limit "
             "of 400", kwargs={"regions": "nose," * 20_000}, exit_code=None),
    BadInput(INPAINT, "image: a FileData naming a server file (etc/passwd), never uploaded",
             "Cannot move passwd to the gradio cache dir because it was not uploaded by a user",
             kwargs={"image": "filedata:etc/passwd"}, exit_code=None),
    BadInput(INPAINT, "strength = 0", "strength must be between 0.05 and 1, got 0", kwargs={"strength": 0},
             exit_code=None),
    BadInput(INPAINT, "a 10×10 mask for a 200×152 photo", "the mask is 10×10 but the image is 200×152",
             kwargs={"mask": "small"}, exit_code=None),
    BadInput(INPAINT, "an all-black mask", "the mask is empty", kwargs={"mask": "empty"}, exit_code=None),
    BadInput(INPAINT, "a text file as the image", "is not an image we can read", kwargs={"image": "text"},
             exit_code=None),
    BadInput(RESTYLE, "seed = NaN", "seed must be a whole number between -1 and 4294967295, got nan",
             kwargs={"seed": NAN}, exit_code=None),
    BadInput(RESTYLE, "steps = None", "steps must be a whole number between 1 and 150, got None",
             kwargs={"steps": None}, exit_code=None),
    BadInput(RESTYLE, "strength = 'a lot'", "strength must be a number between 0.05 and 1, got 'a lot'",
             kwargs={"strength": "a lot"}, exit_code=None),
]

# Chosen faces (issue 15). API cases: the good call becomes a 3-face one when a case names ``face_map``:
# ``facemap`` is the portrait's owner map (faces 1–3), ``numbered`` a mask whose value k = regenerate for face k.
FACES_OK = '[{"face": 2, "prompt": "red hair"}, {"face": 3, "prompt": "a smile"}]'
PAGE = {"mask": "numbered", "face_map": "facemap"}
BAD_INPUTS += [
    BadInput(INPAINT, "faces = [{face: 5}] on a 3-face picture", "face 5 is not in this image: it has 3 faces, "
             "numbered 1–3 by score", kwargs={"faces": '[{"face": 5, "prompt": "x"}]', **PAGE}, exit_code=None),
    BadInput(INPAINT, "7 faces in one request", "7 faces in one request, at most 6 (each is one SD run)",
             kwargs={"faces": "[" + ", ".join(f'{{"face": {i}}}' for i in range(1, 8)) + "]", **PAGE},
             exit_code=None),
    BadInput(INPAINT, "a face without a prompt, and prompt = ''", "face 2 has no prompt",
             kwargs={"faces": '[{"face": 2}, {"face": 3, "prompt": "a smile"}]', "prompt": "", **PAGE},
             exit_code=None),
    BadInput(INPAINT, "faces = 'face 2'", "faces must be a JSON list like", kwargs={"faces": "face 2", **PAGE},
             exit_code=None),
    BadInput(INPAINT, "faces = [{face: 2, promt: …}]", "faces entry 1: unknown key 'promt'",
             kwargs={"faces": '[{"face": 2, "promt": "x"}]', **PAGE}, exit_code=None),
    BadInput(INPAINT, "faces with a white (not face-numbered) mask", "it has value 255, which is not one of the "
             "chosen faces", kwargs={"faces": FACES_OK, "mask": "mask", "face_map": "facemap"}, exit_code=None),
    BadInput(INPAINT, "a 10×10 face map for a 200×152 photo", "the face map is 10×10 but the image is 200×152",
             kwargs={"faces": FACES_OK, "mask": "numbered", "face_map": "small"}, exit_code=None),
]

EDIT = "face-studio edit"
BAD_INPUTS += [
    BadInput(EDIT, "--face two:hair:red", "--face 'two:hair:red': give N:REGIONS:PROMPT",
             ("edit", "photo.png", "--face", "two:hair:red", "--out", "out.png")),
    BadInput(EDIT, "--face given 7 times", "--face: 7 faces in one request, at most 6",
             ("edit", "photo.png", *[a for i in range(1, 8) for a in ("--face", f"{i}:hair:red")], "--out",
              "out.png")),
    BadInput(EDIT, "--face 2:hair: and no --prompt", "--face 2 has no prompt",
             ("edit", "photo.png", "--face", "2:hair:", "--out", "out.png")),
    BadInput(EDIT, "--face 2:beard:x", "face 2 regions: unknown region name(s): 'beard'",
             ("edit", "photo.png", "--face", "2:beard:x", "--out", "out.png")),
    BadInput(EDIT, "--face 2:hair:x --face 2::y", "--face: face 2 is listed twice",
             ("edit", "photo.png", "--face", "2:hair:x", "--face", "2::y", "--out", "out.png")),
    BadInput(EDIT, "--face-map without --face", "--face-map goes with --face",
             ("edit", "photo.png", "--face-map", "photo.png", "--prompt", "x", "--out", "out.png")),
]


def prepare(folder: Path) -> Path:
    """The files the CLI cases name: a small photo (every case fails before a model loads); return ``folder``."""
    from PIL import Image

    Image.new("RGB", (64, 48), (120, 90, 60)).save(folder / "photo.png")
    return folder
