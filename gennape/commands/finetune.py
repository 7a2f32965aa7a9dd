"""``gennape finetune --labels LABELS.csv [--checkpoint DIR] --out DIR [--samples N] [--epochs E] [--seed S]``

Fine-tunes a checkpoint on labelled networks of a new family (LABELS.csv:
columns ``onnx,accuracy``, see :mod:`gennape.transfer.labels`) and saves a checkpoint
whose predictions are on that family's accuracy scale. By default
(``--mode select``) the pretrained model stays frozen and a small correction on
its zero-shot score, the networks' sizes and its embeddings is fitted, the
recipe chosen by leave-one-out on the labels (the zero-shot ranking is one of
the candidates); ``--mode encoder`` trains the GNN encoder and the fuzzy heads
end to end (cluster centres fixed), ``--mode heads`` the heads only (see
:mod:`gennape.transfer.finetune`). ``DIR/labels_used.csv`` lists the rows
used, for ``gennape evaluate --exclude DIR/labels_used.csv``.

Exit codes: 0 ok; 1 saved, but some files failed to convert (reported on
stderr, skipped); 2 bad input or too few usable rows (nothing saved).
"""

from __future__ import annotations

import argparse

from gennape.commands._options import add_checkpoint, add_input_shape, command_line

HELP = "fine-tune a checkpoint on a few labelled networks of a new family"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # GennapeEstimator.finetune's own defaults (its module imports no torch: the parser stays cheap).
    from gennape.pretrain.base import keyword_defaults
    from gennape.pretrain.estimator import GennapeEstimator
    from gennape.transfer.finetune import DEFAULT_MODE, MODES

    default = keyword_defaults(GennapeEstimator.finetune)
    parser.epilog = 'exit codes: 0 saved; 1 saved, but some files failed to convert (reported and skipped); 2 usage or input error, nothing saved. DIR/labels_used.csv lists the rows used (for gennape evaluate --exclude).'
    parser.add_argument("--labels", required=True, metavar="LABELS.csv",
                        help="CSV with columns onnx,accuracy (paths relative to the CSV; percent or fraction)")
    add_checkpoint(parser, "checkpoint to start from")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder of the fine-tuned checkpoint")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="fine-tune on N rows drawn with --seed (default: all rows)")
    parser.add_argument("--epochs", type=int, default=default["epochs"], metavar="E",
                        help="training epochs of --mode encoder / heads (default %(default)s)")
    parser.add_argument("--seed", type=int, default=default["seed"], metavar="S",
                        help="seed of the row draw and training (default %(default)s)")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                        help="select: keep the model frozen and fit a correction chosen by leave-one-out on "
                             "the labels (seconds); encoder: train encoder + heads; heads: the heads only "
                             "(default %(default)s)")
    size_term = parser.add_mutually_exclusive_group()
    size_term.add_argument("--keep-size-term", dest="refit_size_term", action="store_const", const="keep",
                           default=default["refit_size_term"],
                           help="--mode encoder / heads: keep the pretrained size slope (default: refit it on "
                                "the labels, 10 or more rows, only where leave-one-out on them says it predicts "
                                "them better)")
    size_term.add_argument("--refit-size-term", dest="refit_size_term", action="store_const", const="refit",
                           help="--mode encoder / heads: refit the size slope on the labels (10 or more rows) "
                                "without checking")
    add_input_shape(parser)


def self_check_line(check: dict) -> str:
    """One line of :func:`gennape.transfer.finetune.self_check`'s figures."""
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    spread = f" (each ± {check['std_error']:.2f})" if check["std_error"] is not None else ""
    line = (f"Spearman on these {check['n']} labels{spread}: zero-shot {f(check['zero_shot'])}, "
            f"#params {f(check['params'])}, FLOPs {f(check['flops'])}")
    if check.get("cross_validated") is not None:
        line += f", the correction {check['folds']}-fold cross-validated {f(check['cross_validated'])}"
    return line


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from gennape.cg.errors import GennapeError
    from gennape.transfer.finetune import DEFAULT_EPOCHS, FinetuneConfig, finetune_labels
    from gennape.transfer.labels import read_labels
    from gennape.transfer.model import load_estimator

    if args.samples is not None and args.samples < 2:
        raise GennapeError(f"--samples must be at least 2, got {args.samples}")
    if args.epochs is not None and args.epochs < 1:
        raise GennapeError(f"--epochs must be at least 1, got {args.epochs}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise GennapeError(f"{out}: exists and is not a folder")
    labels = read_labels(args.labels)
    estimator = load_estimator(args.checkpoint)
    cfg = FinetuneConfig(mode=args.mode, epochs=args.epochs or DEFAULT_EPOCHS, seed=args.seed,
                         refit_size_term=args.refit_size_term)
    what = {"select": "a frozen-model correction chosen by leave-one-out", "encoder": "encoder + heads",
            "heads": "heads"}[args.mode]
    est = finetune_labels(labels, estimator, cfg, samples=args.samples, out=out, input_shape=args.input_shape,
                          command=command_line(args))
    report = est.finetune_report_
    for failure in report.failures:
        print(f"gennape finetune: {failure.path}: {failure.error}", file=sys.stderr)
    how = f"{cfg.epochs} epochs, seed {cfg.seed}" if args.mode != "select" else "no training"
    print(f"fine-tuned {what} on {len(report.used)} of {len(labels)} labelled model(s) "
          f"({labels.scale} labels, {how}) -> {out}")
    print(self_check_line(report.self_check))
    if report.failures:
        print(f"gennape finetune: {len(report.failures)} file(s) failed and were skipped", file=sys.stderr)
        return 1
    return 0
