"""``gennape pretrain``: train the estimator on NAS-Bench-101, or on several
labelled families at once (``--families``, the default checkpoint's recipe), and
save a checkpoint.

``torchrun --nproc-per-node N -m gennape pretrain ...`` trains one model in N
data-parallel processes (:mod:`gennape.pretrain.distributed`).
"""

from __future__ import annotations

import argparse

from gennape.commands._options import command_line

HELP = "pretrain the estimator on NAS-Bench-101, or on several families (--families all: the default's recipe)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The estimator's own defaults (its module imports no torch: building the parser stays cheap).
    from gennape.pretrain.estimator import GennapeEstimator
    from gennape.pretrain.run_families import RECIPE
    from gennape.pretrain.size_measure import SIZE_MEASURES

    default = GennapeEstimator().get_params()
    parser.add_argument("--data", metavar="PATH",
                        help="NB-101 labelled JSON(.gz) or official nasbench tfrecord "
                             "(default: nb101/nb101_30k_labelled.json.gz in the data folder)")
    parser.add_argument("--out", metavar="DIR", required=True, help="checkpoint directory to write")
    parser.add_argument("--families", metavar="NAME,...",
                        help="pretrain on these labelled families at once (or 'all'; the shipped default "
                             "checkpoint) instead of NB-101 alone; see README for the shipped command")
    parser.add_argument("--per-family", type=int, default=1000, metavar="N",
                        help="with --families: training networks per family (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=default["epochs"],
                        help="encoder pretraining epochs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=default["seed"], help="random seed (default %(default)s)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=default["device"])
    parser.add_argument("--limit", type=int, metavar="N", help="use only N architectures (hash-chosen)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from DIR/partial_state.pt of an interrupted run")
    parser.add_argument("--num-clusters", type=int, default=default["num_clusters"], metavar="K",
                        help="fuzzy clusters / heads (default %(default)s)")
    parser.add_argument("--conv", default=default["conv"],
                        help="GNN convolution: graph, gcn, gin, sage, gat (default %(default)s)")
    parser.add_argument("--target-transform", default=default["target_transform"],
                        help="quantile, logit_err or raw (default %(default)s)")
    parser.add_argument("--head-epochs", type=int, default=default["head_epochs"],
                        help="head-training epochs (default %(default)s)")
    parser.add_argument("--readout", default=default["readout"],
                        help="GNN readout: sum, mean, max, mean+max, ... (default %(default)s; "
                             "the shipped checkpoint uses mean)")
    parser.add_argument("--op-encoding", default=default["op_encoding"],
                        help="how op types enter the GNN: class (op classes) or op (one column per op type) "
                             "(default %(default)s)")
    parser.add_argument("--members", type=int, default=1,
                        help="train a seed ensemble of N members (seeds SEED ... SEED+N-1) whose scores are averaged "
                             "(default 1; the shipped checkpoint has 3)")
    parser.add_argument("--no-capacity-term", dest="capacity_term", action="store_false",
                        default=default["capacity_term"],
                        help="leave out the linear term in log weight count added to the heads' score")
    parser.add_argument("--size-measure", choices=tuple(SIZE_MEASURES), default=default["size_measure"],
                        help="the size the size term reads: weights (log weight count), macs (log MACs; the shipped "
                             "checkpoint's) or weights_macs (their mean) (default %(default)s)")
    parser.add_argument("--head-trust", choices=("constant", "ood"), default=default["head_trust"],
                        help="ood: pull the heads' score toward their training mean on networks unlike the "
                             "training ones, by their OOD score (default %(default)s)")
    parser.add_argument("--head-shrink", type=float, default=1.0, metavar="S",
                        help="with --families: multiply the heads' weight against size, as fitted on out-of-family "
                             "head scores, by S in (0, 1] (default %(default)s; the shipped checkpoint uses "
                             f"{RECIPE['head_shrink']:g})")
    parser.add_argument("--no-feature-clamp", dest="feature_clamp", action="store_false",
                        default=default["feature_clamp"],
                        help="feed node features beyond the training range to the GNN unclamped")
    parser.add_argument("--supervised-weight", type=float, default=default["supervised_weight"],
                        help="weight of a supervised term in encoder pretraining (default %(default)s: "
                             "contrastive only, which transfers best)")
    parser.add_argument("--views", action="store_true",
                        help="add graph-level views (other stem width / cell count / resolution) to the "
                             "contrastive pairs (default: masking only)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    import torch

    from gennape.cg.errors import GennapeError
    from gennape.pretrain.distributed import launched_rank
    from gennape.pretrain.run import pretrain_nb101

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise GennapeError("--device cuda: no CUDA device is available to torch")
    if args.members < 1:
        raise GennapeError(f"--members {args.members}: need at least 1")
    if args.limit is not None and args.limit < 20:
        raise GennapeError(f"--limit {args.limit}: need at least 20 architectures")
    params = dict(epochs=args.epochs, seed=args.seed, device=args.device, num_clusters=args.num_clusters,
                  conv=args.conv, target_transform=args.target_transform, head_epochs=args.head_epochs,
                  readout=args.readout, supervised_weight=args.supervised_weight,
                  op_encoding=args.op_encoding, capacity_term=args.capacity_term,
                  feature_clamp=args.feature_clamp, size_measure=args.size_measure, head_trust=args.head_trust)
    if args.families:
        return _pretrain_families(args, {**params, "head_shrink": args.head_shrink})
    if args.head_shrink != 1.0:
        raise GennapeError("--head-shrink: a multi-family option (the size term fitted across --families)")
    data = args.data
    if data is None:
        from gennape.cg.data import data_file

        data = args.data = str(data_file("nb101", "nb101_30k_labelled.json.gz"))
    try:
        pretrain_nb101(data, args.out, limit=args.limit, resume=args.resume, views=args.views, members=args.members,
                       command=command_line(args),
                       log=lambda line: print(line, flush=True), **params)
    except ValueError as err:  # a bad option value (conv, transform, ...) names the valid ones
        raise GennapeError(str(err)) from None
    if launched_rank() == 0:  # under torchrun, rank 0 wrote it
        print(f"checkpoint written to {args.out}")
    return 0


def _pretrain_families(args: argparse.Namespace, params: dict) -> int:
    from gennape.cg.errors import GennapeError
    from gennape.cg.families import family_names
    from gennape.pretrain.run_families import pretrain_all_families

    names = family_names() if args.families == "all" else tuple(f.strip() for f in args.families.split(",") if f.strip())
    unknown = [n for n in names if n not in family_names()]
    if unknown or not names:
        raise GennapeError(f"--families {args.families}: unknown family {', '.join(unknown) or '(none given)'}; "
                           f"valid: all, or some of {', '.join(family_names())}")
    if args.data or args.limit or args.resume or args.views:
        raise GennapeError("--families reads every family from the data folder: --data, --limit, --resume and "
                           "--views are NB-101-only options")
    try:
        pretrain_all_families(args.out, families=names, per_family=args.per_family, members=args.members,
                              command=command_line(args), log=lambda line: print(line, flush=True), **params)
    except ValueError as err:
        raise GennapeError(str(err)) from None
    print(f"checkpoint written to {args.out}")
    return 0

