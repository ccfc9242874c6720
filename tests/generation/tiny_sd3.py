"""A tiny Stable Diffusion 3 pipeline built entirely here (random weights, local tokenizers), saved with
``save_pretrained`` so tests load it through the same ``from_pretrained(folder)`` path a user's model takes.

Importable by any test area: ``from tests.generation.tiny_sd3 import build_tiny_sd3``.

- ``SD3Transformer2DModel``: 2 blocks (one with dual attention, as in SD3.5 Medium), RMS qk-norm;
- ``AutoencoderKL`` with 16 latent channels (SD3's), one down/up block, so 8× becomes 1× … see VAE_SCALE;
- two ``CLIPTextModelWithProjection`` sharing a byte-level BPE vocab + merges generated here;
- ``T5EncoderModel`` with a sentencepiece unigram model trained here on a few sentences;
- ``FlowMatchEulerDiscreteScheduler`` (shift 3.0, as SD3.5).
"""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "a portrait photo of a woman with red hair, soft light",
    "a man with a beard and glasses smiling at the camera",
    "close-up of a face, freckles, green eyes, studio lighting",
    "an oil painting of an old sailor with a pipe",
    "a child laughing in the sun, shallow depth of field",
    "black and white photograph of a dancer",
    "a cat sitting on a windowsill at dusk",
    "cinematic still of a city street in the rain at night",
]
CLIP_DIM = 32  # each CLIP's hidden size; the two concatenate to 64 = T5's d_model = joint_attention_dim
T5_DIM = 64
VAE_SCALE = 8  # 4 VAE blocks → 8× down-sampling, as SD3's VAE (so 64×64 images ↔ 8×8 latents)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _clip_tokenizer_files(folder: Path) -> Path:
    """A byte-level BPE vocab (every byte, with and without ``</w>``) plus merges for common letter pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(token, len(vocab))
    merges = []
    pairs = {}
    for sentence in SENTENCES:
        for word in sentence.lower().split():
            for a, b in zip(word, word[1:], strict=False):
                pairs[(a, b)] = pairs.get((a, b), 0) + 1
    for a, b in sorted(pairs, key=lambda p: -pairs[p])[:40]:
        merges.append(f"{a} {b}")
        vocab.setdefault(a + b, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def _t5_tokenizer_files(folder: Path) -> Path:
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "spiece"), vocab_size=64, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, minloglevel=2,
    )
    corpus.unlink()
    (folder / "spiece.vocab").unlink(missing_ok=True)
    return folder


def build_tiny_sd3(folder: Path, seed: int = 0) -> Path:
    """Build the tiny SD3 pipeline and ``save_pretrained`` it into ``folder``; returns ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5TokenizerFast,
    )

    folder = Path(folder)
    work = folder.parent / f".{folder.name}-tokenizers"
    torch.manual_seed(seed)

    # Tokenizers from files made here (FACTS: pass a folder to from_pretrained, not vocab_file=).
    clip_tok = CLIPTokenizer.from_pretrained(_clip_tokenizer_files(work / "clip"), model_max_length=77)
    t5_tok = T5TokenizerFast.from_pretrained(_t5_tokenizer_files(work / "t5"), extra_ids=0, model_max_length=512)
    if len(t5_tok) < 40:
        raise RuntimeError(f"T5 tokenizer came out with {len(t5_tok)} tokens: the sentencepiece model was ignored")

    def clip(seed_offset: int) -> CLIPTextModelWithProjection:
        torch.manual_seed(seed + seed_offset)
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=len(clip_tok), hidden_size=CLIP_DIM, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=4, projection_dim=CLIP_DIM, max_position_embeddings=77, hidden_act="gelu",
            bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
            pad_token_id=clip_tok.pad_token_id)).eval()

    text_encoder, text_encoder_2 = clip(1), clip(2)
    torch.manual_seed(seed + 3)
    text_encoder_3 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tok), d_model=T5_DIM, d_kv=16, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=t5_tok.pad_token_id,
        eos_token_id=t5_tok.eos_token_id, decoder_start_token_id=0)).eval()
    torch.manual_seed(seed + 4)
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
        num_attention_heads=4, joint_attention_dim=T5_DIM, caption_projection_dim=32,
        pooled_projection_dim=2 * CLIP_DIM, pos_embed_max_size=96, qk_norm="rms_norm", dual_attention_layers=(0,),
    )
    torch.manual_seed(seed + 5)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=4, sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5305,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=clip_tok,
        text_encoder_2=text_encoder_2, tokenizer_2=clip_tok, text_encoder_3=text_encoder_3, tokenizer_3=t5_tok,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
