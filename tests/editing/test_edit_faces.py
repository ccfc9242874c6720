"""Editing chosen faces on the tiny SD3 pipeline: a synthetic 3-face scene (label map + owner map as the faces
seam defines them), one prompt per face in one request, every pixel outside the chosen faces' masks bit-exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from webapp.editing.faces import MAX_EDIT_FACES, FaceEdit, parse_faces
from webapp.editing.masks import prepare_faces
from webapp.editing.service import EditRequest, edit_faces, working_size
from webapp.generation.params import PNG_JSON_KEY, PNG_TEXT_KEY

FAST = dict(steps=4, seed=11)
HAIR, SKIN, LIPS = 13, 1, 12


def scene() -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A 240×120 picture with three faces side by side (face 1 in the middle, 2 left, 3 right: numbered by
    score, not position), their parse and owner map; faces 1 and 3 touch, so a grown mask could cross."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 240, 3), dtype=np.uint8)
    labels = np.zeros((120, 240), dtype=np.uint8)
    owner = np.zeros((120, 240), dtype=np.uint8)
    for number, x0 in ((2, 10), (1, 90), (3, 160)):  # crops: 70 px wide; faces 1 and 3 share an edge at x=160
        owner[10:110, x0:x0 + 70] = number
        labels[15:40, x0 + 10:x0 + 60] = HAIR
        labels[40:100, x0 + 15:x0 + 55] = SKIN
        labels[80:88, x0 + 28:x0 + 42] = LIPS
    return Image.fromarray(image), labels, owner


@pytest.fixture(scope="module")
def three_faces() -> tuple[Image.Image, np.ndarray, np.ndarray]:
    return scene()


def test_editing_face_2_changes_only_face_2(edit_service, three_faces) -> None:
    image, labels, owner = three_faces
    result = edit_faces(edit_service, image, EditRequest(prompt="red curly hair", **FAST),
                        [FaceEdit(2, regions=("hair",))], labels=labels, owner=owner)
    before, after = np.asarray(image), np.asarray(result.image)
    changed = (before != after).any(axis=-1)
    assert changed.any() and not changed[result.alpha == 0].any(), "a pixel outside face 2's mask changed"
    assert not changed[owner == 1].any() and not changed[owner == 3].any(), "another face changed"
    hair2 = (labels == HAIR) & (owner == 2)
    assert (result.alpha[hair2] == 255).all() and changed[hair2].mean() > 0.9
    assert not result.mask[(labels == HAIR) & (owner != 2)].any()  # only face 2's hair was chosen
    record = json.loads(Image.open(result.path).text[PNG_JSON_KEY])["edit"]
    assert record["faces"] == [{"face": 2, "prompt": "red curly hair", "regions": ["hair"],
                                "mask_coverage": round(float(result.mask.mean()), 4)}]
    assert "Faces: 2" in Image.open(result.path).text[PNG_TEXT_KEY]


def test_two_faces_two_prompts_in_one_request(edit_service, three_faces) -> None:
    image, labels, owner = three_faces
    req = EditRequest(prompt="", grow=12, feather=8, **FAST)
    faces = [FaceEdit(3, "a wide smile", ("lips",)), FaceEdit(1, "short red hair", ("hair",))]
    both = edit_faces(edit_service, image, req, faces, labels=labels, owner=owner)
    before, after = np.asarray(image), np.asarray(both.image)
    changed = (before != after).any(axis=-1)
    assert not changed[both.alpha == 0].any() and not changed[owner == 2].any()
    assert changed[(labels == HAIR) & (owner == 1)].mean() > 0.9 and changed[(labels == LIPS) & (owner == 3)].all()
    record = both.record
    assert [(f["face"], f["prompt"], f["regions"]) for f in record["faces"]] == [
        (1, "short red hair", ["hair"]), (3, "a wide smile", ["lips"])]
    assert record["regions"] == ["hair", "lips"] and record["seed"] == 11
    # Each face runs from the original with the same seed: face 3 alone gives the same pixels on face 3.
    alone = edit_faces(edit_service, image, req, [faces[0]], labels=labels, owner=owner)
    assert np.array_equal(np.asarray(alone.image)[owner == 3], after[owner == 3])
    # A different prompt gives a different face 3 (the prompts really are per face).
    other = edit_faces(edit_service, image, req, [FaceEdit(3, "blue lips", ("lips",))], labels=labels, owner=owner)
    assert not np.array_equal(np.asarray(other.image)[owner == 3], after[owner == 3])


def test_a_grown_mask_stays_off_the_other_chosen_faces() -> None:
    _image, labels, owner = scene()
    selected = {1: (labels == SKIN) & (owner == 1), 3: (labels == SKIN) & (owner == 3)}
    big = prepare_faces(selected, owner, 60, 30, working_size(240, 120))
    for k, j in ((1, 3), (3, 1)):
        assert big[k].grown[selected[k]].all() and (big[k].alpha[selected[k]] == 255).all()
        assert not big[k].grown[owner == j].any() and (big[k].alpha[owner == j] == 0).all()
    # Face 2 is not chosen: the grown edges reach the background around it, never its own pixels.
    assert not big[1].grown[owner == 2].any() and big[1].grown[:, 80:90].any()
    # Without an owner map (a face-numbered mask from the page) the other face's selected pixels are kept off.
    loose = prepare_faces(selected, None, 60, 30, working_size(240, 120))
    assert not loose[1].grown[selected[3]].any() and (loose[1].alpha[selected[3]] == 0).all()


def test_a_face_numbered_mask_and_the_page_face_map(edit_service, three_faces) -> None:
    """The page's request: value k in the mask = regenerate for face k; no parse on the server."""
    image, labels, owner = three_faces
    numbered = np.zeros_like(owner)
    numbered[(labels == HAIR) & (owner == 2)] = 2
    numbered[50:60, 170:190] = 3  # a painted stroke for face 3
    result = edit_faces(edit_service, image, EditRequest(prompt="x", grow=0, feather=0, **FAST),
                        [FaceEdit(2, "red hair", mask_regions=("hair",)), FaceEdit(3, "a scar")],
                        owner=owner, mask=Image.fromarray(numbered))
    changed = (np.asarray(image) != np.asarray(result.image)).any(axis=-1)
    assert np.array_equal(result.mask, numbered > 0)  # no grow, no feather: exactly what was sent
    assert not changed[numbered == 0].any() and changed[numbered > 0].mean() > 0.9
    assert [f["regions"] for f in result.record["faces"]] == [["hair"], []]


