"""Canonical rules that recognise a computation written out op by op: layer,
group and RMS norms, ReLU6, hard sigmoid, SiLU / hard swish gates, GELU (erf
and tanh forms), adaptive average pools over windows of unequal size, and
what is left unmatched (:mod:`gennape.cg.onnx_import.canonical` holds the
registry and runs them in order)."""

from __future__ import annotations

import math

from gennape.cg.onnx_import.canonical import (_collapse, _is_div, _is_part, _is_scalar, _products, _pure_reshape,
                                              rule)
from gennape.cg.onnx_import.ir import IRGraph


def _std_chain(ir: IRGraph, cons, q: int):
    """If ``q`` is ``sqrt(mean((r - mean(r))^2) + eps)`` (square as Pow 2 or
    ``d * d``, both means over the same axes, every link read only inside the
    chain but ``d``), return ``(d, r, links)``: the centred tensor, the input
    and the chain's nodes other than ``d``; else None."""
    nodes = ir.nodes
    root = _root_mean_square(ir, cons, q)
    if root is None:
        return None
    d, links = root
    v = links[2]
    sub = nodes[d]
    if not (sub.op == "add" and sub.info.get("fn") == "sub" and len(sub.inputs) == 2):
        return None
    r, m = sub.inputs
    mean = nodes[m]
    if not (mean.op == "reduction" and mean.info["fn"] == "mean" and mean.inputs == [r] and cons[m] == [d]
            and set(mean.info["axes"]) == set(nodes[v].info["axes"])):
        return None
    return d, r, [*links, m]


def _centred(ir: IRGraph, cons, n: int, x: int, like: int) -> bool:
    """Whether ``n`` is ``x - mean(x)`` with the mean over the axes of the
    reduction ``like`` and read by ``n`` alone."""
    sub = ir.nodes[n]
    if not (sub.op == "add" and sub.info.get("fn") == "sub" and len(sub.inputs) == 2 and sub.inputs[0] == x):
        return False
    m = ir.nodes[sub.inputs[1]]
    return (m.op == "reduction" and m.info["fn"] == "mean" and m.inputs == [x] and cons[sub.inputs[1]] == [n]
            and set(m.info["axes"]) == set(ir.nodes[like].info["axes"]))


def _readers_outside(cons, d: int, chain: list[int]) -> list[int]:
    return [c for c in cons[d] if c not in chain]


