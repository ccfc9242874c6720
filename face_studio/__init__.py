"""face_studio: the library under everything — labels, pre/post-processing, images, errors, SegFormer
configs, the ONNX file layout, and training (synth, data, augment, train, evaluate, metrics).

It imports nothing of ``export`` or ``webapp``; both of those import it.
"""

__version__ = "0.1.0"
