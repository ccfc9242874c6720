"""How much of a teacher's accuracy a distilled student keeps, on synthetic faces — and what labels alone give.

1. ``synth`` labelled faces (seeds 0..N-1), unlabelled pictures (seeds 200000.., their masks deleted) and held-out
   faces (seeds 100000..), all at --size.
2. ``train`` a teacher on the labelled faces (masks used), for --teacher-epochs.
3. ``distil`` the student from the teacher on the unlabelled pictures (no masks exist to read).
4. ``train`` the same student on the labelled faces' masks directly: the same number of faces, epochs, batch and
   learning rate as 3 (so the same number of steps), no augmentation in either.
5. ``evaluate --teacher``: every model against the held-out ground truth, and its agreement with the teacher; an
   untrained student for scale.

Prints a Markdown table, the student's share of the teacher's mIoU (distilled and label-trained) and the command
that reruns it. Synthetic faces, not photos: this measures how well the distillation path (teacher logits on
unlabelled pictures) transfers a parser, not accuracy on real faces.

    .venv/bin/python bench/distil_quality.py --work /tmp/distil-bench
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AIM = 0.95  # share of the teacher's mIoU the distilled student should keep (issue 18)
HELDOUT_SEED, PICTURES_SEED = 100_000, 200_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from face_studio.training.distil import DEFAULT_STUDENT, STUDENTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="runs/distil-bench", help="working folder (reused: finished steps are kept)")
    p.add_argument("--faces", type=int, default=400, help="labelled synthetic faces (teacher, label-trained student)")
    p.add_argument("--pictures", type=int, default=None,
                   help="unlabelled pictures the student is distilled on (default: as many as --faces)")
    p.add_argument("--heldout", type=int, default=100, help="held-out faces for the scores")
    p.add_argument("--size", type=int, default=96, help="input side of teacher and students")
    p.add_argument("--teacher", default="tiny", help="teacher preset (scratch:PRESET)")
    p.add_argument("--teacher-epochs", type=float, default=6)
    p.add_argument("--teacher-lr", type=float, default=5e-3)
    p.add_argument("--student", default=DEFAULT_STUDENT, choices=STUDENTS, help="student preset")
    p.add_argument("--epochs", type=float, default=3, help="epochs of each student (distilled and label-trained)")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--lr", type=float, default=None, help="both students' rate (default: distil's for the student)")
    p.add_argument("--batch", type=int, default=8)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Make whatever is missing under ``args.work`` and score it; returns the numbers the table prints."""
    import torch
    from transformers import SegformerForSemanticSegmentation

    from face_studio.configs import face_parser_config
    from face_studio.training.distil import DEFAULT_ALPHA, DEFAULT_LR, DEFAULT_TEMPERATURE, DistilConfig, distil
    from face_studio.training.evaluate import evaluate_against_teacher
    from face_studio.training.synth import write_dataset
    from face_studio.training.train import TrainConfig, finetune

    work = Path(args.work)
    faces, pictures, heldout = work / "faces", work / "pictures", work / "heldout"
    teacher, student, direct, untrained = (work / n for n in ("teacher", "student", "direct", "untrained"))
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.student]
    seconds: dict[str, float] = {}

    # 1. Faces; the distillation pictures lose their masks, so nothing can read them.
    if not (faces / "faces.jsonl").is_file():
        write_dataset(faces, args.faces, args.size, 0, progress=False)
    if not (heldout / "faces.jsonl").is_file():
        write_dataset(heldout, args.heldout, args.size, HELDOUT_SEED, progress=False)
    if not (pictures / "faces.jsonl").is_file():
        write_dataset(pictures, args.pictures or args.faces, args.size, PICTURES_SEED, progress=False)
    shutil.rmtree(pictures / "masks", ignore_errors=True)

    # 2. Teacher (labelled faces).
    if not (teacher / "model.safetensors").is_file():
        started = time.time()
        finetune(TrainConfig(data=faces, base=f"scratch:{args.teacher}", out=teacher, epochs=args.teacher_epochs,
                             lr=args.teacher_lr, batch=args.batch, size=args.size, augment=False, progress=False))
        seconds["teacher"] = time.time() - started

    # 3. Student distilled on pictures the teacher never saw, with no masks.
    if not (student / "model.safetensors").is_file():
        started = time.time()
        distil(DistilConfig(teacher=str(teacher), images=pictures / "images", out=student, student=args.student,
                            size=args.size, epochs=args.epochs, lr=lr, batch=args.batch, augment=False,
                            alpha=args.alpha if args.alpha is not None else DEFAULT_ALPHA,
                            temperature=args.temperature if args.temperature is not None else DEFAULT_TEMPERATURE,
                            progress=False))
        seconds["distilled student"] = time.time() - started

    # 4. The same student on the labels directly, same budget.
    if not (direct / "model.safetensors").is_file():
        started = time.time()
        finetune(TrainConfig(data=faces, base=f"scratch:{args.student}", out=direct, epochs=args.epochs, lr=lr,
                             batch=args.batch, size=args.size, augment=False, progress=False))
        seconds["label-trained student"] = time.time() - started
    if not (untrained / "model.safetensors").is_file():
        torch.manual_seed(1)
        SegformerForSemanticSegmentation(face_parser_config(args.student)).save_pretrained(untrained)

    # 5. Scores on held-out ground truth, and agreement with the teacher.
    scored = {name: evaluate_against_teacher(folder, str(teacher), heldout, size=args.size, teacher_size=args.size)
              for name, folder in (("distilled", student), ("direct", direct), ("untrained", untrained))}
    params = {name: sum(x.numel() for x in SegformerForSemanticSegmentation.from_pretrained(folder).parameters())
              for name, folder in (("teacher", teacher), ("student", untrained))}
    return {"scores": {"teacher": scored["distilled"]["teacher"],
                       **{name: result["pytorch"] for name, result in scored.items()}},
            "runs": {name: json.loads((folder / "training.json").read_text())
                     for name, folder in (("teacher", teacher), ("distilled", student), ("direct", direct))},
            "parameters": params, "lr": lr, "seconds": seconds}


