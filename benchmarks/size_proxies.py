"""Data-free size proxies against the size baselines, per family (issue 15's ideas).

Before a proxy is worth a graph-level input or a size measure it must rank
some family better than ``#params`` and MACs, the baselines a zero-shot
predictor has to beat. This prints, on each leave-one-family-out family's
scored draw (the draw ``benchmarks/lofo.py`` scores: ``EVAL_SEED``,
``--per-family`` networks), the Spearman with the family's accuracy of:

* ``params``, ``macs``: ``CG.params`` and ``CG.macs``;
* ``synflow``: the SynFlow score (Tanaka et al., 2020; as NASLib computes it:
  all-ones input, every weight replaced by its absolute value, batch norms at
  their initial identity, ``sum_theta theta * dR/dtheta`` with ``R`` the sum
  of the outputs), computed in closed form from the CG by :func:`log_synflow`
  with the expected ``|w|`` of PyTorch's default initialisation;
* ``weighted_layers``: the number of conv / linear / rnn layers (depth);
* ``mix_wW``: ``W * log(1 + params) + (1 - W) * log(1 + MACs)`` for
  W = 0.25, 0.5, 0.75 (0.5 is the ``weights_macs`` size measure): where the
  two sizes disagree, which mix ranks a family.

    python benchmarks/size_proxies.py
    python benchmarks/size_proxies.py --families nb201,ofa_mbv3 --per-family 500

The last column is the Spearman between params and MACs themselves. The
last line of stdout is JSON: ``{family: {proxy: spearman}}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

#: Ops whose weights SynFlow scores: each multiplies its input by a weight.
WEIGHTED = frozenset({"conv", "group_conv", "depthwise_conv", "conv_transpose", "linear", "rnn"})
#: Ops whose output no longer scales with their input under SynFlow's all-positive
#: signal (a saturated gate or a normalisation): the signal restarts at 1 and no
#: gradient passes back.
RESETS = frozenset({"layer_norm", "lrn", "sigmoid", "hard_sigmoid", "tanh", "softmax"})
#: Ops that multiply two signals.
PRODUCTS = frozenset({"mul", "matmul"})
#: Weights on log params of the ``mix_wW`` proxies (the rest on log MACs).
MIX_WEIGHTS = (0.25, 0.5, 0.75)
PROXIES = ("params", "macs", "synflow", "weighted_layers") + tuple(f"mix_w{w:g}" for w in MIX_WEIGHTS)


def _logsumexp(values) -> float:
    values = [v for v in values if v > -math.inf]
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _fan_in(node) -> int:
    """What PyTorch's init calls fan-in: ``prod(weight_shape[1:])`` (a transposed
    conv's included), an rnn's input width."""
    w = node.weight_shape
    if node.op == "rnn" or len(w) < 2:
        return max(1, node.in_shape[-1] if node.in_shape else 1)
    return max(1, math.prod(w[1:]))


def _log_gain(node) -> float:
    """log of how much a weighted layer scales a uniform positive signal:
    ``fan_in * E|w|`` with PyTorch's default ``kaiming_uniform_(a=sqrt(5))``,
    ``w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, so ``E|w| = 1 / (2 sqrt(fan_in))``."""
    return 0.5 * math.log(_fan_in(node)) - math.log(2.0)


def _channels(node) -> int:
    return node.out_shape[0] if node.out_shape else 1


def log_synflow(cg) -> float:
    """``log`` of SynFlow's score of ``cg``, in closed form.

    Under SynFlow's all-positive signal every activation is the identity and
    every element of a tensor carries the same value ``s`` (borders of padded
    convs aside), so one forward pass of ``log s`` per node and one backward
    pass of ``log dR/ds`` give each weighted layer's share ``s * dR/ds`` of
    ``R`` (Euler: ``R`` is linear in each layer's weights), and the score is
    their sum. Concats average their inputs by channel count (the next layer
    sums over channels); adds sum; products multiply.
    """
    nodes, preds, succs = cg.nodes, cg.predecessors(), cg.successors()
    log_s = [0.0] * len(nodes)
    for i, node in enumerate(nodes):
        p = preds[i]
        if not p or node.op in RESETS:
            continue
        if node.op in WEIGHTED:
            log_s[i] = log_s[p[0]] + _log_gain(node)
        elif node.op == "add":
            log_s[i] = _logsumexp([log_s[j] for j in p])
        elif node.op in PRODUCTS:
            log_s[i] = sum(log_s[j] for j in p)
        elif node.op == "concat":
            total = sum(_channels(nodes[j]) for j in p)
            log_s[i] = _logsumexp([log_s[j] + math.log(_channels(nodes[j]) / total) for j in p])
        else:
            log_s[i] = log_s[p[0]]
    log_g = [-math.inf] * len(nodes)
    for i in reversed(range(len(nodes))):
        if nodes[i].op == "output":
            log_g[i] = math.log(max(1, math.prod(nodes[i].out_shape)))  # R sums every output element
            continue
        terms = []
        for u in succs[i]:
            after = nodes[u]
            if after.op in RESETS:
                continue
            if after.op in WEIGHTED:
                terms.append(log_g[u] + _log_gain(after))
            elif after.op in PRODUCTS:
                terms.append(log_g[u] + log_s[u] - log_s[i])
            elif after.op == "concat":
                total = sum(_channels(nodes[j]) for j in preds[u])
                terms.append(log_g[u] + math.log(_channels(nodes[i]) / total))
            else:
                terms.append(log_g[u])
        log_g[i] = _logsumexp(terms)
    return _logsumexp([log_s[i] + log_g[i] for i, n in enumerate(nodes) if n.op in WEIGHTED])


def proxy_scores(cgs) -> dict[str, np.ndarray]:
    """``{proxy: [n]}`` for :data:`PROXIES` (larger = predicted better)."""
    params = np.array([c.params for c in cgs], dtype=np.float64)
    macs = np.array([c.macs for c in cgs], dtype=np.float64)
    mixes = {f"mix_w{w:g}": w * np.log1p(params) + (1 - w) * np.log1p(macs) for w in MIX_WEIGHTS}
    return {"params": params, "macs": macs, "synflow": np.array([log_synflow(c) for c in cgs]),
            "weighted_layers": np.array([sum(n.op in WEIGHTED for n in c.nodes) for c in cgs], dtype=np.float64),
            **mixes}


def main(argv=None) -> int:
    from benchmarks.lofo import LOFO_FAMILIES
    from gennape.pretrain.metrics import spearman
    from gennape.pretrain.multifamily import load_family_sample
    from gennape.pretrain.run_families import EVAL_SEED

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default=",".join(LOFO_FAMILIES), help="comma-separated family names")
    ap.add_argument("--per-family", type=int, default=1000, help="scored networks per family (default 1000)")
    args = ap.parse_args(argv)
    out = {}
    print("| family | n | " + " | ".join(PROXIES) + " | params vs macs |")
    print("|---|---|" + "---|" * (len(PROXIES) + 1))
    for name in [f.strip() for f in args.families.split(",") if f.strip()]:
        sample = load_family_sample(name, args.per_family, seed=EVAL_SEED)
        scores = proxy_scores(sample.cgs)
        out[name] = {k: float(spearman(v, sample.accuracy)) for k, v in scores.items()}
        out[name]["params_vs_macs"] = float(spearman(scores["params"], scores["macs"]))  # do the two sizes agree?
        print(f"| {name} | {len(sample)} | " + " | ".join(f"{out[name][k]:.3f}" for k in (*PROXIES, "params_vs_macs"))
              + " |", flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
