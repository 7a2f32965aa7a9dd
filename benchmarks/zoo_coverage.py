"""Real-model coverage of the ONNX importer: torchvision, timm and OFA-MobileNetV3
networks exported by PyTorch, then converted to CGs.

Two halves, each run with its own Python:

``export`` -- with a Python that has torch, torchvision, timm, onnx, onnxscript
and (for the ``ofa`` corpus) the Once-for-All package ``ofa``; never the
project's::

    python benchmarks/zoo_coverage.py export [--corpus torchvision torchvision_eval timm timm_eval ofa]
        [--cache DIR] [--timm-sample 450] [--timm-results FILE] [--ofa-sample 100] [--ofa-csv FILE]

``convert`` -- with the project's Python (gennape installed)::

    python benchmarks/zoo_coverage.py convert [--corpus ...] [--cache DIR]
        [--timeout 60]

Corpora (all exported at batch 1 with a static input shape, legacy TorchScript
exporter, ``opset_version=17, dynamo=False, do_constant_folding=True``, in eval
mode with MultiheadAttention's fused fast path off, as
:func:`gennape.cg.torch_import.export_module` exports):

* ``torchvision``: every classification model of
  ``torchvision.models.list_models(module=torchvision.models)``, ``weights=None``,
  224x224 (inception_v3: 299x299). Each manifest entry also records the
  model's published ImageNet-1K top-1 (``imagenet_acc1``, percent) and the
  weights it belongs to (``imagenet_weights``), read from torchvision's
  weights metadata, ``get_model_weights(name).DEFAULT.meta["_metrics"]
  ["ImageNet-1K"]["acc@1"]`` (the enum only: no weights are downloaded;
  ``None`` for a model without ImageNet-1K weights). The quantized models are
  not in ``torchvision.models``' own list, so they are not in the corpus.
* ``torchvision_eval``: the same models and labels, each at the input size
  its published accuracy was measured at (the DEFAULT weights' evaluation
  crop, ``weights.transforms().crop_size``: EfficientNet-B7 600x600, ViT-H/14
  518x518 built with ``image_size=518``, Swin-V2 256x256, ...). 16 of the 80
  differ from ``torchvision``; the others are the same export, so their
  files and manifest entries are copied from ``<cache>/torchvision`` when it
  holds them at the same input shape (``reused_from``) instead of exported
  again.
* ``timm``: a deterministic sample of ``timm.list_models()`` (``pretrained=False``,
  each at ``pretrained_cfg['input_size']``) that covers every timm model module.
  Within a module, architectures are ordered by the SHA-1 of their name (a
  fixed, alphabet-independent shuffle); the modules are then visited in sorted
  order, round after round, each round taking 2 architectures from a
  convolutional module and 1 from an attention / MLP-mixer module
  (``ATTENTION_MODULES``), until ``--timm-sample`` are chosen. Round 1 alone
  covers every module.
* ``timm_eval``: timm's convolutional ImageNet classifiers with a published
  top-1 from ImageNet-1k training alone, for ranking (a second family of real
  networks written by other people's code, beside ``torchvision_eval``). Rule,
  fixed before any of its labels was looked at: every architecture of
  ``timm.list_models()`` in a module not in ``ATTENTION_MODULES`` whose
  *default* pretrained tag (the first of its tags, what ``pretrained=True``
  loads) was trained on ImageNet-1k alone (:func:`in1k_only`: no
  ImageNet-21k/22k/12k, JFT, Instagram, LAION, CLIP, ... data) and has a row in
  timm's ``results/results-imagenet.csv`` (``--timm-results``, default
  ``<cache>/timm-results-imagenet.csv``; timm's pip package does not ship it:
  copy it from timm's repository). Each is exported at that row's
  ``img_size`` (the size its top-1 was measured at) with ``pretrained=False``;
  ``imagenet_acc1`` is the row's ``top1``, ``imagenet_weights`` its
  ``arch.tag``. No other tag of an architecture is considered, so the labels
  are one recipe's per architecture, not the best of several.
* ``ofa``: OFA-MobileNetV3 (w1.0) subnets built by OFA's own code
  (``OFAMobileNetV3(ks_list=[3,5,7], expand_ratio_list=[3,4,6],
  depth_list=[2,3,4])``, ``set_active_subnet``, ``get_active_subnet``) for
  ``--ofa-sample`` evenly spaced rows of ``ofa_mbv3/ofa_mbv3_w10_imagenet.csv``
  (``$GENNAPE_DATA``, default ``../shared/data``), at the row's resolution ``r``.

``--exporter dynamo`` exports the same models with the dynamo exporter
instead (``torch.onnx.export(model, (x,), path, dynamo=True,
input_names=["input"])`` at its default opset, 20 in torch 2.14: what the call
without ``dynamo`` does since torch 2.9, so what a user's script written today
writes; integer tensors it saves as external data stay there, as in a
weightless copy of such an export), into ``<cache>/<corpus>-dynamo/``.
``convert --exporter dynamo`` converts those and checks each against the
legacy export of the same model: one network should give one CG however it
was exported, so it counts the models whose CG is the same node for node and
edge for edge (parameters aside: the two exporters fold batch norms
differently), and prints what differs for the others.

``--opset N`` exports with the legacy exporter at opset ``N`` instead of 17
(into ``<cache>/<corpus>-opsetN/``), as code written for an older torch does:
its default was opset 9 until torch 1.12, 13 until 2.0, 14 until 2.1.
``convert --opset N`` compares those CGs with the opset-17 ones the same way.

Every export is weightless: floating-point tensors of 1 KiB or more (the
weights) keep their dims and dtype but point at an external-data file that is
deleted (the importer reads shapes only and never opens it); integer tensors
(shapes, axes, indices) and small float tensors stay inline, as they would be
in the real file. Models over 150M parameters, or whose export takes over 60 s,
are recorded as ``skipped: too large``; a model that PyTorch cannot build or
export is ``not exportable`` -- neither counts against the importer.

Files go to ``--cache`` (default ``~/.cache/gennape/zoo``), as
``<cache>/<corpus>/<name>.onnx`` beside ``<cache>/<corpus>/manifest.json``
(name, input shape, parameter count of the torch model, status, error, export
time, ONNX op types). A corpus with published accuracies (``torchvision``,
``torchvision_eval``, ``timm_eval``) also gets ``<cache>/<corpus>/labels.csv`` (columns ``onnx,accuracy``, accuracy
in percent; the LABELS.csv format ``gennape evaluate --labels`` reads): one row
per exported model with a published accuracy, which
``benchmarks/zoo_ranking.py`` ranks against. The export resumes: models already in a manifest are not
exported again unless ``--force``. Each model is built and exported in a worker
process that is restarted after a crash or a hang.

The convert half converts every exported file in a worker process with a
per-file timeout, writes ``<cache>/<corpus>/convert.json`` and prints, per
corpus, converted / total, the failures grouped by cause (node and tensor names
normalised away) with one example each, and the median and max conversion
time. Both halves print their figures; the last line of stdout is one JSON
object.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import multiprocessing
import os
import re
import statistics
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

CORPORA = ("torchvision", "torchvision_eval", "timm", "timm_eval", "ofa")
#: ``legacy``: TorchScript, opset 17, constant folding (the corpora's reference);
#: ``dynamo``: torch's default exporter as a user's script calls it.
EXPORTERS = ("legacy", "dynamo")
#: The legacy exporter's opsets ``--opset`` accepts: 9 (torch's default until
#: 1.12) to 20; an export at another opset than :data:`OPSET` is the variant ``opsetN``.
LEGACY_OPSETS = range(9, 21)
DEFAULT_CACHE = Path("~/.cache/gennape/zoo").expanduser()
OPSET = 17
MAX_PARAMS = 150_000_000
EXPORT_TIMEOUT_S = 60
#: Hard limit on one worker job (build + export + strip) before the worker is killed.
JOB_TIMEOUT_S = 300
#: Restart the export worker after this many jobs (memory of big models is not all given back).
EXPORT_JOBS_PER_WORKER = 25
#: Floating-point tensors of at least this many bytes are weights and are stripped.
STRIP_MIN_BYTES = 1024
TORCHVISION_SIZES = {"inception_v3": 299}
#: timm's published ImageNet results, for ``timm_eval`` (not in timm's pip package).
TIMM_RESULTS = "timm-results-imagenet.csv"
OFA_CSV = Path("ofa_mbv3") / "ofa_mbv3_w10_imagenet.csv"
OFA_KWARGS = dict(ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4], width_mult=1.0)

#: timm modules of attention / MLP-mixer families (sampled at half the rate of
#: the others, which count as convolutional).
ATTENTION_MODULES = frozenset({
    "beit", "byoanet", "cait", "coat", "convit", "crossvit", "csatv2", "davit", "deepseek_vit", "deit",
    "edgenext", "efficientformer", "efficientformer_v2", "efficientvim", "efficientvit_mit",
    "efficientvit_msra", "eva", "gcvit", "gemma4_vit", "hiera", "hieradet_sam2", "iformer", "levit",
    "lowformer", "maxxvit", "metaformer", "mlp_mixer", "mobilevit", "mvitv2", "naflexvit", "nest",
    "nextvit", "pit", "pvt_v2", "qwen3_vit", "sequencer", "shvit", "swiftformer", "swin_transformer",
    "swin_transformer_v2", "swin_transformer_v2_cr", "tiny_vit", "tnt", "twins", "visformer",
    "vision_transformer", "vision_transformer_hybrid", "vision_transformer_relpos",
    "vision_transformer_sam", "vitamin", "volo", "xcit",
})


def corpus_dir(cache: Path, corpus: str, exporter: str = "legacy") -> Path:
    """Where one corpus's exports by ``exporter`` (an :data:`EXPORTERS` name or
    ``opsetN``, see :func:`export_variant`) lie."""
    return cache / (corpus if exporter == "legacy" else f"{corpus}-{exporter}")


def export_variant(exporter: str, opset: int) -> str:
    """``legacy`` / ``dynamo``, or ``opsetN`` for the legacy exporter at an opset other than :data:`OPSET`."""
    if opset == OPSET:
        return exporter
    if exporter != "legacy":
        raise SystemExit(f"--opset {opset}: only the legacy exporter takes an opset (dynamo writes its default)")
    return f"opset{opset}"


def legacy_opset(variant: str) -> int:
    """The opset a legacy-exporter variant (``legacy`` or ``opsetN``) exports at."""
    return int(variant[len("opset"):]) if variant.startswith("opset") else OPSET


def log(msg: str) -> None:
    print(msg, flush=True)


def first_line(err: BaseException | str, limit: int = 400) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else (type(err).__name__ if isinstance(err, BaseException) else "")
    return line[:limit]


# ----------------------------------------------------------------- workers
def _worker_main(conn, job_kind: str) -> None:
    """Loop of a worker process: receive a job, run it, send its result."""
    run = {"export": export_job, "convert": convert_job}[job_kind]
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            result = run(job)
        except BaseException as err:  # noqa: BLE001 -- the job's own failure, reported
            result = {"status": "worker error", "error": f"{type(err).__name__}: {first_line(err)}",
                      "traceback": traceback.format_exc()[-2000:]}
        conn.send(result)


class Worker:
    """One job at a time in a spawned process; killed and restarted on a
    timeout or a crash, recycled every ``max_jobs`` jobs."""

    def __init__(self, kind: str, max_jobs: int = 10**9):
        self.kind, self.max_jobs = kind, max_jobs
        self.ctx = multiprocessing.get_context("spawn")
        self.proc = None
        self.jobs = 0

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker_main, args=(child, self.kind), daemon=True)
        self.proc.start()
        child.close()
        self.jobs = 0

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.conn.send(None)
            self.proc.join(5)
        except (OSError, BrokenPipeError):
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.proc = None

    def run(self, job: dict, timeout: float) -> dict:
        if self.proc is None or not self.proc.is_alive() or self.jobs >= self.max_jobs:
            self.stop()
            self._start()
        self.jobs += 1
        self.conn.send(job)
        if self.conn.poll(timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        else:
            self.proc.kill()
            self.proc.join()
            self.proc = None
            return {"status": "timeout", "error": f"worker killed after {timeout:.0f} s"}
        self.proc.join(5)
        code = self.proc.exitcode
        self.proc = None
        return {"status": "worker died", "error": f"worker process died (exit code {code})"}


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------ export half
def data_dir() -> Path:
    env = os.environ.get("GENNAPE_DATA")
    if env:
        return Path(env)
    for candidate in (Path("../shared/data"), Path(__file__).resolve().parent.parent.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return Path("../shared/data")


def _sha1(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def timm_sample(n: int) -> list[dict]:
    """The deterministic timm sample described in the module docstring."""
    import timm

    queues = {m: sorted(timm.list_models(module=m), key=_sha1) for m in sorted(timm.list_modules())}
    chosen: list[dict] = []
    seen: set[str] = set()
    while len(chosen) < n and any(queues.values()):
        for module, queue in queues.items():
            take = 1 if module in ATTENTION_MODULES else 2
            while take and queue and len(chosen) < n:
                name = queue.pop(0)
                if name not in seen:
                    seen.add(name)
                    chosen.append({"name": name, "module": module})
                    take -= 1
    return chosen


#: Tag words naming training data beyond ImageNet-1k (by prefix): Instagram /
#: semi- and weakly supervised sets, JFT, LAION, CLIP / OpenAI, SWAG, DINOv2's
#: LVD, WebLI, DFN, Merged / YFCC / CC12M / MetaCLIP sets, EVA's Merged-38M/30M.
EXTRA_DATA_WORDS = ("ig", "swsl", "ssl", "jft", "laion", "clip", "openai", "swag", "lvd", "webli", "dfn",
                    "merged", "yfcc", "cc12m", "metaclip", "m38m", "m30m")


def in1k_only(tag: str) -> bool:
    """Whether a timm pretrained tag (``a1_in1k``, ``fb_in22k_ft_in1k``) names
    weights trained on ImageNet-1k alone: it has the word ``in1k``, no other
    ``inNk`` set (21k, 22k, 12k) and no word of :data:`EXTRA_DATA_WORDS`."""
    words = tag.lower().split("_")
    if "in1k" not in words:
        return False
    return not any((re.fullmatch(r"in\d+k", w) and w != "in1k") or w.startswith(EXTRA_DATA_WORDS) for w in words)


def read_timm_results(path: Path) -> dict[str, dict]:
    """``{"arch.tag": row}`` of timm's ``results-imagenet.csv`` (columns
    ``model``, ``top1``, ``img_size``, ...)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"model", "top1", "img_size"} - set(rows[0] if rows else ())
    if missing:
        raise SystemExit(f"{path}: not timm's results-imagenet.csv (no column {', '.join(sorted(missing))})")
    return {r["model"]: r for r in rows}