@rule(39, "adaptive_avg_pool")
def collapse_adaptive_avg_pool(ir: IRGraph) -> None:
    """An adaptive average pool whose output size does not divide its input, as the dynamo exporter
    writes ``F.adaptive_avg_pool2d`` (the legacy exporter cannot export it; CSATv2, a VGG at 256x256):
    Transpose, GatherND of every ``kh x kw`` window, Transpose, then either a mean over the window
    axes (windows of one size) or masks zeroing what the shorter windows lack (Where), one Gather
    per window position, their sum and a division by the window sizes, is ``avg_pool`` with the
    largest window as kernel and stride ``in // out`` (what AveragePool has for an output that
    divides the input)."""
    cons = ir.consumers()
    nodes = ir.nodes
    for g, gather in ir.alive():
        windows = gather.info.get("windows") if gather.op == "move" else None
        chain = [gather.inputs[0], g] if windows else []
        if not chain or not (nodes[chain[0]].info.get("perm") == (2, 3, 0, 1) and cons[chain[0]] == [g]
                             and len(nodes[chain[0]].in_shape) == 3  # the windows of a (C, H, W) map
                             and len(cons[g]) == 1 and nodes[cons[g][0]].info.get("perm") == (4, 5, 0, 1, 2, 3)):
            continue
        chain.append(cons[g][0])  # [N, C, oh, kh, ow, kw]
        while len(cons[chain[-1]]) == 1 and _is_scalar(nodes[cons[chain[-1]][0]], ("mask",)):
            chain.append(cons[chain[-1]][0])
        found = _window_mean(ir, cons, chain[-1], windows)
        if found is None:
            continue
        keep, dead = found
        x = nodes[chain[0]].inputs[0]
        _collapse(ir, cons, keep, x, "avg_pool", [*dead, *chain[::-1]])
        oh, kh, ow, kw = windows
        _, h, w = nodes[x].out_shape
        pool = nodes[keep]
        pool.kernel, pool.stride, pool.params, pool.info = (kh, kw), (h // oh, w // ow), 0, {}


def _window_mean(ir: IRGraph, cons, windows_node: int, windows) -> tuple[int, list[int]] | None:
    """If the windows ``[N, C, oh, kh, ow, kw]`` of ``windows_node`` are averaged (a mean over axes
    3 and 5, or a sum of one Gather per window position divided by constants), return the node
    holding the mean and the pattern's other nodes (readers first); else None."""
    nodes, (_, kh, _, kw) = ir.nodes, windows
    readers = cons[windows_node]
    if len(readers) == 1 and nodes[readers[0]].op == "reduction" \
            and nodes[readers[0]].info["fn"] == "mean" and nodes[readers[0]].info["axes"] == {3, 5}:
        return readers[0], []
    cells = [c for r in readers for c in cons[r]]
    # a Gather of the only row of windows one high is a reshape, not a slice
    if not (len(readers) == kh and len(cells) == kh * kw and all(nodes[c].op == "slice" for c in cells)
            and all(nodes[r].op in ("slice", "move") and len(cons[r]) == kw for r in readers)):
        return None
    total = _sum_tree(ir, cons, cells)
    if total is None:
        return None
    root, adds = total
    div = nodes[cons[root][0]]
    if not (_is_scalar(div, ("div", "mul")) or (div.op == "affine" and div.info.get("kind") == "mul")):
        return None
    return cons[root][0], [*adds[::-1], *cells, *readers]


def _sum_tree(ir: IRGraph, cons, leaves: list[int]) -> tuple[int, list[int]] | None:
    """If ``leaves`` are summed by a tree of two-input adds, each term read once
    and only by the tree but its root, return ``(root, adds)``; else None."""
    inside, adds, grew = set(leaves), [], True
    while grew:
        grew = False
        for a in {c for n in inside for c in cons[n]} - inside:
            node = ir.nodes[a]
            if node.op == "add" and node.info.get("fn") == "add" and len(node.inputs) == 2 \
                    and all(t in inside for t in node.inputs):
                inside.add(a)
                adds.append(a)
                grew = True
    tops = [n for n in inside if not any(c in inside for c in cons[n])]
    if len(adds) != len(leaves) - 1 or len(tops) != 1 or any(len(cons[n]) != 1 for n in inside):
        return None
    return tops[0], sorted(adds)


@rule(40, "layer_norm")
def collapse_layer_norm(ir: IRGraph) -> None:
    """Layer norm written out, ``(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)`` (ReduceMean, Sub,
    Pow 2 or a self-product, ReduceMean, Add, Sqrt, Div; both means over the same axes: ConvNeXt's
    channels-first LayerNorm, ``x.var(unbiased=False)``), is ``layer_norm``; a following per-channel
    scale and shift merge into it as parameters (rule ``merge_affine``)."""
    cons = ir.consumers()
    for i, div in ir.alive():
        if not (div.op == "mul" and div.info.get("fn") == "div" and len(div.inputs) == 2):
            continue
        found = _std_chain(ir, cons, div.inputs[1])
        if found is None or cons[div.inputs[1]] != [i]:
            continue
        d, x, chain = found
        n = div.inputs[0]
        if n == d and _readers_outside(cons, d, chain) == [i]:
            _collapse(ir, cons, i, x, "layer_norm", chain + [d])
        elif n != d and not _readers_outside(cons, d, chain) and _centred(ir, cons, n, x, chain[-1]) \
                and cons[n] == [i]:
            # x.var() centres x itself: the numerator is a second x - mean(x)
            _collapse(ir, cons, i, x, "layer_norm", chain + [d, n, ir.nodes[n].inputs[1]])


@rule(41, "group_std")
def collapse_group_std(ir: IRGraph) -> None:
    """A standard deviation written out, ``sqrt(var(x) + eps)`` over some axes and not part of a layer
    norm (EvoNorm's ``group_std``: over the channel groups of ``x.reshape(B, G, C // G, H, W)``), is
    one ``layer_norm`` node (normalisation statistics) reading ``x``; what the network does with it
    (EvoNorm-S0 divides ``x * sigmoid(v * x)`` by it) stays."""
    cons = ir.consumers()
    for q, n in ir.alive():
        found = _std_chain(ir, cons, q) if _is_part(n, "Sqrt") else None
        if found is None:
            continue
        d, x, chain = found
        if not _readers_outside(cons, d, chain + [q]) and all(c == chain[3] for c in cons[d]):
            _collapse(ir, cons, q, x, "layer_norm", [c for c in chain if c != q] + [d])


def _root_mean_square(ir: IRGraph, cons, q: int) -> tuple[int, list[int]] | None:
    """If ``q`` is ``sqrt(mean(x^2) + eps)`` (square as Pow 2 or ``x * x``; a
    pure reshape may restore the dims a ``keepdims=0`` mean dropped, as the
    dynamo exporter writes ``var``; links read only inside the chain), return
    ``(x, [q, add, mean, square, *reshape])``; else None."""
    nodes = ir.nodes
    if not _is_part(nodes[q], "Sqrt"):
        return None
    a = nodes[q].inputs[0]
    if not (_is_scalar(nodes[a], ("add",)) and cons[a] == [q]):
        return None
    v, restore = nodes[a].inputs[0], []
    if _pure_reshape(nodes[v]) and cons[v] == [a]:
        v, restore = nodes[v].inputs[0], [v]
    if not (nodes[v].op == "reduction" and nodes[v].info["fn"] == "mean" and cons[v] == [restore[0] if restore else a]):
        return None
    p = nodes[v].inputs[0]
    sq = nodes[p]
    if cons[p] == [v] and (_is_scalar(sq, ("pow",), 2.0) or
                           (sq.op == "mul" and len(sq.inputs) == 2 and sq.inputs[0] == sq.inputs[1])):
        return sq.inputs[0], [q, a, v, p, *restore]
    return None


@rule(42, "rms_norm")
def collapse_rms_norm(ir: IRGraph) -> None:
    """RMS norm written out, ``x / sqrt(mean(x^2) + eps)`` or ``x * (1 / sqrt(...))`` (Pow 2, ReduceMean,
    Add, Sqrt, then Div, or Div of 1 and Mul; timm's RmsNorm2d, MobileNetV5), is ``layer_norm``; a
    following per-channel scale merges into it."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        if not (n.op == "mul" and len(n.inputs) == 2):
            continue
        if n.info.get("fn") == "div":
            candidates = [(n.inputs[0], n.inputs[1], [])]
        else:
            candidates = []
            for x, r in (n.inputs, n.inputs[::-1]):
                # scalar links (a Reciprocal, a Mul by 1.0) down to the reciprocal
                links, reader = [], i
                while nodes[r].op == "scalar" and cons[r] == [reader]:
                    links.append(r)
                    info = nodes[r].info
                    if info.get("fn") == "div" and info.get("const_first") and info.get("value") == 1.0:
                        candidates.append((x, nodes[r].inputs[0], links))
                        break
                    reader, r = r, nodes[r].inputs[0]
        for x, q, extra in candidates:
            found = _root_mean_square(ir, cons, q)
            if found is not None and found[0] == x and cons[q] == [extra[-1] if extra else i]:
                _collapse(ir, cons, i, x, "layer_norm", found[1] + extra)
                break


@rule(43, "l2_normalize")
def collapse_l2_normalize(ir: IRGraph) -> None:
    """``x / max(||x||_2, eps)`` over some axes (``F.normalize``: ReduceL2, Clip(eps), Expand, Div; the
    XCA attention of EdgeNeXt / XCiT) is ``layer_norm`` without parameters."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, div in ir.alive():
        if not (div.op == "mul" and div.info.get("fn") == "div" and len(div.inputs) == 2):
            continue
        x, k = div.inputs
        chain = []
        while nodes[k].op in ("move", "scalar") and cons[k] == [chain[-1] if chain else i]:
            chain.append(k)
            k = nodes[k].inputs[0]
        red = nodes[k]
        if red.op == "reduction" and red.info["fn"] == "l2" and red.inputs == [x] and \
                cons[k] == [chain[-1] if chain else i]:
            _collapse(ir, cons, i, x, "layer_norm", chain + [k])


@rule(44, "relu6")
def collapse_relu6(ir: IRGraph) -> None:
    """``Min(relu(x), 6)`` (``Min(Max(x, 0), 6)``) is ``relu6``; the relu must have no other reader."""
    cons = ir.consumers()
    for i, d in ir.alive():
        if _is_scalar(d, ("min",), 6.0):
            r = d.inputs[0]
            if ir.nodes[r].op == "relu" and cons[r] == [i]:
                _collapse(ir, cons, i, ir.nodes[r].inputs[0], "relu6", [r])


@rule(45, "hard_sigmoid")
def collapse_hard_sigmoid(ir: IRGraph) -> None:
    """``relu6(x + 3) / 6`` (or ``* 1/6``) is ``hard_sigmoid``; intermediate nodes must have no other
    reader, the scalars must be right operands with exactly these values."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, d in ir.alive():
        if not _is_div(d, 6.0):
            continue
        r = d.inputs[0]
        if nodes[r].op != "relu6" or cons[r] != [i]:
            continue
        a = nodes[r].inputs[0]
        if _is_scalar(nodes[a], ("add",), 3.0) and cons[a] == [r]:
            _collapse(ir, cons, i, nodes[a].inputs[0], "hard_sigmoid", [r, a])


@rule(46, "gates")
def collapse_gates(ir: IRGraph) -> None:
    """``x * sigmoid(x)`` is ``silu`` and ``x * hard_sigmoid(x)`` is ``hard_swish`` (either operand
    order); the gate must have no other reader."""
    cons = ir.consumers()
    for m, node in _products(ir):
        for x, g in (node.inputs, node.inputs[::-1]):
            gn = ir.nodes[g]
            if gn.op in ("sigmoid", "hard_sigmoid") and gn.inputs == [x] and cons[g] == [m]:
                _collapse(ir, cons, m, x, "silu" if gn.op == "sigmoid" else "hard_swish", [g])
                break


@rule(47, "relu6_swish")
def collapse_relu6_swish(ir: IRGraph) -> None:
    """``(x * relu6(x + 3)) / 6`` is ``hard_swish`` (the division, a scalar, vanishes later)."""
    cons = ir.consumers()
    nodes = ir.nodes
    for m, node in _products(ir):
        if len(cons[m]) != 1 or not _is_div(nodes[cons[m][0]], 6.0):
            continue
        for x, r in (node.inputs, node.inputs[::-1]):
            if nodes[r].op != "relu6" or cons[r] != [m]:
                continue
            a = nodes[r].inputs[0]
            if _is_scalar(nodes[a], ("add",), 3.0) and nodes[a].inputs == [x] and cons[a] == [r]:
                _collapse(ir, cons, m, x, "hard_swish", [r, a])
                break


@rule(48, "erf_gelu")
def collapse_erf_gelu(ir: IRGraph) -> None:
    """``x * 0.5 * (1 + erf(x / sqrt 2))`` (the 0.5 on either factor) is ``gelu``."""
    cons = ir.consumers()
    nodes = ir.nodes
    for m, node in _products(ir):
        for u, a in (node.inputs, node.inputs[::-1]):
            if not _is_scalar(nodes[a], ("add",), 1.0) or cons[a] != [m]:
                continue
            e = nodes[a].inputs[0]
            if not _is_part(nodes[e], "Erf") or cons[e] != [a]:
                continue
            d = nodes[e].inputs[0]
            if not _is_div(nodes[d], 2.0 ** 0.5) or cons[d] != [e]:
                continue
            x = nodes[d].inputs[0]
            dead = [a, e, d]
            if u != x:  # (x * 0.5) * (1 + erf(...))
                if not (_is_scalar(nodes[u], ("mul",), 0.5) and nodes[u].inputs == [x] and cons[u] == [m]):
                    continue
                dead.append(u)
            _collapse(ir, cons, m, x, "gelu", dead)
            break


@rule(49, "tanh_gelu")
def collapse_tanh_gelu(ir: IRGraph) -> None:
    """``x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`` (``x^3`` as ``x * x * x`` or
    a Pow; the 0.5 on either factor or after the product; GELU's tanh approximation as the legacy
    exporter writes it below opset 20) is ``gelu``, as the dynamo exporter's ``Gelu`` op is."""
    cons = ir.consumers()
    nodes = ir.nodes

    def only(i: int, reader: int) -> bool:
        return cons[i] == [reader]

    def cube_of(c: int):
        """x when node ``c`` is ``x * x * x`` or ``x ** 3`` read only by its reader, else None."""
        n = nodes[c]
        if n.op == "scalar" and n.info.get("fn") == "pow" and n.info.get("value") == 3.0:
            return n.inputs[0], []
        if n.op == "mul" and len(n.inputs) == 2:
            for sq, x in (n.inputs, n.inputs[::-1]):
                if nodes[sq].op == "mul" and nodes[sq].inputs == [x, x] and only(sq, c):
                    return x, [sq]
        return None, []

    def scalar(i: int, fn: str, value: float, reader: int) -> bool:
        return _is_scalar(nodes[i], (fn,), value, either_side=True) and only(i, reader)

    def gelu_of(m: int, u: int, a: int):
        """``(x, dead nodes)`` when the product ``m = u * a`` is the pattern, else None."""
        if not scalar(a, "add", 1.0, m):
            return None
        t = nodes[a].inputs[0]
        if not (nodes[t].op == "tanh" and only(t, a)):
            return None
        sc = nodes[t].inputs[0]
        if not scalar(sc, "mul", (2.0 / math.pi) ** 0.5, t):
            return None
        inner = nodes[sc].inputs[0]
        if not (nodes[inner].op == "add" and len(nodes[inner].inputs) == 2 and only(inner, sc)):
            return None
        for x, c in (nodes[inner].inputs, nodes[inner].inputs[::-1]):
            if not scalar(c, "mul", 0.044715, inner):
                continue
            base, squares = cube_of(nodes[c].inputs[0])
            if base != x or not only(nodes[c].inputs[0], c):
                continue
            dead = [a, t, sc, inner, c, nodes[c].inputs[0], *squares]
            if u == x:
                return x, dead
            if scalar(u, "mul", 0.5, m) and nodes[u].inputs == [x]:  # (x * 0.5) * (1 + tanh(...))
                return x, [*dead, u]
        return None

    for m, node in _products(ir):
        for u, a in (node.inputs, node.inputs[::-1]):
            found = gelu_of(m, u, a)
            if found is not None:
                _collapse(ir, cons, m, found[0], "gelu", found[1])
                break


@rule(50, "group_norm")
def collapse_group_norm(ir: IRGraph) -> None:
    """A normalisation between two pure reshapes that restore the input's shape (torch's GroupNorm
    exports as Reshape to ``(B, G, -1)``, InstanceNormalization, Reshape back) is one ``layer_norm``
    on the input's shape; the per-channel scale and shift after it merge into it (rule
    ``merge_affine``)."""
    cons = ir.consumers()
    nodes = ir.nodes
    for i, n in ir.alive():
        if n.op != "layer_norm" or len(cons[i]) != 1:
            continue
        before, after = n.inputs[0], cons[i][0]
        if not (_pure_reshape(nodes[before]) and cons[before] == [i] and _pure_reshape(nodes[after])):
            continue
        x = nodes[before].inputs[0]
        if nodes[after].out_shape != nodes[x].out_shape:
            continue
        _collapse(ir, cons, i, x, "layer_norm", [before])
        n.out_shape = nodes[after].out_shape
        ir.replace(after, i, cons)


@rule(55, "unmatched_parts")
def report_unmatched_parts(ir: IRGraph) -> None:
    """An op the importer knows only as part of a pattern (Erf, Sqrt, ``Min(x, 6)``) that matched none
    is reported as unsupported (with ``unknown_ops="other"`` it is an ``other`` node)."""
    for _, n in ir.alive():
        if n.op == "part":
            ir.unsupported.append((n.info["onnx"], n.name))
            n.op = "other"
        elif n.op == "scalar" and n.info.get("fn") == "min":
            ir.unsupported.append(("Min", n.name))
            n.op = "other"


@rule(56, "other_reductions")
def other_reductions(ir: IRGraph) -> None:
    """A sum (or mean) over stacked branches is ``add``: over axis 1 of a rank-5 tensor (a split
    attention's ``x.reshape(B, radix, C, H, W).sum(1)``: SK-ResNet, ResNeSt) or over the stacking
    axis 0 (``torch.stack(heads).mean(0)``: CrossViT, distilled heads). Any other reduction that is
    not a global pool (over channels, tokens, one spatial axis) is ``reduce``."""
    for _, n in ir.alive():
        if n.op != "reduction":
            continue
        axes, fn = set(n.info["axes"]), n.info["fn"]
        branches = axes == {1} and n.info["rank"] == 5 or axes == {0}  # axis 0: a stack, see ReduceSum
        n.op = "add" if branches and fn in ("sum", "mean") else "reduce"


