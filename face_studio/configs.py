"""SegFormer architectures as data: the true MiT-B5 face parser and tiny test/dev configs."""

from __future__ import annotations

from transformers import SegformerConfig

from face_studio.labels import ID2LABEL, LABEL2ID

ARCHITECTURES = ["SegformerForSemanticSegmentation"]

# jonathandinu/face-parsing (MiT-B5 encoder, 768-wide all-MLP decoder, 19 CelebAMask-HQ labels).
MIT_B5 = dict(depths=[3, 6, 40, 3], hidden_sizes=[64, 128, 320, 512], num_attention_heads=[1, 2, 5, 8],
              decoder_hidden_size=768)
# nvidia/mit-b0 shape: the small fast parser.
MIT_B0 = dict(depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 160, 256], num_attention_heads=[1, 2, 5, 8],
              decoder_hidden_size=256)
# nvidia/mit-b1 shape: B0's depth at B5's widths (13.7 M parameters), for a student a step up from B0.
MIT_B1 = dict(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 320, 512], num_attention_heads=[1, 2, 5, 8],
              decoder_hidden_size=256)
# The live student: B0's encoder (so `--init nvidia/mit-b0` still fits) with a 64-wide decoder. B0's 256-wide
# all-MLP decoder costs 2.3 of its 3.4 GFLOP a 256² frame (a 1024 → 256 fusion on the 64×64 map); at 64 wide
# the whole network is 1.26 GFLOP, 86 % of it the encoder (bench/live_students.py, docs/live.md).
MIT_B0_D64 = dict(MIT_B0, decoder_hidden_size=64)
# A few hundred thousand parameters: trains on CPU in minutes, exports in seconds.
TINY = dict(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], num_attention_heads=[1, 1, 2, 4],
            decoder_hidden_size=64)

PRESETS = {"mit-b5": MIT_B5, "mit-b0": MIT_B0, "tiny": TINY, "mit-b1": MIT_B1, "mit-b0-d64": MIT_B0_D64}


def face_parser_config(preset: str = "tiny") -> SegformerConfig:
    """A ``SegformerConfig`` for ``preset`` with the 19 face labels and ``architectures`` set."""
    if preset not in PRESETS:
        raise ValueError(f"unknown SegFormer preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = SegformerConfig(num_labels=len(ID2LABEL), id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
                             **PRESETS[preset])
    config.architectures = list(ARCHITECTURES)
    return config
