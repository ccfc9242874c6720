"""Faces anywhere: find every face (MediaPipe BlazeFace converted to ONNX), parse each on its own crop, paste the
labels back (issue 15). The reference implementation; the browser has its twin in ``static/js/faces.js``.

- :mod:`face_studio.faces.spec`     constants as data (also written to ``static/faces.json`` for the browser)
- :mod:`face_studio.faces.anchors`  SSD anchors, decoding, weighted non-maximum suppression (numpy only)
- :mod:`face_studio.faces.geometry` letterbox, crop box, paste back with an owner map (numpy/PIL only)
- :mod:`face_studio.faces.detector` the ONNX Runtime session and ``detect(image)``
"""
