"""What the two TransNAS-Bench-101 families share: tasks, stem, head, label files.

TransNAS-Bench-101 (Duan et al., CVPR 2021; networks as NASLib's
``naslib/search_spaces/transbench101/tnb101``) trains every network of its micro
(cell) and macro (skeleton) spaces on seven Taskonomy tasks, inputs 3x256x256.
Both spaces share the encoder's stem (``MacroNet.stem``: conv3x3 stride 2
3 -> 32 + BN, then ReLU-conv3x3 stride 2-BN 32 -> 64, so 1/4 resolution) and,
for the tasks whose decoder is ``FFDecoder``, the head: global average pool +
``Linear(C -> classes)``.

A spec carries its task, because the network (its head) depends on it: the
ARCH string is the benchmark's ``arch_str``, optionally followed by ``@task``
(``64-41414-2_32_323@class_scene``); without it the task is ``class_object``.
Tasks with such a head: ``class_object`` (100 classes), ``class_scene`` (63),
``room_layout`` (9 regression outputs). Labels (``load_labelled``) are read for
the two classification tasks, whose metric is a top-1 accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from gennape.cg.families.base import LabelledArch, read_json_list
from gennape.cg.families.cell_builder import LayerGraph

INPUT_SHAPE = (3, 256, 256)
BASE_CHANNELS = 64
#: Task -> outputs of its ``FFDecoder`` head (``tnb101/model_builder.py``).
HEAD_OUTPUTS: dict[str, int] = {"class_object": 100, "class_scene": 63, "room_layout": 9}
DEFAULT_TASK = "class_object"
#: Tasks whose label is an accuracy (``valid_top1``, percent).
CLASSIFICATION_TASKS: tuple[str, ...] = ("class_object", "class_scene")
#: Every task of the label files (the others have decoders not built here).
ALL_TASKS = ("class_object", "class_scene", "jigsaw", "room_layout", "segmentsemantic", "autoencoder", "normal")


def check_task(task: Any, space: str) -> str:
    """``task`` if it has a linear head; else ``ValueError`` listing the valid tasks."""
    if task not in HEAD_OUTPUTS:
        other = " (its decoder is not built here)" if task in ALL_TASKS else ""
        raise ValueError(f"TNB-101 {space} task {task!r}{other}; valid tasks: {', '.join(HEAD_OUTPUTS)}")
    return task


def split_task(arch: Any, space: str) -> tuple[Any, str]:
    """``(architecture part, task)`` of ``ARCH[@task]``; lists pass through with the default task."""
    if not isinstance(arch, str):
        return arch, DEFAULT_TASK
    body, sep, task = arch.strip().partition("@")
    return body.strip(), check_task(task.strip(), space) if sep else DEFAULT_TASK


def with_task(arch_str: str, task: str) -> str:
    """The ARCH string of a spec: ``arch_str``, plus ``@task`` unless it is the default."""
    return arch_str if task == DEFAULT_TASK else f"{arch_str}@{task}"


def parse_int_list(text: str, space: str) -> list | None:
    """The JSON list ``text`` (like the files' ``arch``), or None when it is not one."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TNB-101 {space} arch {text!r} is not a JSON list: {e}") from None
    return value


def check_codes(value: Any, space: str, length: range, valid: range) -> tuple[int, ...]:
    """``value`` as a tuple of integers in ``valid``, of a length in ``length``."""
    if not isinstance(value, (list, tuple)) or len(value) not in length:
        want = f"{length.start}" if len(length) == 1 else f"{length.start} to {length.stop - 1}"
        raise ValueError(f"TNB-101 {space} arch must have {want} codes, got {value!r}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int) or v not in valid:
            raise ValueError(f"TNB-101 {space} arch: code {i} is {v!r}; valid codes {valid.start}..{valid.stop - 1}")
    return tuple(value)


# ------------------------------------------------------------------- CG path
def stem(g: LayerGraph, x: int) -> int:
    """``MacroNet.stem``: conv3x3/2 3->32 + BN, ReLU-conv3x3/2-BN 32->64."""
    x = g.bn(g.conv(x, BASE_CHANNELS // 2, 3, 2, 1))
    return g.bn(g.conv(g.relu(x), BASE_CHANNELS, 3, 2, 1))


def head(g: LayerGraph, x: int | None, task: str) -> None:
    """``FFDecoder``: global average pool + linear, then the output (``x=None``: constant output)."""
    outputs = HEAD_OUTPUTS[task]
    g.output(None if x is None else g.linear(g.global_avg_pool(x), outputs), (outputs,))


#: One conv of the network with its affine BN: ``(c_in, c_out, kernel, in_size, out_size, relu)``,
#: ``relu`` when a ReLU precedes it. A FactorizedReduce (ReLU, two 1x1 convs to
#: ``c_out / 2``, BN) counts as one ReLU-conv1x1-BN ``c_in -> c_out``: same
#: parameters, same multiply-accumulates.
ConvBN = tuple[int, int, int, int, int, bool]


def stem_convs() -> list[ConvBN]:
    h, c = INPUT_SHAPE[1], BASE_CHANNELS
    return [(3, c // 2, 3, h, h // 2, False), (c // 2, c, 3, h // 2, h // 4, True)]


def trainable_params(convs: list[ConvBN], channels: int, task: str) -> int:
    """Parameters of the network's convs + BNs and the head (``channels -> outputs`` linear)."""
    outputs = HEAD_OUTPUTS[task]
    return sum(ci * co * k * k + 2 * co for ci, co, k, _, _, _ in convs) + channels * outputs + outputs


def benchmark_flops(convs: list[ConvBN], channels: int, task: str) -> int:
    """FLOPs as TransNAS-Bench-101 counted them (``tensorwatch``, one 3x256x256 input):
    a conv's multiply-accumulates, 2 per element of an affine BN's input, 1 per
    element of a ReLU's input, the linear head's MACs. Matches the shared files'
    ``flops`` of the classification tasks within 0.04% (the rest: pooling);
    ``benchmarks/families.py`` measures it."""
    total = 0
    for ci, co, k, hi, ho, relu in convs:
        total += co * ho * ho * ci * k * k + 2 * co * ho * ho + (ci * hi * hi if relu else 0)
    return total + channels * HEAD_OUTPUTS[task]


# ---------------------------------------------------------------- labels
def load_labelled(path: Path, task: str, parse: Callable[[Any, str], Any],
                  label: Callable[[dict, str], Any], extra: Callable[[dict, str], dict]) -> list[LabelledArch]:
    """The records of a TNB-101 label file with a ``task`` label, as :class:`LabelledArch`.

    Args:
        path: the gzipped JSON list.
        task: a classification task.
        parse: ``parse(arch, task)`` -> spec, from a record's ``arch`` list.
        label: ``label(record, task)`` -> the label in percent, or None (record skipped).
        extra: ``extra(record, task)`` -> the record's other columns for ``extra``.
    """
    from gennape.cg.errors import GennapeError

    if task not in CLASSIFICATION_TASKS:
        raise ValueError(f"TNB-101 labels are accuracies for {', '.join(CLASSIFICATION_TASKS)}; got task {task!r}")
    records = read_json_list(path, "a TNB-101 label file",
                             'a gzipped JSON list of {"arch", "arch_str", <task>: value, ...}')
    out = []
    for i, rec in enumerate(records):
        try:
            value = label(rec, task)
            if value is None:
                continue
            spec = parse(rec["arch"], task)
            out.append(LabelledArch(spec.to_arch(), spec, float(value) / 100.0, extra(rec, task)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise GennapeError(f"{path}: record {i}: {type(e).__name__}: {e}") from None
    return out


def task_columns(rec: dict, task: str) -> dict:
    """``params`` (a count), ``params_millions`` and ``flops`` (millions) of ``task``
    when the record has them."""
    out = {}
    if rec.get("params") and rec["params"].get(task) is not None:
        out["params_millions"] = rec["params"][task]
        out["params"] = round(rec["params"][task] * 1e6)
    if rec.get("flops") and rec["flops"].get(task) is not None:
        out["flops"] = rec["flops"][task]
    return out