def report(args: argparse.Namespace, result: dict, argv: list[str]) -> str:
    """The Markdown table and the lines under it."""
    sc, runs, params = result["scores"], result["runs"], result["parameters"]
    t, d, s = runs["teacher"], runs["direct"], runs["distilled"]

    def row(label: str, n_params: int, trained_on: str, x: dict, agreement: str) -> str:
        return (f"| {label} | {n_params / 1e6:.2f} M | {trained_on} | {x['miou']:.4f} | {x['mean_f1']:.4f} | "
                f"{x['pixel_accuracy']:.4f} | {agreement} |")

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
        row(f"student (`{args.student}`), distilled", params["student"],
            f"{s['train_photos']} other pictures, **no masks**, {s['steps']} steps", sc["distilled"],
            f"{sc['distilled']['agreement']:.2%}"),
        row(f"student (`{args.student}`), on the labels", params["student"],
            f"{d['train_faces']} faces + masks, {d['steps']} steps", sc["direct"], f"{sc['direct']['agreement']:.2%}"),
        row(f"student (`{args.student}`), untrained", params["student"], "—", sc["untrained"],
            f"{sc['untrained']['agreement']:.2%}"),
        "",
        f"student / teacher mIoU: distilled {kept['distilled']:.1%}, trained on the labels {kept['direct']:.1%} "
        f"(aim ≥ {AIM:.0%}: {'reached' if kept['distilled'] >= AIM else 'not reached'}); distilled − label-trained: "
        f"{sc['distilled']['miou'] - sc['direct']['miou']:+.4f} mIoU "
        f"({'distillation wins' if sc['distilled']['miou'] > sc['direct']['miou'] else 'the labels win'})",
        f"students: lr {result['lr']:g}, batch {args.batch}, {args.epochs:g} epochs, no augmentation; distillation "
        f"alpha {s['config']['alpha']}, temperature {s['config']['temperature']}; teacher lr {args.teacher_lr:g}, "
        f"{args.teacher_epochs:g} epochs",
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
