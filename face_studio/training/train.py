"""Fine-tune ``SegformerForSemanticSegmentation`` on labelled faces with the Hugging Face Trainer.

    finetune(TrainConfig(data="faces/", base="jonathandinu/face-parsing", out="runs/my-parser"))

writes::

    OUT/config.json  OUT/model.safetensors  OUT/preprocessor_config.json   the best checkpoint by val mIoU
    OUT/training.json                                                     what was trained, how, and the scores
    OUT/checkpoints/checkpoint-N/                                         Trainer state for --resume

``OUT`` is a ``save_pretrained`` folder: ``face-studio export --model OUT`` and ``face-studio evaluate`` take it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.errors import UserError
from face_studio.labels import ID2LABEL, LABEL2ID, NUM_LABELS
from face_studio.preprocess import INPUT_SIZE, preprocessor_config, to_pixel_values
from face_studio.training import data as data_io
from face_studio.training import trainer_utils
from face_studio.training.augment import AugmentConfig, augment
from face_studio.training.synth import MAX_SEED, MAX_SIZE  # the Trainer seeds numpy, torch and random with --seed

SCRATCH = "scratch:"  # --base scratch:tiny → random weights in an face_studio/configs.py preset
SUMMARY = "training.json"
ARCHITECTURES = ["SegformerForSemanticSegmentation"]


class NonFiniteError(UserError):
    """The loss or the weights became NaN or infinite: the run stops and saves nothing."""


@dataclass
class TrainConfig:
    """Everything one fine-tuning run needs; the CLI flags map one to one."""

    data: str | Path
    base: str
    out: str | Path
    epochs: float = 10.0
    lr: float = 6e-5  # SegFormer's fine-tuning rate; a small model trained from scratch wants ~1e-3
    batch: int = 8
    size: int = INPUT_SIZE  # training resolution (the browser and server run at 512)
    val_fraction: float = 0.1
    val_data: str | Path | None = None  # a separate labelled folder instead of a split
    seed: int = 0
    resume: bool = False
    augment: bool = True
    workers: int | None = None  # data-loading processes (None: 0 on CPU, 4 on GPU)
    revision: str | None = None
    check_data: bool = True  # load every face once before training, so a bad file stops the run early
    progress: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise UserError(f"--epochs must be a positive number (got {self.epochs}), e.g. 10.")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"--lr must be a positive number (got {self.lr}): 6e-5 to fine-tune, ~1e-3 from "
                            f"scratch.")
        if self.batch < 1:
            raise UserError(f"--batch must be at least 1 (got {self.batch}).")
        if self.size < 32 or self.size % 32:
            raise UserError(f"--size must be a multiple of 32, at least 32 (got {self.size}): SegFormer "
                            f"downsamples by 32. Try 512.")
        if self.size > MAX_SIZE:
            raise UserError(f"--size must be at most {MAX_SIZE} (got {self.size}): memory grows with size²; the "
                            f"browser and server parse at 512.")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed must be 0…{MAX_SEED} (got {self.seed}).")


class FaceSegmentationDataset:
    """Samples as SegFormer batches: ``pixel_values`` (3, S, S) ImageNet-normalised, ``labels`` (S, S) int64."""

    def __init__(self, samples: list[data_io.Sample], size: int, augment_cfg: AugmentConfig | None) -> None:
        self.samples = samples
        self.size = size
        self.augment_cfg = augment_cfg

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        import torch

        image, labels = data_io.load_pair(self.samples[i])
        s = self.size
        image = image.resize((s, s), Image.BILINEAR)
        labels = np.asarray(Image.fromarray(labels).resize((s, s), Image.NEAREST))
        if self.augment_cfg is not None:
            # Seeded from torch's generator, which the Trainer seeds and restores on --resume.
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            image, labels = augment(image, labels, rng, self.augment_cfg)
        return {"pixel_values": torch.from_numpy(to_pixel_values([image], s)[0]),
                "labels": torch.from_numpy(labels.astype(np.int64))}


def load_base(base: str, revision: str | None = None):
    """``SegformerForSemanticSegmentation`` with the 19 face labels from a hub id or a local folder.

    A base with other labels (``nvidia/mit-b0``: an ImageNet encoder) gets a new 19-class head. Safetensors only.
    ``scratch:PRESET`` (``tiny``, ``mit-b0``, ``mit-b5`` from face_studio/configs.py) starts from random weights: for
    synthetic experiments; real photos want a pretrained base.
    """
    from transformers import SegformerForSemanticSegmentation

    if base.startswith(SCRATCH):
        from face_studio.configs import PRESETS, face_parser_config

        preset = base[len(SCRATCH):]
        if preset not in PRESETS:
            raise UserError(f"--base {base}: unknown preset; choose {', '.join(SCRATCH + p for p in PRESETS)}.")
        return SegformerForSemanticSegmentation(face_parser_config(preset))
    trainer_utils.check_model_folder(base, "--base", "nvidia/mit-b0 or jonathandinu/face-parsing",
                                     "; re-save the model with save_pretrained(..., safe_serialization=True)")
    from safetensors import SafetensorError

    try:
        model = SegformerForSemanticSegmentation.from_pretrained(
            base, revision=revision, num_labels=NUM_LABELS, id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
            ignore_mismatched_sizes=True, use_safetensors=True)
    except SafetensorError as err:
        raise UserError(f"--base {base}: its model.safetensors is corrupt or truncated ({err}): download it again "
                        f"or re-save it with save_pretrained.") from None
    except (OSError, ValueError) as err:
        raise UserError(f"--base {base}: could not load a SegFormer from it ({err}). Give a local folder or a hub "
                        f"id with model.safetensors (e.g. nvidia/mit-b0); offline, download it first.") from None
    model.config.architectures = list(ARCHITECTURES)
    return model


def _preprocess_logits(logits, labels):
    """Upsample logits to the label size and keep only the argmax (memory: N·S² bytes, not 19·N·S² floats)."""
    import torch.nn.functional as F

    if isinstance(logits, tuple):
        logits = logits[0]
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    return up.argmax(dim=1)


class _BatchMetrics(trainer_utils.BatchConfusion):
    """``compute_metrics`` for ``batch_eval_metrics``: a running confusion matrix over the validation set."""

    def result(self, scores: dict) -> dict:
        return {k: scores[k] for k in ("miou", "mean_f1", "pixel_accuracy")}


def _epoch_scores(logs: dict) -> tuple[str, str, str]:
    """The progress bar's val mIoU and the line it prints after each evaluation."""
    return ("val_mIoU", f"{logs['eval_miou']:.3f}",
            f"val mIoU {logs['eval_miou']:.4f}, mean F1 {logs.get('eval_mean_f1', float('nan')):.4f}, "
            f"pixel acc {logs.get('eval_pixel_accuracy', float('nan')):.4f}")


