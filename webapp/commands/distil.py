"""``face-studio distil``: train a small SegFormer student from a big teacher on unlabelled face photos."""

from __future__ import annotations

import argparse

HELP = ("Distil a small, fast SegFormer student (mit-b0-d64, tiny, mit-b0, mit-b1) from a big face parser on your own "
        "unlabelled photos; keeps the best by agreement with the teacher.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from face_studio.training.distil import (
        DEFAULT_ALPHA,
        DEFAULT_LR,
        DEFAULT_STUDENT,
        DEFAULT_TEMPERATURE,
        STUDENTS,
    )

    p.add_argument("--teacher", required=True, metavar="DIR_OR_HUB_ID",
                   help="the big parser: hub id (jonathandinu/face-parsing) or save_pretrained folder")
    p.add_argument("--images", required=True, metavar="DIR",
                   help="face photos, no masks (JPEG, PNG, WebP; any size): the folder, or its images/ subfolder")
    p.add_argument("--student", default=DEFAULT_STUDENT, choices=STUDENTS,
                   help=f"student size (default: {DEFAULT_STUDENT}, the live student: MiT-B0's encoder with a "
                        "64-wide decoder, 2.7x fewer FLOPs than mit-b0)")
    p.add_argument("--size", type=int, default=256, help="student input side, a multiple of 32 (default: 256)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (best student + checkpoints/)")
    p.add_argument("--epochs", type=float, default=30.0, help="training epochs (default: 30)")
    p.add_argument("--init", default=None, metavar="DIR_OR_HUB_ID",
                   help="start from these weights (e.g. nvidia/mit-b0 for --student mit-b0-d64 or mit-b0) instead of "
                        "random")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"share of the soft KL term; the rest is cross-entropy on the teacher's argmax "
                        f"(default: {DEFAULT_ALPHA})")
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                   help=f"softmax temperature of the KL term (default: {DEFAULT_TEMPERATURE})")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of photos held out to measure agreement (default: 0.1)")
    p.add_argument("--teacher-size", type=int, default=None,
                   help="teacher input side (default: its preprocessor_config, 512 for jonathandinu/face-parsing)")
    p.add_argument("--revision", default=None, help="hub revision of --teacher")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, init, shuffling (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT/checkpoints")
    p.add_argument("--no-augment", action="store_true", help="no mirror / colour augmentation")
    p.add_argument("--workers", type=int, default=None, help="data-loading processes (default: 0 CPU, 4 GPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from face_studio.training.distil import DistilConfig, distil

    cfg = DistilConfig(teacher=args.teacher, images=args.images, out=args.out, student=args.student, size=args.size,
                       epochs=args.epochs, lr=args.lr, batch=args.batch, alpha=args.alpha,
                       temperature=args.temperature, val_fraction=args.val_fraction, seed=args.seed,
                       resume=args.resume, augment=not args.no_augment, init=args.init,
                       teacher_size=args.teacher_size, revision=args.revision, workers=args.workers,
                       progress=not args.quiet)
    summary = distil(cfg)
    best = summary["best"]
    print(f"best agreement with the teacher {best['val_agreement']:.2%} (mIoU vs teacher "
          f"{best['val_miou_vs_teacher']:.4f}) at epoch {best['epoch']:g}, on {summary['val_photos']} held-out "
          f"photos; student saved to {args.out} (model.safetensors)")
    return 0