@pytest.mark.parametrize("faces, kwargs, expected", [
    ([FaceEdit(4, "x", ("hair",))], {}, "face 4 is not in this image: it has 3 faces, numbered 1–3 by score"),
    ([FaceEdit(2, "", ("hair",))], {"prompt": ""}, "face 2 has no prompt"),
    ([FaceEdit(2, "x", ("hat",))], {}, "face 2: none of hat is on this face (it shows: skin, l_lip, hair)"),
    ([FaceEdit(2, "x")], {}, "face 2: nothing to regenerate"),
    ([], {}, "no face chosen"),
    ([FaceEdit(2, "x")], {"mask": np.full((120, 240), 255, np.uint8)}, "it has value 255, which is not one of"),
    ([FaceEdit(2, "x")], {"mask": np.zeros((10, 10), np.uint8)}, "the mask is 10×10 but the image is 240×120"),
    ([FaceEdit(2, "x", ("skin",))], {"steps": 0}, "steps must be between"),
])
def test_bad_face_edits(edit_service, three_faces, faces, kwargs, expected: str) -> None:
    image, labels, owner = three_faces
    req = EditRequest(prompt=kwargs.pop("prompt", "x"), steps=kwargs.pop("steps", 4), seed=1)
    with pytest.raises(UserError) as info:
        edit_faces(edit_service, image, req, faces, labels=labels, owner=owner, **kwargs)
    assert expected in str(info.value)


@pytest.mark.parametrize("value, expected", [
    ("[{\"face\": 2,}]", "faces must be a JSON list like"),
    ('{"face": 2}', "faces must be a JSON list like [{\"face\": 2, \"regions\": \"hair\", \"prompt\": \"red curly "
                    "hair\"}], got dict"),
    (json.dumps([{"face": i + 1} for i in range(MAX_EDIT_FACES + 1)]),
     f"{MAX_EDIT_FACES + 1} faces in one request, at most {MAX_EDIT_FACES}"),
    ('[{"face": 0}]', "faces entry 1: \"face\" must be a face number (1, 2, …"),
    ('[{"face": true}]', "faces entry 1: \"face\" must be a face number"),
    ('[{"face": "2"}]', "got '2'"),
    ('[2]', "faces entry 1 must be an object"),
    ('[{"face": 2, "promt": "x"}]', "faces entry 1: unknown key 'promt'; use face, prompt, regions, mask_regions"),
    ('[{"face": 2}, {"face": 2}]', "face 2 is listed twice"),
    ('[{"face": 2, "regions": "hair,beard"}]', "face 2 regions: unknown region name(s): 'beard'"),
    ('[{"face": 2, "regions": 5}]', "face 2 regions must be names"),
    ('[{"face": 2, "prompt": 5}]', "face 2: \"prompt\" must be text, got int"),
    ('[{"face": 2, "promt' + "x" * 500 + '": 1}]', "unknown key 'promtxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…; use"),
])
def test_the_faces_field_says_what_to_send(value: str, expected: str) -> None:
    with pytest.raises(UserError) as info:
        parse_faces(value)
    assert expected in str(info.value)


