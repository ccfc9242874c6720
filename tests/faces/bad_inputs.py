"""Awkward pictures for the face-aware parse (``faces`` auto): what the user is told. tests/parsing/test_faces.py
runs each through ``webapp.parsing.parse_image`` (the server ``parse`` API and ``face-studio parse`` share it) with
a tiny parser; ``args[0]`` names the scene it builds. ``expect`` is the note (``faces_note`` in the JSON, a
``note:`` line on the CLI); one starting with NO_NOTE means the faces are parsed and no note is given."""

from __future__ import annotations

from face_studio.faces.spec import MAX_FACES
from tests.bad_input import BadInput

SURFACE = "API parse / face-studio parse (faces auto)"
NO_NOTE = "(no note)"

BAD_INPUTS: list[BadInput] = [
    BadInput(SURFACE, "a picture with no face", "no face found: parsed the whole image", ("noise",), exit_code=None),
    BadInput(SURFACE, f"24 faces (over the cap of {MAX_FACES})",
             f"faces; parsed the {MAX_FACES} with the highest scores (the cap is {MAX_FACES} a picture)", ("crowd",),
             exit_code=None),
    BadInput(SURFACE, "a face cut by the picture's corner", f"{NO_NOTE} both faces parsed; the cut face's crop "
             "reaches outside the picture and is padded with black", ("edge",), exit_code=None),
    BadInput(SURFACE, "a 3×2 picture", "no face found: parsed the whole image", ("tiny",), exit_code=None),
    BadInput(SURFACE, "a 4000×3000 picture with one face", f"{NO_NOTE} the face is found (tiles) and parsed on a "
             "crop no larger than the picture's longer side", ("huge",), exit_code=None),
]