def timm_eval_specs(default_tags: dict[str, str], module_of: dict[str, str], results: dict[str, dict]) -> list[dict]:
    """The ``timm_eval`` corpus (module docstring) from each architecture's
    default ``arch.tag`` and module and the results rows, sorted by name."""
    specs = []
    for arch in sorted(default_tags):
        weights = default_tags[arch]
        row = results.get(weights)
        if module_of[arch] in ATTENTION_MODULES or row is None or not in1k_only(weights.partition(".")[2]):
            continue
        specs.append({"name": arch, "module": module_of[arch], "size": int(row["img_size"]),
                      "imagenet_acc1": float(row["top1"]), "imagenet_weights": weights})
    return specs


def timm_eval_models(results_csv: Path) -> list[dict]:
    """:func:`timm_eval_specs` of the installed timm."""
    import timm
    from timm.models import _registry

    if not results_csv.exists():
        raise SystemExit(f"{results_csv}: no such file; timm_eval needs timm's results/results-imagenet.csv "
                         "(--timm-results FILE)")
    tags = {arch: _registry._model_with_tags[arch][0] for arch in timm.list_models(pretrained=False)
            if _registry._model_with_tags.get(arch)}
    return timm_eval_specs(tags, {a: _registry._model_to_module[a] for a in tags}, read_timm_results(results_csv))


