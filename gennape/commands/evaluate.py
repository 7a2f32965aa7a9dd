"""``gennape evaluate --labels LABELS.csv [--checkpoint DIR] [--exclude LABELS_USED.csv] [--json] [--plot OUT.png]``

Predicts every model listed in LABELS.csv (columns ``onnx,accuracy``; see
:mod:`gennape.transfer.labels`) and prints Spearman, Kendall tau-b, NDCG@10, precision
of the top 10 % and MAE, and beside them the Spearman of the two size
baselines on the same models (ranking by the CG's parameter count and by its
MACs): a checkpoint that does not beat them has learned nothing about the family.
``--exclude`` drops the rows of another labels file (the ones a fine-tune used).
``--json`` prints one JSON object with the keys ``n, spearman, kendall, ndcg10,
precision_top10, mae, params_spearman, flops_spearman, failed, excluded`` (MAE as
a fraction). ``--plot`` draws predicted against true accuracy (needs matplotlib).

Exit codes: 0 ok; 1 some files failed (reported on stderr, left out of the
metrics); 2 bad input or fewer than two models predicted.
"""

from __future__ import annotations

import argparse

from gennape.commands._options import add_checkpoint, add_input_shape, add_unknown_ops

HELP = "measure rank correlation of predictions against labels"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = 'exit codes: 0 ok; 1 some files failed (reported, left out of the metrics); 2 usage or input error, or fewer than two models predicted.'
    parser.add_argument("--labels", required=True, metavar="LABELS.csv",
                        help="CSV with columns onnx,accuracy (paths relative to the CSV)")
    add_checkpoint(parser)
    parser.add_argument("--exclude", metavar="LABELS_USED.csv", default=None,
                        help="leave out the models listed in this labels file (e.g. the fine-tuning set)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="draw predicted vs true accuracy into this image (needs matplotlib)")
    add_input_shape(parser)
    add_unknown_ops(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from gennape.transfer.evaluate import evaluate_labels, format_metrics
    from gennape.transfer.labels import read_labels
    from gennape.transfer.model import load_estimator
    from gennape.transfer.predict import Progress, json_ready

    labels = read_labels(args.labels)
    exclude = read_labels(args.exclude) if args.exclude else None
    if args.plot:
        from pathlib import Path

        from gennape.cg.errors import GennapeError
        from gennape.transfer.plot import _pyplot

        if not Path(args.plot).parent.is_dir():
            raise GennapeError(f"{args.plot}: folder {Path(args.plot).parent} does not exist")
        _pyplot()  # fail before the slow part when matplotlib is missing
    estimator = load_estimator(args.checkpoint)
    progress = Progress("gennape evaluate")
    try:
        ev = evaluate_labels(labels, estimator, exclude=exclude, input_shape=args.input_shape,
                             unknown_ops=args.unknown_ops, progress=progress)
    finally:
        progress.close()
    for failure in ev.failures:
        print(f"gennape evaluate: {failure.path}: {failure.error}", file=sys.stderr)
    if args.json:
        print(json.dumps(json_ready(ev.to_dict())))
    else:
        print(format_metrics(ev, args.labels))
    if args.plot:
        from gennape.transfer.plot import plot_predictions

        plot_predictions(ev.pred, ev.true, args.plot, title=str(args.labels), metrics=ev.metrics)
    return 1 if ev.failures else 0