def _check_finite_weights(model, step: int, lr: float) -> None:
    """Raise :class:`NonFiniteError` if any weight is NaN or infinite (never save such a model)."""
    import torch

    bad = sum(int((~torch.isfinite(p.detach())).sum()) for p in model.parameters())
    if bad:
        total = sum(p.numel() for p in model.parameters())
        raise NonFiniteError(f"{bad:,} of {total:,} weights became NaN or infinite by step {step}: the run diverged "
                             f"and was stopped; no model was saved. Lower --lr (it was {lr:g}) and start again.")


def _trainer_class():
    import torch
    from transformers import SegformerForSemanticSegmentation, Trainer

    class SegformerTrainer(Trainer):
        """The HF Trainer, loading checkpoints through ``from_pretrained``.

        transformers 5 renamed SegFormer's modules and maps the names when loading; ``save_pretrained`` still
        writes the old names. The Trainer's own resume and best-model loading call ``load_state_dict(...,
        strict=False)`` on the raw file, which then matches no key and silently keeps the current weights.
        ``from_pretrained`` applies the mapping, so both go through it here (huggingface/transformers#43701,
        #48805; drop this once the Trainer converts keys itself).
        """

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            if not torch.isfinite(loss).all():
                raise NonFiniteError(
                    f"the training loss became {loss.item()} at step {self.state.global_step + 1} (epoch "
                    f"{self.state.epoch or 0:.2f}): the run diverged and was stopped; no model was saved. Lower "
                    f"--lr (it was {self.args.learning_rate:g}) and start again.")
            return loss

        def _save_checkpoint(self, model, trial):
            # Weights can still be finite yet so large that the model only gives NaN: the validation loss tells.
            _check_finite_weights(self.model, self.state.global_step, self.args.learning_rate)
            evals = [h["eval_loss"] for h in self.state.log_history if "eval_loss" in h]
            if evals and not math.isfinite(evals[-1]):
                raise NonFiniteError(
                    f"the validation loss became {evals[-1]} at epoch {self.state.epoch or 0:.2f}: the run diverged "
                    f"and was stopped; no model was saved. Lower --lr (it was {self.args.learning_rate:g}) and "
                    f"start again.")
            return super()._save_checkpoint(model, trial)

        def _load_weights(self, folder: str, model=None) -> None:
            model = model if model is not None else self.model
            loaded = SegformerForSemanticSegmentation.from_pretrained(folder, use_safetensors=True)
            model.load_state_dict(loaded.state_dict(), strict=True)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            self._load_weights(resume_from_checkpoint, model)

        def _load_best_model(self):
            self._load_weights(self.state.best_model_checkpoint)

    return SegformerTrainer


