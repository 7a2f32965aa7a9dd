"""``gennape distill [--checkpoint DIR] [--out DIR] [--per-family N] [--families F,...] [--epochs E] [--seed S]``

Distils a checkpoint (an ensemble or one estimator, the teacher) into one
small, fast GNN, the student (:mod:`gennape.pretrain.student`): the teacher
predicts ``--per-family`` random networks of every registered family (no
labels, no benchmark data needed), and the student is trained to reproduce
its score (the size term copied exactly), OOD score and uncertainty. Written to
``--out`` (default ``DIR/student``, where ``gennape search`` and ``gennape
predict --fast`` find it); the student records the teacher's ``model.pt``
hash and is ignored once that changes. Prints the held-out fit.

Exit codes: 0 written; 2 bad arguments or unusable checkpoint.
"""

from __future__ import annotations

import argparse

from gennape.commands._options import add_checkpoint

HELP = "distil a checkpoint into one small, fast student network (for search and predict --fast)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "exit codes: 0 written; 2 usage error or unusable checkpoint."
    add_checkpoint(parser, "teacher checkpoint folder")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write the student (default: CHECKPOINT/student, where it is used)")
    parser.add_argument("--per-family", type=int, default=3000, metavar="N",
                        help="random networks of each family the teacher labels (default 3000)")
    parser.add_argument("--families", default=None, metavar="F,...",
                        help="families to draw them from (default: every registered family)")
    parser.add_argument("--epochs", type=int, default=40, metavar="E", help="training epochs (default 40)")
    parser.add_argument("--hidden", type=int, default=32, metavar="H", help="student width (default 32)")
    parser.add_argument("--layers", type=int, default=2, metavar="L", help="student message-passing layers (default 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the networks drawn and the training")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import torch

    from gennape.cg.errors import GennapeError
    from gennape.cg.families import family_names
    from gennape.pretrain.distill import distill, teacher_targets
    from gennape.pretrain.packed import GraphPack
    from gennape.pretrain.progress import progress
    from gennape.transfer.distill import TEACHER_HASH, distill_cgs, student_dir, teacher_hash
    from gennape.transfer.model import default_checkpoint, load_estimator

    for name in ("per_family", "epochs", "hidden", "layers"):
        if getattr(args, name) < 1:
            raise GennapeError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    families = None
    if args.families is not None:
        families = [f.strip() for f in args.families.split(",") if f.strip()]
        unknown = [f for f in families if f not in family_names()]
        if unknown or not families:
            raise GennapeError(f"--families: unknown {', '.join(unknown) or '(none given)'}; "
                               f"valid: {', '.join(family_names())}")
    checkpoint = Path(args.checkpoint) if args.checkpoint is not None else default_checkpoint()
    teacher = load_estimator(checkpoint)
    out = Path(args.out) if args.out is not None else student_dir(checkpoint)
    if out.exists() and not out.is_dir():
        raise GennapeError(f"{out}: exists and is not a folder")

    t0 = time.perf_counter()
    names = families or list(family_names())
    which: list[str] = []

    def graphs():
        for name, cg in distill_cgs(args.per_family, args.seed, families):
            which.append(name)
            yield cg

    with progress(total=args.per_family * len(names), desc="building random networks", unit="net") as bar:
        pack = GraphPack.from_items(graphs(), progress=bar.update)
    t1 = time.perf_counter()
    with progress(total=len(pack), desc="teacher predictions", unit="net") as bar:
        targets = teacher_targets(teacher, pack, progress=bar.update)
    t2 = time.perf_counter()
    with progress(total=args.epochs, desc="training the student", unit="epoch") as bar:
        student = distill(teacher, pack, hidden=args.hidden, num_layers=args.layers, epochs=args.epochs,
                          seed=args.seed, targets=targets, teacher_info={TEACHER_HASH: teacher_hash(checkpoint)},
                          on_epoch=lambda e, loss: bar.update())
    t3 = time.perf_counter()
    counts = {name: which.count(name) for name in dict.fromkeys(which)}
    student.distill_info_.update({"families": counts, "seconds": {
        "graphs": round(t1 - t0, 1), "teacher": round(t2 - t1, 1), "training": round(t3 - t2, 1)}})
    student.metadata_ = {"command": "gennape distill", "teacher_checkpoint": str(args.checkpoint or "default")}
    with torch.no_grad():
        student.save(out)
    info = student.distill_info_
    print(f"distilled {type(teacher).__name__} into a {args.layers}-layer, {args.hidden}-wide student on "
          f"{info['n_graphs']} networks ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    print(f"held-out {info['n_val']}: Spearman to the teacher's score {info['val_score_spearman']:.4f}, "
          f"R^2 {info['val_score_r2']:.4f}; OOD-score Spearman {info['val_ood_spearman']:.4f}")
    print(f"took {t3 - t0:.0f} s (graphs {t1 - t0:.0f}, teacher {t2 - t1:.0f}, training {t3 - t2:.0f}); wrote {out}")
    return 0