def test_the_faces_field_reads_text_or_a_list() -> None:
    sent = [{"face": 3, "prompt": "a smile", "regions": ["lips"]}, {"face": 1, "regions": "hair, hat"}]
    assert parse_faces(json.dumps(sent)) == parse_faces(sent) == [
        FaceEdit(3, "a smile", ("lips",)), FaceEdit(1, "", ("hair", "hat"))]
    assert parse_faces("") == parse_faces(None) == parse_faces("  ") == []


def group_photo():
    """Three synthetic faces the detector finds: face 1 in the middle, 2 on the left, 3 on the right."""
    from tests.faces.conftest import scene as face_scene

    return face_scene(480, 240, [(1, 10, 40, 150), (4, 170, 20, 150), (5, 330, 60, 140)])[0]


def test_the_server_finds_the_faces_for_region_names(edit_service, tiny_export_dir) -> None:
    """Regions by name: the server detects, crops, parses and numbers the faces (face_studio.faces) itself."""
    from webapp.editing.faces import find_faces
    from webapp.editing.service import edit_chosen_faces

    photo = group_photo()
    found = find_faces(tiny_export_dir, photo)
    assert found.owner.max() == 3 and found.note is None
    xs = [np.nonzero(found.owner == k)[1].mean() for k in (1, 2, 3)]
    assert xs[1] < xs[0] < xs[2], "faces are numbered by score: the middle face first here"
    # The tiny parser has random weights: edit the class it predicts most on face 2.
    from face_studio.labels import NAMES

    counts = np.bincount(found.labels[found.owner == 2], minlength=len(NAMES))
    counts[0] = 0
    region = NAMES[int(counts.argmax())]
    result = edit_chosen_faces(edit_service, tiny_export_dir, photo, EditRequest(prompt="", **FAST),
                               parse_faces(f'[{{"face": 2, "prompt": "red hair", "regions": "{region}"}}]'))
    changed = (np.asarray(photo) != np.asarray(result.image)).any(axis=-1)
    assert changed.any() and not changed[result.alpha == 0].any()
    assert not changed[(found.owner == 1) | (found.owner == 3)].any(), "a face other than face 2 changed"
    chosen = (found.labels == NAMES.index(region)) & (found.owner == 2)
    assert (result.alpha[chosen] == 255).all() and result.record["faces"][0]["regions"] == [region]
    with pytest.raises(UserError, match="face 4 is not in this image: it has 3 faces"):
        edit_chosen_faces(edit_service, tiny_export_dir, photo, EditRequest(prompt="x", **FAST),
                          [FaceEdit(4, regions=(region,))])


def test_cli_edits_two_faces_with_a_prompt_each(tiny_sd3_dir, tiny_export_dir, tmp_path) -> None:
    import subprocess
    import sys

    from webapp.editing.faces import find_faces

    photo = tmp_path / "group.png"
    group_photo().save(photo)
    found = find_faces(tiny_export_dir, Image.open(photo).convert("RGB"))
    out = tmp_path / "edited.png"
    base = [sys.executable, "-m", "webapp", "edit", str(photo), "--out", str(out), "--sd-model", str(tiny_sd3_dir),
            "--device", "cpu", "--parser", str(tiny_export_dir), "--steps", "3", "--seed", "5"]
    # Every class on faces 1 and 3 (the random tiny parser's): what is regenerated is theirs alone.
    regions = "skin,l_brow,r_brow,l_eye,r_eye,eye_g,l_ear,r_ear,ear_r,nose,mouth,u_lip,l_lip,neck,neck_l,cloth,hair,hat"
    proc = subprocess.run(base + ["--face", f"3:{regions}:a wide smile", "--face", f"1:{regions}:",
                                  "--prompt", "short red hair", "--save-mask", str(tmp_path / "m.png")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"wrote {out} (faces 1, 3: " in proc.stdout
    before, after = np.asarray(Image.open(photo).convert("RGB")), np.asarray(Image.open(out).convert("RGB"))
    changed = (before != after).any(axis=-1)
    alpha = np.asarray(Image.open(tmp_path / "m.png"))
    assert changed[found.owner == 1].any() and changed[found.owner == 3].any()
    assert not changed[found.owner == 2].any() and not changed[alpha == 0].any()
    record = json.loads(Image.open(out).text[PNG_JSON_KEY])["edit"]
    assert [(f["face"], f["prompt"]) for f in record["faces"]] == [(1, "short red hair"), (3, "a wide smile")]