def torchvision_models(eval_size: bool = False) -> list[dict]:
    """The torchvision corpus; ``eval_size``: each at its weights' evaluation
    crop (``size``), else 224 (inception_v3 299)."""
    import torchvision

    specs = [{"name": name, **torchvision_published(name)}
             for name in sorted(torchvision.models.list_models(module=torchvision.models))]
    for spec in specs:
        spec["size"] = torchvision_eval_size(spec["name"]) if eval_size else TORCHVISION_SIZES.get(spec["name"], 224)
    return specs


def torchvision_eval_size(name: str) -> int:
    """The evaluation crop of a torchvision model's DEFAULT weights (224 without ImageNet weights)."""
    import torchvision

    try:
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size
    except (KeyError, ValueError, AttributeError):
        return TORCHVISION_SIZES.get(name, 224)
    return int(crop[0] if isinstance(crop, (list, tuple)) else crop)


#: Manifest keys of a corpus entry that come from its spec, not from the export,
#: so a resumed export refreshes them on entries it does not export again.
LABEL_KEYS = ("imagenet_acc1", "imagenet_weights")


def torchvision_published(name: str) -> dict:
    """``imagenet_acc1`` (percent) and ``imagenet_weights`` of a torchvision
    model's DEFAULT weights, from the weights enum's metadata (no download);
    both ``None`` when the model has no ImageNet-1K weights."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        acc1 = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    except (KeyError, ValueError, AttributeError):
        return {"imagenet_acc1": None, "imagenet_weights": None}
    return {"imagenet_acc1": float(acc1), "imagenet_weights": str(weights)}


def labels_rows(models: list[dict], key: str = "imagenet_acc1") -> list[tuple[str, float]]:
    """``(file, accuracy)`` of every exported manifest entry whose ``key`` is
    a number, in manifest order (files relative to the corpus folder)."""
    return [(m["file"], float(m[key])) for m in models
            if m.get("status") == "exported" and m.get("file") and isinstance(m.get(key), (int, float))]


def write_labels_csv(path: Path, rows: list[tuple[str, float]]) -> None:
    """A LABELS.csv (``onnx,accuracy``; see ``gennape.transfer.labels``), atomically.
    Written here, not with gennape's writer: this half runs without gennape."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("onnx", "accuracy"))
    writer.writerows((file, repr(acc)) for file, acc in rows)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(buf.getvalue())
    tmp.replace(path)


