"""How much of a teacher's accuracy a distilled student keeps, on synthetic faces.

1. ``synth`` labelled faces (seeds 0..N-1) and held-out faces (seeds 100000..), at --size.
2. ``train`` a teacher on the labelled faces (masks used).
3. ``distil`` a student from the teacher on the same faces' *pictures only* (the masks are never read).
4. ``evaluate --teacher``: both models against the held-out ground truth, and the student's agreement with the
   teacher; an untrained student of the same size for scale.

Prints a Markdown table and the command that reruns it. Synthetic faces, not photos: this measures how well the
distillation path (teacher logits on unlabelled pictures) transfers a parser, not accuracy on real faces.

    .venv/bin/python bench/distil_quality.py --work /tmp/distil-bench
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="runs/distil-bench", help="working folder (reused: finished steps are kept)")
    p.add_argument("--faces", type=int, default=400, help="labelled synthetic faces for the teacher")
    p.add_argument("--heldout", type=int, default=100, help="held-out faces for the scores")
    p.add_argument("--size", type=int, default=64, help="input side of teacher and student")
    p.add_argument("--teacher", default="tiny", help="teacher preset (scratch:PRESET)")
    p.add_argument("--teacher-epochs", type=float, default=10)
    p.add_argument("--teacher-lr", type=float, default=5e-3)
    p.add_argument("--student", default="tiny", help="student preset: tiny, mit-b0, mit-b1")
    p.add_argument("--epochs", type=float, default=10, help="distillation epochs")
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()

    from face_studio.training.distil import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, DistilConfig, distil
    from face_studio.training.evaluate import evaluate_against_teacher
    from face_studio.training.synth import write_dataset
    from face_studio.training.train import TrainConfig, finetune

    work = Path(args.work)
    faces, heldout = work / "faces", work / "heldout"
    teacher, student, untrained = work / "teacher", work / "student", work / "untrained"
    seconds: dict[str, float] = {}

    # 1. Faces.
    if not (faces / "faces.jsonl").is_file():
        write_dataset(faces, args.faces, args.size, 0)
    if not (heldout / "faces.jsonl").is_file():
        write_dataset(heldout, args.heldout, args.size, 100_000)

    # 2. Teacher (labelled faces).
    if not (teacher / "model.safetensors").is_file():
        started = time.time()
        finetune(TrainConfig(data=faces, base=f"scratch:{args.teacher}", out=teacher, epochs=args.teacher_epochs,
                             lr=args.teacher_lr, batch=args.batch, size=args.size, augment=False))
        seconds["teacher"] = time.time() - started

    # 3. Student (the pictures only: distil reads faces/images/, never faces/masks/).
    if not (student / "model.safetensors").is_file():
        started = time.time()
        distil(DistilConfig(teacher=str(teacher), images=faces / "images", out=student, student=args.student,
                            size=args.size, epochs=args.epochs, lr=args.lr, batch=args.batch,
                            alpha=args.alpha if args.alpha is not None else DEFAULT_ALPHA,
                            temperature=args.temperature if args.temperature is not None else DEFAULT_TEMPERATURE))
        seconds["student"] = time.time() - started
    if not (untrained / "model.safetensors").is_file():
        import torch
        from transformers import SegformerForSemanticSegmentation

        from face_studio.configs import face_parser_config

        torch.manual_seed(1)
        SegformerForSemanticSegmentation(face_parser_config(args.student)).save_pretrained(untrained)

    # 4. Scores on held-out ground truth, and agreement with the teacher.
    scores = evaluate_against_teacher(student, str(teacher), heldout, size=args.size, teacher_size=args.size)
    base = evaluate_against_teacher(untrained, str(teacher), heldout, size=args.size, teacher_size=args.size)
    t, s, u = scores["teacher"], scores["pytorch"], base["pytorch"]
    summary = json.loads((student / "training.json").read_text())
    t_summary = json.loads((teacher / "training.json").read_text())
    from transformers import SegformerForSemanticSegmentation

    t_params = sum(x.numel() for x in SegformerForSemanticSegmentation.from_pretrained(teacher).parameters())

    print(f"\n{args.heldout} held-out synthetic faces at {args.size} px (seeds 100000–{100_000 + args.heldout - 1})\n")
    print("| model | parameters | trained on | mIoU (ground truth) | mean F1 | pixel accuracy "
          "| agreement with teacher |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| teacher (`{args.teacher}`) | {t_params / 1e6:.2f} M | {t_summary['train_faces']} faces + masks, "
          f"{t_summary['steps']} steps | {t['miou']:.4f} | {t['mean_f1']:.4f} | {t['pixel_accuracy']:.4f} | — |")
    print(f"| student (`{args.student}`), distilled | {summary['parameters'] / 1e6:.2f} M | "
          f"{summary['train_photos']} pictures, no masks, {summary['steps']} steps | {s['miou']:.4f} | "
          f"{s['mean_f1']:.4f} | {s['pixel_accuracy']:.4f} | {s['agreement']:.2%} |")
    print(f"| student (`{args.student}`), untrained | {summary['parameters'] / 1e6:.2f} M | — | {u['miou']:.4f} | "
          f"{u['mean_f1']:.4f} | {u['pixel_accuracy']:.4f} | {u['agreement']:.2%} |")
    print(f"\nstudent / teacher mIoU: {s['miou'] / t['miou']:.1%} (aim ≥ 90 %); mIoU of student vs teacher labels "
          f"{s['miou_vs_teacher']:.4f}")
    print(f"distillation: alpha {summary['config']['alpha']}, temperature {summary['config']['temperature']}, "
          f"lr {summary['learning_rate']:g}, {summary['epochs']:g} epochs; best held-out agreement during training "
          f"{summary['best']['val_agreement']:.2%}")
    if seconds:
        print("wall time this run: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items()))
    print("\nrerun: .venv/bin/python bench/distil_quality.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
