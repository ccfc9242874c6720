"""static/faces.json: the page's copy of face_studio/faces/spec.py, written by the set-up."""

from __future__ import annotations

import json

from face_studio.faces import spec


def test_faces_json_carries_the_constants_the_page_needs(tmp_path) -> None:
    data = json.loads(spec.write_faces_json(tmp_path / "faces.json").read_text())
    assert data == json.loads(json.dumps(spec.faces_json()))
    full = data["detectors"][spec.DETECTOR]
    assert full["num_anchors"] == 2304 and full["layers"] == [{"stride": 4, "grid": 48, "per_cell": 1}]
    assert data["detectors"]["short"]["num_anchors"] == 896
    assert (data["maxFaces"], data["cropScale"], data["modes"]) == (spec.MAX_FACES, spec.CROP_SCALE,
                                                                    ["auto", "largest", "off"])
    assert data["smallFaces"] in ("whole", "tiles") and data["tileLevels"] == list(spec.TILE_LEVELS)