def ofa_sample(n: int, csv_path: Path) -> list[dict]:
    """``n`` evenly spaced rows of the OFA-MobileNetV3 csv (ks, e, d JSON lists; r)."""
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    picks = sorted({i * len(rows) // n for i in range(min(n, len(rows)))})
    return [{"name": f"ofa_mbv3_row{i:04d}", "row": i, "ks": json.loads(rows[i]["ks"]),
             "e": json.loads(rows[i]["e"]), "d": json.loads(rows[i]["d"]), "r": int(rows[i]["r"])}
            for i in picks]


_OFA_SUPERNET = None


def _build(corpus: str, spec: dict):
    """(torch model in eval mode, input shape) of one corpus entry."""
    if corpus in ("torchvision", "torchvision_eval"):
        import torchvision

        size = spec.get("size", TORCHVISION_SIZES.get(spec["name"], 224))
        # A ViT's position embedding is built for one input size.
        kwargs = {"image_size": size} if spec["name"].startswith("vit_") and size != 224 else {}
        return torchvision.models.get_model(spec["name"], weights=None, **kwargs).eval(), (1, 3, size, size)
    if corpus in ("timm", "timm_eval"):
        import timm

        model = timm.create_model(spec["name"], pretrained=False)
        cfg = getattr(model, "pretrained_cfg", None) or model.default_cfg
        shape = (1, 3, spec["size"], spec["size"]) if "size" in spec else (1, *cfg["input_size"])
        return model.eval(), shape
    if corpus == "ofa":
        global _OFA_SUPERNET
        from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

        if _OFA_SUPERNET is None:
            _OFA_SUPERNET = OFAMobileNetV3(**OFA_KWARGS)
        _OFA_SUPERNET.set_active_subnet(ks=spec["ks"], e=spec["e"], d=spec["d"])
        return _OFA_SUPERNET.get_active_subnet(preserve_weight=True).eval(), (1, 3, spec["r"], spec["r"])
    raise ValueError(corpus)


def _count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


class ExportTimeout(Exception):
    pass


def _all_tensors(graph):
    """Initializers and Constant-node tensors of a graph and its subgraphs."""
    import onnx

    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _all_tensors(g)


def strip_weights(model, location: str, min_bytes: int = STRIP_MIN_BYTES) -> tuple[int, int]:
    """Point every floating-point tensor of ``min_bytes`` or more at the
    external-data file ``location`` (never written), dropping its data.
    Returns (tensors stripped, bytes stripped)."""
    import math

    import onnx
    from onnx import helper

    T = onnx.TensorProto
    floats = {T.FLOAT, T.FLOAT16, T.DOUBLE, T.BFLOAT16}
    offset = count = 0
    for t in _all_tensors(model.graph):
        if t.data_type not in floats:
            continue
        nbytes = math.prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        if nbytes < min_bytes:
            continue
        for field in ("raw_data", "float_data", "double_data", "int32_data"):
            t.ClearField(field)
        del t.external_data[:]
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        t.data_location = T.EXTERNAL
        offset += nbytes
        count += 1
    return count, offset


def export_job(job: dict) -> dict:
    """Build, export and strip one model (runs in the export worker)."""
    import signal
    import tempfile
    import warnings

    import torch

    torch.set_num_threads(1)
    # MultiheadAttention's fused fast path (taken in eval mode under no_grad)
    # has no ONNX export; the plain path computes the same function. Without
    # this torchvision's ViTs are "not exportable".
    torch.backends.mha.set_fastpath_enabled(False)
    corpus, spec, path = job["corpus"], job["spec"], Path(job["path"])
    out = {"name": spec["name"]}
    t0 = time.perf_counter()
    if corpus != "ofa":  # parameter count on the meta device first: no memory for a giant
        try:
            with torch.device("meta"):
                model, _ = _build(corpus, spec)
            params = _count_params(model)
            del model
            if params > job["max_params"]:
                return {**out, "params": params, "status": "skipped: too large",
                        "error": f"{params / 1e6:.1f}M parameters > {job['max_params'] / 1e6:.0f}M"}
        except Exception:  # noqa: BLE001 -- some models cannot be built on meta; build for real
            pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, shape = _build(corpus, spec)
    except Exception as err:  # noqa: BLE001
        return {**out, "status": "not exportable", "stage": "build", "error": f"{type(err).__name__}: {first_line(err)}"}
    params = _count_params(model)
    out.update(input_shape=list(shape), params=params, build_s=round(time.perf_counter() - t0, 2))
    if params > job["max_params"]:
        return {**out, "status": "skipped: too large",
                "error": f"{params / 1e6:.1f}M parameters > {job['max_params'] / 1e6:.0f}M"}

    def on_alarm(signum, frame):
        raise ExportTimeout(f"export took more than {job['export_timeout']} s")

    # A file, not a buffer: models over protobuf's 2 GiB limit export only to a
    # path, with their weights as external data (dropped with the folder).
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-")
    exported = Path(scratch.name) / "model.onnx"
    x = torch.randn(*shape)
    t1 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(job["export_timeout"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if job.get("exporter", "legacy") == "dynamo":  # torch's default exporter and opset
                with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
                    torch.onnx.export(model, (x,), str(exported), dynamo=True, input_names=["input"])
            else:
                torch.onnx.export(model, (x,), str(exported), opset_version=legacy_opset(job.get("exporter", "legacy")),
                                  dynamo=False, do_constant_folding=True, input_names=["input"])
    except ExportTimeout as err:
        scratch.cleanup()
        return {**out, "status": "skipped: too large", "error": str(err)}
    except Exception as err:  # noqa: BLE001
        scratch.cleanup()
        return {**out, "status": "not exportable", "stage": "export",
                "error": f"{type(err).__name__}: {first_line(err)}"}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    out["export_s"] = round(time.perf_counter() - t1, 2)
    del model

    import onnx

    proto = onnx.load(str(exported), load_external_data=False)
    scratch.cleanup()
    stripped, nbytes = strip_weights(proto, f"{path.stem}.weights.bin")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    out.update(status="exported", file=path.name, file_bytes=path.stat().st_size, onnx_nodes=len(proto.graph.node),
               opset=next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
               stripped_tensors=stripped, stripped_bytes=nbytes,
               op_types=sorted({n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
                                for n in proto.graph.node}))
    return out


def versions() -> dict:
    from importlib import import_module, metadata

    info = {}
    for mod in ("torch", "torchvision", "timm", "onnx", "onnxscript", "ofa"):
        try:
            import_module(mod)
            info[mod] = metadata.version(mod)
        except Exception as err:  # noqa: BLE001
            info[mod] = f"unavailable ({type(err).__name__}: {first_line(err, 120)})"
    return info


#: Corpus -> the corpus whose exports at the same input shape it copies.
REUSE_FROM = {"torchvision_eval": "torchvision"}


def _reusable_exports(cache: Path, corpus: str, exporter: str = "legacy") -> dict[str, dict]:
    """``{name: manifest entry}`` of the exported models of the corpus ``corpus``
    copies from (:data:`REUSE_FROM`, by the same exporter), each with its file's path as ``source``."""
    source = REUSE_FROM.get(corpus)
    folder = corpus_dir(cache, source, exporter) if source else None
    if folder is None or not (folder / "manifest.json").exists():
        return {}
    return {m["name"]: {**m, "source": str(folder / m["file"])}
            for m in json.loads((folder / "manifest.json").read_text()).get("models", [])
            if m.get("status") == "exported"}


def _reuse(entry: dict | None, spec: dict, path: Path) -> bool:
    """Copy ``entry``'s file to ``path`` when it is the same export (same input
    shape); False when there is nothing to copy."""
    import shutil

    if entry is None or entry.get("input_shape") != [1, 3, spec["size"], spec["size"]]:
        return False
    source = Path(entry["source"])
    if not source.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    return True


def export_corpus(corpus: str, specs: list[dict], cache: Path, args, env: dict) -> dict:
    folder = corpus_dir(cache, corpus, args.exporter)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    old = {}
    if manifest_path.exists() and not args.force:
        old = {m["name"]: m for m in json.loads(manifest_path.read_text()).get("models", [])}
    dynamo = args.exporter == "dynamo"
    manifest = {"corpus": corpus, "opset": "torch's default" if dynamo else legacy_opset(args.exporter),
                "exporter": f"torch.onnx.export(dynamo={dynamo})",
                "max_params": args.max_params, "export_timeout_s": args.export_timeout, "versions": env,
                "models": []}
    worker = Worker("export", EXPORT_JOBS_PER_WORKER)
    reusable = _reusable_exports(cache, corpus, args.exporter)
    t_start = time.perf_counter()
    try:
        for k, spec in enumerate(specs, 1):
            path = folder / f"{spec['name']}.onnx"
            prev = old.get(spec["name"])
            retry = prev is not None and (
                (args.retry_unexportable and prev["status"] == "not exportable")
                # skipped for its size under a lower --max-params than this run's
                or (prev["status"] == "skipped: too large" and 0 < prev.get("params", 0) <= args.max_params))
            if prev is not None and (prev["status"] != "exported" or path.exists()) \
                    and not prev["status"].startswith("worker") and not retry:
                entry = prev
                entry.update({k2: spec[k2] for k2 in LABEL_KEYS if k2 in spec})
            elif _reuse(reusable.get(spec["name"]), spec, path):
                entry = {**{k2: v for k2, v in reusable[spec["name"]].items() if k2 != "source"}, **spec,
                         "reused_from": REUSE_FROM[corpus]}
                log(f"[{corpus} {k}/{len(specs)}] {spec['name']}: copied from {REUSE_FROM[corpus]} (same input shape)")
            else:
                job = {"corpus": corpus, "spec": spec, "path": str(path), "max_params": args.max_params,
                       "export_timeout": args.export_timeout, "exporter": args.exporter}
                t0 = time.perf_counter()
                entry = worker.run(job, JOB_TIMEOUT_S)
                entry.setdefault("name", spec["name"])
                if entry["status"] == "timeout":
                    entry["status"] = "skipped: too large"
                    entry["error"] = f"build + export took more than {JOB_TIMEOUT_S} s (worker killed)"
                elif entry["status"] in ("worker died", "worker error"):
                    entry["status"] = "not exportable"
                entry["job_s"] = round(time.perf_counter() - t0, 2)
                entry.update({k2: v for k2, v in spec.items() if k2 not in entry and k2 != "name"})
                log(f"[{corpus} {k}/{len(specs)} {time.perf_counter() - t_start:7.0f}s] {spec['name']}: "
                    f"{entry['status']}" + (f" ({entry.get('error', '')[:160]})" if entry["status"] != "exported"
                                            else f" {entry.get('export_s')} s, {entry.get('onnx_nodes')} nodes"))
            manifest["models"].append(entry)
            write_json(manifest_path, manifest)
    finally:
        worker.stop()
    counts = Counter(m["status"] for m in manifest["models"])
    out = {"total": len(manifest["models"]), "exported": counts.get("exported", 0),
           "not_exportable": counts.get("not exportable", 0), "skipped_too_large": counts.get("skipped: too large", 0)}
    if any("imagenet_acc1" in m for m in manifest["models"]):
        rows = labels_rows(manifest["models"])
        write_labels_csv(folder / "labels.csv", rows)
        out["labelled"] = len(rows)
        log(f"== {corpus}: {len(rows)} exported models with a published ImageNet-1K top-1 -> {folder / 'labels.csv'}")
    return out


def cmd_export(args) -> None:
    cache = Path(args.cache).expanduser()
    env = versions()
    log(f"versions: {env}")
    results = {}
    for corpus in args.corpus:
        if corpus in ("torchvision", "torchvision_eval"):
            specs = torchvision_models(eval_size=corpus == "torchvision_eval")
        elif corpus == "timm":
            specs = timm_sample(args.timm_sample)
        elif corpus == "timm_eval":
            results_csv = Path(args.timm_results).expanduser() if args.timm_results else cache / TIMM_RESULTS
            specs = timm_eval_models(results_csv)
        else:
            if env["ofa"].startswith("unavailable"):
                log(f"ofa corpus skipped: the ofa package is {env['ofa']}")
                results[corpus] = {"error": f"ofa package {env['ofa']}"}
                continue
            csv_path = Path(args.ofa_csv) if args.ofa_csv else data_dir() / OFA_CSV
            specs = ofa_sample(args.ofa_sample, csv_path)
        if args.limit:
            specs = specs[:args.limit]
        log(f"== {corpus}: {len(specs)} models -> {corpus_dir(cache, corpus, args.exporter)}")
        results[corpus] = export_corpus(corpus, specs, cache, args, env)
        r = results[corpus]
        log(f"== {corpus}: {r['exported']} exported, {r['not_exportable']} not exportable, "
            f"{r['skipped_too_large']} skipped (too large) of {r['total']}")
    print(json.dumps(results))


# ----------------------------------------------------------- convert half
def _import_importer():
    """The project's ``gennape.cg.onnx_import`` package (this checkout's when run from one)."""
    root = Path(__file__).resolve().parent.parent
    if (root / "gennape" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))  # run from a checkout
    import gennape.cg.onnx_import as importer

    return importer


def _import_from_onnx():
    return _import_importer().from_onnx


_FROM_ONNX = None


def convert_job(job: dict) -> dict:
    """Convert one file (runs in the convert worker)."""
    global _FROM_ONNX
    import warnings

    if _FROM_ONNX is None:
        _FROM_ONNX = _import_from_onnx()
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cg = _FROM_ONNX(job["path"])
    except Exception as err:  # noqa: BLE001 -- every failure is reported
        out = {"status": "failed", "seconds": time.perf_counter() - t0, "error_type": type(err).__name__,
               "error": first_line(err, 2000), "cause": first_line(getattr(err, "cause", err), 2000)}
        if getattr(err, "unsupported", None):
            out["unsupported_ops"] = sorted({op for op, _ in err.unsupported})
        tensor = re.search(r"tensor '([^']*)'", out["cause"])
        if tensor:
            out["tensor"] = tensor.group(1)
            out["producer_op"] = _producer_op(job["path"], tensor.group(1))
        if not hasattr(err, "cause"):  # not a ConversionError: an importer bug
            out["traceback"] = traceback.format_exc()[-3000:]
        return out
    return {"status": "converted", "seconds": time.perf_counter() - t0, "cg_nodes": cg.num_nodes,
            "structure": cg.fingerprint(with_params=False), "params": cg.params, "macs": cg.macs, "op_counts": cg.op_counts(),
            "warnings": sorted({first_line(w.message, 200) for w in caught})[:5]}


def compare_exports(results: list[dict], reference: list[dict]) -> dict:
    """How the CGs of ``results`` (one exporter's convert results) compare with
    ``reference`` (the legacy exports' results, matched by name): models both
    converted, those with the same structure, the same MACs, and for each
    other model what differs (node count and op counts)."""
    ref = {r["name"]: r for r in reference if r["status"] == "converted" and "structure" in r}
    both = [(r, ref[r["name"]]) for r in results if r["status"] == "converted" and r["name"] in ref]
    differ = {}
    for got, want in both:
        if got["structure"] == want["structure"]:
            continue
        ops = sorted(set(got["op_counts"]) | set(want["op_counts"]))
        delta = {op: got["op_counts"].get(op, 0) - want["op_counts"].get(op, 0) for op in ops}
        differ[got["name"]] = {"cg_nodes": [want["cg_nodes"], got["cg_nodes"]], "macs": [want["macs"], got["macs"]],
                               "op_delta": {op: d for op, d in delta.items() if d}}
    return {"both_converted": len(both), "same_structure": len(both) - len(differ),
            "same_macs": sum(g["macs"] == w["macs"] for g, w in both),
            "same_params": sum(g["params"] == w["params"] for g, w in both), "differ": differ}


def _producer_op(path: str, tensor: str) -> str | None:
    """Op type of the node producing ``tensor`` in the file (None: not found)."""
    try:
        import onnx

        model = onnx.load(path, load_external_data=False)
    except Exception:  # noqa: BLE001
        return None
    return next((n.op_type for n in model.graph.node if tensor in n.output), None)


_NORMALISERS = [
    (re.compile(r"node name: [^)]*"), "node name: <node>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'<name>'"),
    (re.compile(r"(?<![\w.])/[\w./:\-\[\]]+"), "<node>"),
    (re.compile(r"onnx::\w+"), "<tensor>"),
    (re.compile(r"\b\d+x\d+(x\d+)*\b"), "<shape>"),
    (re.compile(r"\(\d+(, *-?\d+)*,?\)"), "(<dims>)"),
    (re.compile(r"and \d+ more"), "and N more"),
]


def failure_cause(result: dict) -> str:
    """A failure's cause with node / tensor names normalised away."""
    if result["status"] != "failed":
        return f"{result['status']}: {result.get('error', '')}"
    if result.get("unsupported_ops"):
        return f"UnsupportedOpsError: unsupported ONNX op type(s) {', '.join(result['unsupported_ops'])}"
    text = result["cause"]
    for pattern, repl in _NORMALISERS:
        text = pattern.sub(repl, text)
    producer = f" [{result['producer_op']} output]" if result.get("producer_op") else ""
    return f"{result['error_type']}{producer}: {text}"


def cmd_convert(args) -> None:
    cache = Path(args.cache).expanduser()
    worker = Worker("convert", 500)
    handled = set(_import_importer().supported_ops())
    summary = {}
    try:
        for corpus in args.corpus:
            folder = corpus_dir(cache, corpus, args.exporter)
            manifest_path = folder / "manifest.json"
            if not manifest_path.exists():
                log(f"== {corpus}: no manifest at {manifest_path} (run the export half first)")
                continue
            models = json.loads(manifest_path.read_text())["models"]
            exported = [m for m in models if m["status"] == "exported"]
            if args.limit:
                exported = exported[:args.limit]
            statuses = Counter(m["status"] for m in models)
            results = []
            for m in exported:
                path = folder / m["file"]
                r = worker.run({"path": str(path)}, args.timeout)
                r["name"] = m["name"]
                results.append(r)
            write_json(folder / "convert.json", results)
            ok = [r for r in results if r["status"] == "converted"]
            groups: dict[str, list[dict]] = defaultdict(list)
            for r in results:
                if r["status"] != "converted":
                    groups[failure_cause(r)].append(r)
            ms = sorted(r["seconds"] * 1000 for r in ok)
            slowest = max(ok, key=lambda r: r["seconds"], default=None)
            log(f"== {folder.name}: {len(models)} models: {statuses.get('exported', 0)} exported, "
                f"{statuses.get('not exportable', 0)} not exportable, "
                f"{statuses.get('skipped: too large', 0)} skipped (too large)")
            pct = 100 * len(ok) / len(results) if results else 0.0
            log(f"   converted {len(ok)} / {len(results)} ({pct:.1f} %)")
            if ms:
                log(f"   convert time: median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms "
                    f"({slowest['name']})")
            for cause, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                names = sorted(r["name"] for r in rs)
                log(f"   {len(rs):4d} x {cause}")
                example = rs[[r["name"] for r in rs].index(names[0])]["error"]
                if len(example) > args.max_message:
                    example = example[:args.max_message] + " ..."
                log(f"          e.g. {names[0]}: {example}")
                if len(names) > 1:
                    more = ", ".join(names[1:8]) + (" ..." if len(names) > 8 else "")
                    log(f"          also: {more}")
            op_models = Counter(op for r in results for op in r.get("unsupported_ops", []))
            if op_models:
                log("   unsupported op types (models using them; '*': a handler exists but refused the variant):")
                log("      " + ", ".join(f"{op}{'*' if op in handled else ''} {n}" for op, n in op_models.most_common()))
            summary[folder.name] = {
                "total": len(results), "converted": len(ok), "failed": len(results) - len(ok),
                "not_exportable": statuses.get("not exportable", 0),
                "skipped_too_large": statuses.get("skipped: too large", 0),
                "median_ms": round(statistics.median(ms), 1) if ms else None,
                "max_ms": round(ms[-1], 1) if ms else None,
                "failures": {cause: len(rs) for cause, rs in groups.items()},
                "unsupported_op_models": dict(op_models.most_common()),
            }
            if args.exporter != "legacy":
                summary[folder.name]["vs_legacy"] = _report_vs_legacy(cache, corpus, results)
    finally:
        worker.stop()
    print(json.dumps(summary))


def _report_vs_legacy(cache: Path, corpus: str, results: list[dict]) -> dict | None:
    """Print and return :func:`compare_exports` against the corpus's legacy convert results."""
    legacy = corpus_dir(cache, corpus) / "convert.json"
    reference = json.loads(legacy.read_text()) if legacy.exists() else []
    if not any("structure" in r for r in reference):
        log(f"   no legacy CGs to compare with: run `convert --corpus {corpus}` (legacy exports) first")
        return None
    cmp = compare_exports(results, reference)
    n = cmp["both_converted"]
    log(f"   against the legacy opset-17 export of the same model ({n} both converted): same CG {cmp['same_structure']}, "
        f"same MACs {cmp['same_macs']}, same #params {cmp['same_params']}")
    for name, d in sorted(cmp["differ"].items()):
        log(f"      {name}: CG nodes {d['cg_nodes'][0]} -> {d['cg_nodes'][1]}, MACs {d['macs'][0]} -> {d['macs'][1]}, "
            f"ops {', '.join(f'{op} {k:+d}' for op, k in d['op_delta'].items()) or 'same counts'}")
    return cmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="half", required=True)
    for name, help_ in (("export", "build the weightless ONNX corpora (torch Python)"),
                        ("convert", "convert the corpora with the project's importer (project Python)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--corpus", nargs="+", choices=CORPORA, default=list(CORPORA))
        p.add_argument("--cache", default=str(DEFAULT_CACHE), help="corpus folder (default %(default)s)")
        p.add_argument("--limit", type=int, default=0, help="only the first N models of each corpus (a smoke run)")
        p.add_argument("--exporter", choices=EXPORTERS, default="legacy",
                       help="legacy: TorchScript, opset 17 (default); dynamo: torch's default exporter, "
                            "into <cache>/<corpus>-dynamo, converted and compared with the legacy CGs")
        p.add_argument("--opset", type=int, choices=LEGACY_OPSETS, default=OPSET, metavar="N",
                       help=f"the legacy exporter's opset, {LEGACY_OPSETS[0]}-{LEGACY_OPSETS[-1]} (default %(default)s); "
                            "another than 17 goes to <cache>/<corpus>-opsetN, compared with the opset-17 CGs")
    exp = sub.choices["export"]
    exp.add_argument("--timm-sample", type=int, default=450, help="timm architectures (default %(default)s)")
    exp.add_argument("--timm-results", default=None, metavar="FILE",
                     help=f"timm's results/results-imagenet.csv for timm_eval (default <cache>/{TIMM_RESULTS})")
    exp.add_argument("--ofa-sample", type=int, default=100, help="OFA-MobileNetV3 subnets (default %(default)s)")
    exp.add_argument("--ofa-csv", default=None, help=f"default $GENNAPE_DATA/{OFA_CSV}")
    exp.add_argument("--max-params", type=int, default=MAX_PARAMS)
    exp.add_argument("--export-timeout", type=int, default=EXPORT_TIMEOUT_S, help="seconds per torch.onnx.export")
    exp.add_argument("--force", action="store_true", help="export again models already in a manifest")
    exp.add_argument("--retry-unexportable", action="store_true",
                     help="export again the models a manifest lists as not exportable")
    sub.choices["convert"].add_argument("--timeout", type=float, default=60.0, help="seconds per file")
    sub.choices["convert"].add_argument("--max-message", type=int, default=500,
                                        help="characters of each example error printed (all in convert.json)")
    args = parser.parse_args()
    args.exporter = export_variant(args.exporter, args.opset)
    import signal

    # A SIGTERM ends the run through the `finally` clauses, which stop the worker.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    {"export": cmd_export, "convert": cmd_convert}[args.half](args)


if __name__ == "__main__":
    main()
