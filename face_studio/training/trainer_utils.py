"""Hugging Face Trainer pieces shared by ``face-studio train`` (train.py) and ``face-studio distil`` (distil.py).

The checkpoint folder and --resume checks, the TrainingArguments both runs use (evaluate and checkpoint every epoch,
keep the best), the batch-wise confusion-matrix metrics, the progress bar, the fields of the run summary that
describe the run, the switch for transformers' own bars, and the check of a local model folder (--base, --teacher).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from face_studio.errors import UserError
from face_studio.labels import NAMES
from face_studio.training.metrics import ConfusionMatrix

CHECKPOINTS = "checkpoints"


def last_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``folder``, or None."""
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def check_resume(out: Path, resume: bool) -> tuple[Path, Path | None]:
    """``OUT/checkpoints`` and its newest checkpoint; a clear error when ``--resume`` and the folder disagree."""
    ckpt_dir = out / CHECKPOINTS
    last = last_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    if resume and last is None:
        raise UserError(f"--resume: no checkpoint to continue in {ckpt_dir}; run without --resume to start.")
    if not resume and last is not None:
        raise UserError(f"{out} already holds checkpoints of an earlier run ({last.name}): pass --resume to "
                        f"continue it, or choose another --out.")
    return ckpt_dir, last


def check_model_folder(spec: str, flag: str, examples: str, fix: str = "") -> None:
    """When ``spec`` is a local folder: a clear error unless it holds config.json and model.safetensors."""
    path = Path(spec)
    if not path.exists():
        return
    if not (path / "config.json").is_file():
        raise UserError(f"{flag} {spec}: the folder has no config.json; give a save_pretrained folder or a hub id "
                        f"such as {examples}.")
    if not (path / "model.safetensors").is_file():
        raise UserError(f"{flag} {spec}: no model.safetensors in the folder (only safetensors weights are "
                        f"loaded){fix}.")


@contextmanager
def hf_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn off the transformers loading/saving bars for the block when ``enabled`` is False (restored after)."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    if not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def to_numpy(x) -> np.ndarray:
    """A torch tensor (any device; floating point as float32) or an array-like as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach()
        return (x.float() if x.is_floating_point() else x).cpu().numpy()
    return np.asarray(x)


class BatchConfusion:
    """``compute_metrics`` for ``batch_eval_metrics``: a running confusion matrix over the evaluation set.

    Subclasses say what the labels are compared as (``targets``) and which scores to report (``result``).
    """

    def __init__(self) -> None:
        self.cm = ConfusionMatrix()

    def targets(self, label_ids: np.ndarray) -> np.ndarray:
        return label_ids

    def result(self, scores: dict) -> dict:
        raise NotImplementedError

    def __call__(self, eval_pred, compute_result: bool = False) -> dict:
        self.cm.update(to_numpy(eval_pred.predictions), self.targets(to_numpy(eval_pred.label_ids)))
        if not compute_result:
            return {}
        scores = self.cm.scores()
        self.cm = ConfusionMatrix()
        return self.result(scores)


def training_arguments(ckpt_dir: Path, *, epochs: float, lr: float, batch: int, seed: int, workers: int | None,
                       train_items: int, metric: str, **extra):
    """TrainingArguments for an epoch-wise run: evaluate and checkpoint every epoch, keep the best by ``metric``.

    ``workers`` None: 4 data-loading processes on a GPU, 0 on CPU. ``extra`` goes to TrainingArguments as is.
    """
    import math

    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    steps_per_epoch = math.ceil(train_items / batch)
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        weight_decay=0.01,
        warmup_steps=int(0.05 * steps_per_epoch * epochs),  # 5 % of the run
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,  # the best and the latest
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=True,
        batch_eval_metrics=True,
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 4),
        report_to="none",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=workers if workers is not None else (4 if cuda else 0),
        dataloader_pin_memory=cuda,
        remove_unused_columns=False,
        use_cpu=not cuda,
        disable_tqdm=True,  # our own bar (loss + the eval metric) replaces the Trainer's printouts
        **extra,
    )


def add_progress_bar(trainer, enabled: bool, desc: str, eval_key: str,
                     on_eval: Callable[[dict], tuple[str, str, str]]):
    """Replace the Trainer's printouts with one bar over all steps, showing the latest loss and the eval metric.

    When ``logs`` hold ``eval_key``, ``on_eval(logs)`` gives ``(postfix name, postfix value, line)``; the line is
    printed above the bar after ``epoch N: ``. Returns the callback (``first_step``: where this run started).
    """
    from tqdm.auto import tqdm
    from transformers import PrinterCallback, TrainerCallback

    class ProgressBar(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None
            self.first_step = 0
            self.postfix: dict[str, str] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.first_step = state.global_step
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=desc, unit="step",
                            disable=not enabled, file=sys.stderr, dynamic_ncols=True)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                self.postfix["loss"] = f"{logs['loss']:.3f}"
            if eval_key in logs:
                name, value, line = on_eval(logs)
                self.postfix[name] = value
                if self.bar is not None and enabled:
                    self.bar.write(f"epoch {state.epoch:.0f}: {line}", file=sys.stderr)
            if self.bar is not None:
                self.bar.set_postfix(self.postfix, refresh=True)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    progress = ProgressBar()
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(progress)
    return progress


def run_record(trainer, progress, last: Path | None, resume: bool, seconds: float, history: list[dict],
               best_key: str) -> dict:
    """The summary fields that describe the run itself: steps, epochs, resume, timing, the best epoch, history."""
    best_checkpoint = trainer.state.best_model_checkpoint
    return {
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "resumed_from": last.name if resume and last is not None else None,
        "steps_this_run": trainer.state.global_step - progress.first_step,
        "seconds_this_run": round(seconds, 1),
        "best_checkpoint": Path(best_checkpoint).name if best_checkpoint else None,
        "best": max(history, key=lambda h: h[best_key]),
        "history": history,
        "labels": list(NAMES),
    }
