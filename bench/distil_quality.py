"""How much of a teacher's accuracy a distilled student keeps, on synthetic faces — and what labels alone give.

1. ``synth`` labelled faces (seeds 0..N-1), unlabelled pictures (seeds 200000.., their masks deleted; by default
   4× as many as the labelled faces: unlabelled photos are the plentiful, free kind) and held-out faces (seeds
   100000..), all at --size.
2. ``train`` a teacher on the labelled faces (masks used), for --teacher-epochs.
3. ``distil`` the student from the teacher on the unlabelled pictures (no masks exist to read), for --steps.
4. ``train`` the same student on the labelled faces' masks directly, for the same --steps (so more epochs over
   fewer faces), batch and learning rate; no augmentation in either.
5. ``distil`` each --compare student the same way (same pictures, steps, batch; its own default rate), e.g.
   ``mit-b0`` next to the default ``mit-b0-d64``: what the narrow decoder costs.
6. ``evaluate --teacher``: every model against the held-out ground truth, and its agreement with the teacher; an
   untrained student for scale.

Prints a Markdown table, the students' share of the teacher's mIoU, each run's validation curve (the teacher's
shows whether it has converged), and the command that reruns it. Synthetic faces, not photos: this measures how
well the distillation path (teacher logits on unlabelled pictures) transfers a parser, not accuracy on real faces.

    .venv/bin/python bench/distil_quality.py --work /work/distil-runs/final

Finished steps under --work are reused (a folder with model.safetensors is not trained again).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AIM = 0.95  # share of the teacher's mIoU the distilled student should keep (issue 18)
HELDOUT_SEED, PICTURES_SEED = 100_000, 200_000
VAL_FRACTION = 0.1  # train's and distil's default split (the same rule: round(n · 0.1) held out, at least 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from face_studio.training.distil import DEFAULT_STUDENT, STUDENTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="runs/distil-bench", help="working folder (reused: finished steps are kept)")
    p.add_argument("--faces", type=int, default=2000, help="labelled synthetic faces (teacher, label-trained student)")
    p.add_argument("--pictures", type=int, default=None,
                   help="unlabelled pictures the students are distilled on (default: 4 × --faces)")
    p.add_argument("--heldout", type=int, default=200, help="held-out faces for the scores")
    p.add_argument("--size", type=int, default=128, help="input side of teacher and students")
    p.add_argument("--teacher", default="mit-b0", help="teacher preset (scratch:PRESET)")
    p.add_argument("--teacher-epochs", type=float, default=16)
    p.add_argument("--teacher-lr", type=float, default=2e-3)
    p.add_argument("--student", default=DEFAULT_STUDENT, choices=STUDENTS, help="student preset")
    p.add_argument("--steps", type=int, default=2000,
                   help="optimizer steps of each student (distilled, label-trained and --compare alike)")
    p.add_argument("--compare", nargs="*", default=["mit-b0"], choices=STUDENTS,
                   help="other student presets to distil with the same budget (none: --compare with no value)")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--lr", type=float, default=None, help="the students' rate (default: distil's for each student)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--progress", action="store_true", help="progress bars and per-epoch scores on stderr")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    args.compare = [c for c in dict.fromkeys(args.compare) if c != args.student]
    return args


def train_items(n: int) -> int:
    """How many of ``n`` faces (or pictures) train, after the validation split."""
    return n - min(n - 1, max(1, round(n * VAL_FRACTION)))


def epochs_for(steps: int, items: int, batch: int) -> float:
    """Epochs that make exactly ``steps`` optimizer steps over ``items`` training items (the Trainer takes
    ceil(epochs · steps per epoch); half a step below keeps float rounding from adding one)."""
    return (steps - 0.5) / math.ceil(train_items(items) / batch)


def run(args: argparse.Namespace) -> dict:
    """Make whatever is missing under ``args.work`` and score it; returns the numbers the table prints."""
    import torch
    from transformers import SegformerForSemanticSegmentation

    from face_studio.configs import face_parser_config
    from face_studio.training.distil import CACHE, DEFAULT_ALPHA, DEFAULT_LR, DEFAULT_TEMPERATURE, DistilConfig, distil
    from face_studio.training.evaluate import evaluate_against_teacher
    from face_studio.training.synth import write_dataset
    from face_studio.training.train import TrainConfig, finetune

    work = Path(args.work)
    n_pictures = args.pictures or 4 * args.faces
    faces, pictures, heldout = work / "faces", work / "pictures", work / "heldout"
    teacher, student, direct, untrained = (work / n for n in ("teacher", "student", "direct", "untrained"))
    compared = {preset: work / f"student-{preset}" for preset in args.compare}
    seconds: dict[str, float] = {}

    def lr_of(preset: str) -> float:
        return args.lr if args.lr is not None else DEFAULT_LR[preset]

    def timed(name: str, make) -> None:
        started = time.time()
        make()
        seconds[name] = time.time() - started
        print(f"{name}: {seconds[name] / 60:.1f} min", file=sys.stderr, flush=True)

    # 1. Faces; the distillation pictures lose their masks, so nothing can read them.
    for folder, n, seed in ((faces, args.faces, 0), (heldout, args.heldout, HELDOUT_SEED),
                            (pictures, n_pictures, PICTURES_SEED)):
        if not (folder / "faces.jsonl").is_file():
            write_dataset(folder, n, args.size, seed, progress=False)
    shutil.rmtree(pictures / "masks", ignore_errors=True)

    # 2. Teacher (labelled faces).
    if not (teacher / "model.safetensors").is_file():
        timed("teacher", lambda: finetune(TrainConfig(
            data=faces, base=f"scratch:{args.teacher}", out=teacher, epochs=args.teacher_epochs, lr=args.teacher_lr,
            batch=args.batch, size=args.size, augment=False, progress=args.progress)))

    # 3. The student distilled on pictures the teacher never saw, with no masks.
    def distil_into(preset: str, folder: Path) -> None:
        if not (folder / "model.safetensors").is_file():
            timed(f"distilled {preset}", lambda: distil(DistilConfig(
                teacher=str(teacher), images=pictures / "images", out=folder, student=preset, size=args.size,
                epochs=epochs_for(args.steps, n_pictures, args.batch), lr=lr_of(preset), batch=args.batch,
                augment=False, alpha=args.alpha if args.alpha is not None else DEFAULT_ALPHA,
                temperature=args.temperature if args.temperature is not None else DEFAULT_TEMPERATURE,
                progress=args.progress)))

    distil_into(args.student, student)

    # 4. The same student on the labels directly: the same number of steps, batch and rate.
    if not (direct / "model.safetensors").is_file():
        timed(f"label-trained {args.student}", lambda: finetune(TrainConfig(
            data=faces, base=f"scratch:{args.student}", out=direct,
            epochs=epochs_for(args.steps, args.faces, args.batch), lr=lr_of(args.student), batch=args.batch,
            size=args.size, augment=False, progress=args.progress)))

    # 5. Each --compare student distilled the same way, from the same teacher targets (the cache is keyed by the
    #    teacher, the pictures and the sizes, not the student: link it in rather than run the teacher again).
    for preset, folder in compared.items():
        if not (folder / "model.safetensors").is_file():
            for cached in (student / CACHE).glob("*.safetensors"):
                (folder / CACHE).mkdir(parents=True, exist_ok=True)
                if not (folder / CACHE / cached.name).exists():
                    os.link(cached, folder / CACHE / cached.name)
        distil_into(preset, folder)
    if not (untrained / "model.safetensors").is_file():
        torch.manual_seed(1)
        SegformerForSemanticSegmentation(face_parser_config(args.student)).save_pretrained(untrained)

    # 6. Scores on held-out ground truth, and agreement with the teacher.
    folders = {"distilled": student, "direct": direct, "untrained": untrained,
               **{f"distilled {p}": f for p, f in compared.items()}}
    scored = {name: evaluate_against_teacher(folder, str(teacher), heldout, size=args.size, teacher_size=args.size)
              for name, folder in folders.items()}
    params = {name: sum(x.numel() for x in SegformerForSemanticSegmentation.from_pretrained(folder).parameters())
              for name, folder in (("teacher", teacher), *folders.items())}
    runs = {name: json.loads((folder / "training.json").read_text())
            for name, folder in (("teacher", teacher), *folders.items()) if name != "untrained"}
    return {"scores": {"teacher": scored["distilled"]["teacher"],
                       **{name: result["pytorch"] for name, result in scored.items()}},
            "runs": runs, "parameters": params, "seconds": seconds}


def curve(history: list[dict], key: str) -> str:
    """A validation curve, one value per epoch (at most the first 3 and last 6 when long)."""
    values = [f"{h[key]:.3f}" for h in history]
    if len(values) > 10:
        values = [*values[:3], "…", *values[-6:]]
    return " → ".join(values)


def report(args: argparse.Namespace, result: dict, argv: list[str]) -> str:
    """The Markdown table and the lines under it."""
    sc, runs, params = result["scores"], result["runs"], result["parameters"]
    t, d, s = runs["teacher"], runs["direct"], runs["distilled"]

    def row(label: str, n_params: int, trained_on: str, x: dict, agreement: str) -> str:
        return (f"| {label} | {n_params / 1e6:.2f} M | {trained_on} | {x['miou']:.4f} | {x['mean_f1']:.4f} | "
                f"{x['pixel_accuracy']:.4f} | {agreement} |")

    def distilled_row(preset: str, name: str) -> str:
        r = runs[name]
        return row(f"student (`{preset}`), distilled", params[name],
                   f"{r['train_photos']} other pictures, **no masks**, {r['steps']} steps", sc[name],
                   f"{sc[name]['agreement']:.2%}")

    teacher_miou = sc["teacher"]["miou"]
    kept = {name: sc[name]["miou"] / teacher_miou for name in ("distilled", "direct")}
    lines = [
        f"{args.heldout} held-out synthetic faces at {args.size} px (seeds {HELDOUT_SEED}–"
        f"{HELDOUT_SEED + args.heldout - 1})",
        "",
        "| model | parameters | trained on | mIoU (ground truth) | mean F1 | pixel accuracy | agreement with teacher |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row(f"teacher (`{args.teacher}`)", params["teacher"],
            f"{t['train_faces']} faces + masks, {t['steps']} steps", sc["teacher"], "—"),
        distilled_row(args.student, "distilled"),
        row(f"student (`{args.student}`), on the labels", params["direct"],
            f"{d['train_faces']} faces + masks, {d['steps']} steps", sc["direct"], f"{sc['direct']['agreement']:.2%}"),
        *(distilled_row(preset, f"distilled {preset}") for preset in args.compare),
        row(f"student (`{args.student}`), untrained", params["untrained"], "—", sc["untrained"],
            f"{sc['untrained']['agreement']:.2%}"),
        "",
        f"student / teacher mIoU: distilled {kept['distilled']:.1%}, trained on the labels {kept['direct']:.1%} "
        f"(aim ≥ {AIM:.0%}: {'reached' if kept['distilled'] >= AIM else 'not reached'}); distilled − label-trained: "
        f"{sc['distilled']['miou'] - sc['direct']['miou']:+.4f} mIoU "
        f"({'distillation wins' if sc['distilled']['miou'] > sc['direct']['miou'] else 'the labels win'}; "
        f"{'the same' if s['steps'] == d['steps'] else 'NOT the same'} number of steps)",
    ]
    for preset in args.compare:
        other = sc[f"distilled {preset}"]["miou"]
        lines.append(f"`{args.student}` − `{preset}`, both distilled, same pictures and steps: "
                     f"{sc['distilled']['miou'] - other:+.4f} mIoU ({sc['distilled']['miou'] / other:.1%} of "
                     f"`{preset}`'s; {other / teacher_miou:.1%} of the teacher's)")
    lines += [
        f"students: batch {args.batch}, {args.steps} steps each, no augmentation; rate "
        + ", ".join(f"`{r['config'].get('student', args.student)}` {r['config']['lr']:g}"
                    for r in [s, *(runs[f'distilled {p}'] for p in args.compare)])
        + f"; distillation alpha {s['config']['alpha']}, temperature {s['config']['temperature']}; "
        f"teacher lr {t['config']['lr']:g}, {t['config']['epochs']:g} epochs",
        "validation curves, one value an epoch (each run's own 10 % split; best epoch kept): teacher mIoU "
        f"{curve(t['history'], 'val_miou')}; distilled agreement {curve(s['history'], 'val_agreement')}; "
        f"label-trained mIoU {curve(d['history'], 'val_miou')}"
        + "".join(f"; distilled `{p}` agreement {curve(runs[f'distilled {p}']['history'], 'val_agreement')}"
                  for p in args.compare),
    ]
    if result["seconds"]:
        lines.append("wall time this run: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in result["seconds"].items()))
    lines += ["", "rerun: .venv/bin/python bench/distil_quality.py " + " ".join(shlex.quote(a) for a in argv)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    print("\n" + report(args, run(args), argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