def finetune(cfg: TrainConfig) -> dict:
    """Train, keep the best checkpoint by val mIoU in ``cfg.out``, and return the run summary."""
    with trainer_utils.hf_progress_bars(cfg.progress):  # the loading/saving bars too
        return _finetune(cfg)


def _finetune(cfg: TrainConfig) -> dict:
    from transformers import set_seed

    # 1. Check inputs: data folders, output folder vs --resume.
    out = Path(cfg.out)
    ckpt_dir, last = trainer_utils.check_resume(out, cfg.resume)
    samples = data_io.find_samples(cfg.data)
    if cfg.val_data is not None:
        train_samples, val_samples = samples, data_io.find_samples(cfg.val_data)
    else:
        train_samples, val_samples = data_io.split(samples, cfg.val_fraction, cfg.seed)
    if cfg.check_data:
        data_io.check_samples(train_samples + val_samples, progress=cfg.progress)

    # 2. Model (seeded: a new decode head is initialised from the seed).
    set_seed(cfg.seed)
    model = load_base(cfg.base, cfg.revision)

    # 3. Trainer: evaluate and checkpoint every epoch, keep the best by val mIoU.
    out_existed = out.exists()
    kept_checkpoints = {p.name for p in ckpt_dir.glob("checkpoint-*")} if ckpt_dir.is_dir() else set()
    args = trainer_utils.training_arguments(ckpt_dir, epochs=cfg.epochs, lr=cfg.lr, batch=cfg.batch, seed=cfg.seed,
                                            workers=cfg.workers, train_items=len(train_samples), metric="miou")
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=FaceSegmentationDataset(train_samples, cfg.size, AugmentConfig() if cfg.augment else None),
        eval_dataset=FaceSegmentationDataset(val_samples, cfg.size, None),
        compute_metrics=_BatchMetrics(),
        preprocess_logits_for_metrics=_preprocess_logits,
    )
    progress = trainer_utils.add_progress_bar(trainer, cfg.progress, "fine-tuning", "eval_miou", _epoch_scores)

    # 4. Train (or continue from the latest checkpoint). A diverged run (NaN/inf loss or weights) stops and
    #    leaves no trace: the checkpoints it wrote are removed, and OUT too if this run made it.
    started = time.time()
    try:
        trainer.train(resume_from_checkpoint=str(last) if cfg.resume else None)
    except NonFiniteError:
        _remove_new_checkpoints(ckpt_dir, kept_checkpoints, None if out_existed else out)
        raise
    seconds = time.time() - started

    # 5. Save the best model (safetensors) atomically next to the checkpoints, with a summary.
    history = [{"epoch": round(h["epoch"], 3), "val_miou": h["eval_miou"], "val_mean_f1": h["eval_mean_f1"],
                "val_pixel_accuracy": h["eval_pixel_accuracy"]}
               for h in trainer.state.log_history if "eval_miou" in h]
    summary = {
        "base": cfg.base,
        "data": str(Path(cfg.data).resolve()),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "train_faces": len(train_samples),
        "val_faces": len(val_samples),
        "val_names": [s.name for s in val_samples],
        **trainer_utils.run_record(trainer, progress, last, cfg.resume, seconds, history, "val_miou"),
    }
    _save_final(trainer.model, out, cfg.size, summary)
    return summary


def _remove_new_checkpoints(ckpt_dir: Path, kept: set[str], made_out: Path | None) -> None:
    """Remove what a failed run wrote: all of ``made_out`` if the run created it, else its new checkpoints."""
    if made_out is not None:
        shutil.rmtree(made_out, ignore_errors=True)
    elif ckpt_dir.is_dir():
        for path in ckpt_dir.glob("checkpoint-*"):
            if path.name not in kept:
                shutil.rmtree(path, ignore_errors=True)


def _save_final(model, out: Path, size: int, summary: dict) -> None:
    _check_finite_weights(model, summary["steps"], summary["config"]["lr"])
    tmp = out / ".best-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # config.json + model.safetensors
    config = json.loads((tmp / "config.json").read_text())
    config["architectures"] = list(ARCHITECTURES)
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    pre = preprocessor_config()
    pre["size"] = {"height": size, "width": size}
    (tmp / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    (tmp / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
    tmp.rmdir()
