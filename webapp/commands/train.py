"""``face-studio train``: fine-tune a SegFormer face parser on images/ + masks/ or CelebAMask-HQ."""

from __future__ import annotations

import argparse
import sys

HELP = "Fine-tune a SegFormer face parser (hub id or folder) on labelled faces; keeps the best by val mIoU."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR",
                   help="labelled faces: images/ + masks/ (label ids 0..18), or CelebAMask-HQ as downloaded")
    p.add_argument("--base", required=True, metavar="MODEL",
                   help="hub id or save_pretrained folder: jonathandinu/face-parsing, nvidia/mit-b0, …")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (best model + checkpoints/)")
    p.add_argument("--epochs", type=float, default=10.0, help="training epochs (default: 10)")
    p.add_argument("--lr", type=float, default=6e-5, help="learning rate (default: 6e-5; ~1e-3 from scratch)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default: 8)")
    p.add_argument("--size", type=int, default=512, help="training resolution, a multiple of 32 (default: 512)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share held out for validation (default: 0.1)")
    p.add_argument("--val-data", default=None, metavar="DIR", help="a separate labelled folder for validation")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, head init, shuffling (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT/checkpoints")
    p.add_argument("--no-augment", action="store_true", help="no flip/scale/rotate/colour augmentation")
    p.add_argument("--no-check", action="store_true", help="skip loading every face once before training")
    p.add_argument("--workers", type=int, default=None, help="data-loading processes (default: 0 CPU, 4 GPU)")
    p.add_argument("--revision", default=None, help="hub revision of --base")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from face_studio.errors import UserError
    from face_studio.training.train import TrainConfig, finetune

    try:
        cfg = TrainConfig(data=args.data, base=args.base, out=args.out, epochs=args.epochs, lr=args.lr,
                          batch=args.batch, size=args.size, val_fraction=args.val_fraction, val_data=args.val_data,
                          seed=args.seed, resume=args.resume, augment=not args.no_augment, workers=args.workers,
                          revision=args.revision, check_data=not args.no_check, progress=not args.quiet)
        summary = finetune(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    best = summary["best"]
    print(f"best val mIoU {best['val_miou']:.4f} (mean F1 {best['val_mean_f1']:.4f}) at epoch {best['epoch']:g}; "
          f"model saved to {args.out} (model.safetensors)")
    return 0
