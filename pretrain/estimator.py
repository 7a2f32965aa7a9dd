"""GennapeEstimator: CG -> predicted accuracy, in the scikit-learn shape.

Pipeline (GENNAPE, Mills et al., AAAI-23):

1. featurise each CG (:mod:`gennape.encoder.features`, scale-free node features);
2. a GNN encoder (:class:`gennape.encoder.gnn.CGEncoder`) pretrained contrastively
   with a supervised term (:mod:`gennape.pretrain.contrastive`) embeds each CG;
3. embeddings are standardised and fuzzy-clustered (c-means, :mod:`gennape.pretrain.fuzzy`);
4. K MLP heads, one per cluster, trained with membership-weighted losses on
   the frozen embeddings, are soft-aggregated by fuzzy membership
   (:mod:`heads`); the output is a score on the target-transform scale, and
   ``predict`` maps it back to accuracy (:mod:`gennape.pretrain.targets`);
5. a linear term in the network's log weight count, fitted on the training
   graphs after the heads, adds what scale-free features cannot see
   (:mod:`gennape.pretrain.capacity`).

``__init__`` only stores arguments; ``fit`` returns self; fitted state lives in
attributes ending in ``_``; ``save(dir)`` / ``load(dir)`` use
:mod:`gennape.pretrain.checkpoint`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from gennape.cg.errors import GennapeError
from gennape.pretrain.capacity import NO_CAPACITY, apply_capacity, fit_capacity, head_target, refit_size_term
from gennape.pretrain.distributed import is_main_process

PARTIAL_STATE = "partial_state.pt"
#: ``ood`` flags a graph whose nearest training embedding is farther than this
#: many times the 95th percentile of training nearest-neighbour distances.
OOD_THRESHOLD = 2.0


class NotFittedError(GennapeError):
    """The estimator was used before ``fit`` or ``load``."""


class GennapeEstimator:
    """Predicts accuracy (and so the rank) of networks from their CGs.

    Args:
        hidden_channels: GNN node-state width.
        embed_dim: embedding size.
        num_layers: message-passing layers.
        conv: GNN convolution (``graph``, ``gcn``, ``gin``, ``sage``, ``gat``).
        direction: message direction (``forward``, ``backward``, ``both``).
        readout: graph readout (``sum``, ``mean``, ``max`` or a ``+`` combination; see
            :data:`gennape.encoder.gnn.READOUTS`). The shipped checkpoint uses ``mean``: with
            the capacity term carrying network size, a size-free readout transferred
            better to NB-201 / NB-301 (README, ablations).
        dropout: dropout between GNN layers.
        op_encoding: how op types enter the GNN: ``class`` (op classes, the
            default, measured to transfer better) or ``op`` (one column per op
            type); see :mod:`gennape.encoder.op_encoding`.
        feature_clamp: clamp every numeric node feature to the range of the
            training graphs (default True, measured to stop OOD networks such as
            MobileNets being ranked backwards); see :mod:`gennape.encoder.feature_range`.
        num_clusters: K, fuzzy clusters and heads.
        fuzzifier: c-means fuzzifier m (> 1).
        head_hidden: hidden width of each head.
        head_layers: linear layers per head.
        target_transform: ``quantile``, ``logit_err`` or ``raw`` (see :mod:`gennape.pretrain.targets`).
        epochs: encoder pretraining epochs.
        batch_size: graphs per pretraining batch.
        lr: encoder learning rate.
        weight_decay: AdamW weight decay (encoder and heads).
        temperature: NT-Xent temperature.
        feature_mask_p: probability of masking each node feature in a view.
        edge_drop_p: probability of dropping each edge in a view.
        contrastive_weight: weight of the NT-Xent term.
        supervised_weight: weight of a supervised probe term in encoder
            pretraining (default 0: contrastive only, as in GENNAPE; measured
            to transfer better zero-shot, at some in-domain cost).
        rank_weight: weight of the pairwise ranking term (probe and heads).
        head_epochs: head-training epochs.
        head_lr: head learning rate.
        capacity_term: add the linear size term of :mod:`gennape.pretrain.capacity`
            (default True, measured to help every family).
        seed: seed of everything random (the global NumPy / torch states are untouched).
        device: ``cpu`` or ``cuda``.
    """

    def __init__(self, hidden_channels: int = 64, embed_dim: int = 64, num_layers: int = 4,
                 conv: str = "graph", direction: str = "both", readout: str = "sum",
                 dropout: float = 0.0, op_encoding: str = "class", feature_clamp: bool = True,
                 num_clusters: int = 4, fuzzifier: float = 2.0,
                 head_hidden: int = 64, head_layers: int = 2, target_transform: str = "quantile",
                 epochs: int = 5, batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 1e-4,
                 temperature: float = 0.2, feature_mask_p: float = 0.15, edge_drop_p: float = 0.1,
                 contrastive_weight: float = 1.0, supervised_weight: float = 0.0, rank_weight: float = 1.0,
                 head_epochs: int = 150, head_lr: float = 1e-3, capacity_term: bool = True, seed: int = 0,
                 device: str = "cpu"):
        self.hidden_channels = hidden_channels
        self.embed_dim = embed_dim
        self.num_layers = num_layers
        self.conv = conv
        self.direction = direction
        self.readout = readout
        self.dropout = dropout
        self.op_encoding = op_encoding
        self.feature_clamp = feature_clamp
        self.num_clusters = num_clusters
        self.fuzzifier = fuzzifier
        self.head_hidden = head_hidden
        self.head_layers = head_layers
        self.target_transform = target_transform
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.feature_mask_p = feature_mask_p
        self.edge_drop_p = edge_drop_p
        self.contrastive_weight = contrastive_weight
        self.supervised_weight = supervised_weight
        self.rank_weight = rank_weight
        self.head_epochs = head_epochs
        self.head_lr = head_lr
        self.capacity_term = capacity_term
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------ sklearn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params) -> "GennapeEstimator":
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"unknown parameter {key!r}; valid parameters: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        default = type(self)().get_params()
        changed = {k: v for k, v in self.get_params().items() if default[k] != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ---------------------------------------------------------------- building
    def _new_encoder(self):
        from gennape.encoder.features import NUM_FEATURES
        from gennape.encoder.gnn import CGEncoder

        return CGEncoder(NUM_FEATURES, self.hidden_channels, self.embed_dim, self.num_layers,
                         self.conv, self.direction, self.readout, self.dropout, self.op_encoding)

    def _new_heads(self):
        from gennape.heads.fuzzy_heads import FuzzyHeads

        return FuzzyHeads(self.embed_dim, self.num_clusters, self.head_hidden, self.head_layers)

    # -------------------------------------------------------------------- fit
    def fit(self, cgs, y, *, eval_set: tuple[Any, Sequence[float]] | None = None,
            views: Sequence[Any] | None = None, state_dir: str | Path | None = None,
            resume: bool = False, on_epoch: Callable[[int, dict], None] | None = None,
            on_batch: Callable[[], None] | None = None) -> "GennapeEstimator":
        """Pretrain the encoder, cluster the embeddings and train the heads.

        Args:
            cgs: training graphs: a list of :class:`gennape.cg.graph.CG` (or ``CG.to_pyg()``
                Data), or a :class:`gennape.pretrain.packed.GraphPack`.
            y: accuracies (fractions), one per graph.
            eval_set: optional ``(graphs, accuracies)`` for choosing the head
                epoch (validation Spearman) and for the reported metrics.
            views: optional graph-level views for contrastive pairs: a list of
                graph collections aligned with ``cgs`` (view ``j`` of graph ``i``
                is ``views[j][i]``), e.g. the same NB-101 cells with other stem
                widths or cell counts.
            state_dir: where to keep ``partial_state.pt`` after each encoder
                epoch (for ``resume``).
            resume: continue from ``state_dir``'s partial state if present.
            on_epoch: called as ``on_epoch(epoch, losses)`` after each encoder epoch.
            on_batch: called after each encoder batch (progress bars).
        """
        from gennape.pretrain.contrastive import ContrastiveConfig, PretrainModel, embed_pack, pretrain_epoch
        from gennape.pretrain.fuzzy import fit_fuzzy_clusters
        from gennape.pretrain.heads_training import HeadsConfig, predict_heads, train_heads
        from gennape.pretrain.targets import TargetTransform

        pack = as_pack(cgs)
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(pack):
            raise ValueError(f"{len(pack)} graphs but {len(y)} targets")
        packs = [pack] + [as_pack(v) for v in (views or [])]
        for j, v in enumerate(packs[1:]):
            if len(v) != len(pack):
                raise ValueError(f"view {j} has {len(v)} graphs, expected {len(pack)}")
        gen = torch.Generator().manual_seed(self.seed)
        # Parameters are initialised from the same seed whatever the global torch state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = PretrainModel(self._new_encoder(), self.embed_dim).to(self.device)
            heads = self._new_heads().to(self.device)
        # The encoder ignores feature columns that no training graph ever sets,
        # and (feature_clamp) values beyond those it trains on: the training
        # graphs' and 0, which feature masking puts in any column of a view.
        model.encoder.op_encoding.set_seen(torch.as_tensor(np.any([p.feature_presence() for p in packs], axis=0)))
        if self.feature_clamp:
            low, high = zip(*(p.numeric_range() for p in packs))
            model.encoder.feature_range.set_range(np.minimum(np.min(low, axis=0), 0),
                                                  np.maximum(np.max(high, axis=0), 0))

        transform = TargetTransform(self.target_transform).fit(y)
        y_t = transform.transform(y)
        cfg = ContrastiveConfig(self.epochs, self.batch_size, self.lr, self.weight_decay, self.temperature,
                                self.feature_mask_p, self.edge_drop_p, self.contrastive_weight,
                                self.supervised_weight, self.rank_weight)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        history: list[dict] = []
        start = 0
        state_path = Path(state_dir) / PARTIAL_STATE if state_dir is not None else None
        if resume and state_path is not None and state_path.is_file():
            start, history = _load_partial(state_path, model, opt, gen, self.get_params())
        for epoch in range(start, self.epochs):
            losses = pretrain_epoch(model, opt, packs, y_t, cfg, gen, self.device, on_batch)
            history.append(losses)
            if state_path is not None and is_main_process():  # one writer under torchrun
                _save_partial(state_path, model, opt, gen, epoch + 1, history, self.get_params())
            if on_epoch is not None:
                on_epoch(epoch + 1, losses)

        self.encoder_ = model.encoder.eval()
        self.target_transform_ = transform
        raw = embed_pack(self.encoder_, pack, device=self.device)
        self.embedding_mean_ = raw.mean(axis=0)
        self.embedding_std_ = raw.std(axis=0) + 1e-6
        emb = self._standardise(raw)
        clusters = fit_fuzzy_clusters(emb, self.num_clusters, self.fuzzifier, seed=self.seed)
        self.cluster_centers_ = clusters.centers
        self.fpc_ = clusters.fpc
        val = None
        if eval_set is not None:
            val_emb = self._standardise(embed_pack(self.encoder_, as_pack(eval_set[0]), device=self.device))
            val = (val_emb, self._membership(val_emb), np.asarray(eval_set[1], np.float64))
        self.heads_ = heads
        hcfg = HeadsConfig(self.head_epochs, lr=self.head_lr, weight_decay=self.weight_decay,
                           rank_weight=self.rank_weight)
        self.heads_info_ = train_heads(heads, emb, clusters.membership, y_t, hcfg, gen, val, self.device)
        self.heads_.eval()
        self.capacity_ = NO_CAPACITY
        if self.capacity_term:
            self.capacity_ = fit_capacity(predict_heads(heads, emb, clusters.membership, self.device),
                                          pack.log_weights, y_t)
        self._fit_ood_reference(emb, gen)
        self.history_ = history
        self.n_train_ = len(pack)
        self.metadata_ = {}
        return self

    def fit_heads(self, cgs, y, *, epochs: int = 100, lr: float = 5e-4, reset: bool = False,
                  refit_transform: bool = True) -> "GennapeEstimator":
        """Fine-tune only the heads on new labelled graphs (encoder and cluster
        centres stay frozen), e.g. a few networks of a new family.

        Args:
            cgs: graphs (as for :meth:`fit`).
            y: their accuracies (fractions).
            epochs: head-training epochs.
            lr: head learning rate (lower than ``head_lr``: the heads start trained).
            reset: start the heads from scratch instead of from their trained state.
            refit_transform: refit the target transform on ``y``, so that
                :meth:`predict` answers on the new family's accuracy scale.
        """
        from gennape.pretrain.heads_training import HeadsConfig, train_heads
        from gennape.pretrain.targets import TargetTransform

        self._check_fitted()
        y = np.asarray(y, dtype=np.float64)
        pack = as_pack(cgs)
        emb = self.embed(pack)
        if len(y) != len(emb):
            raise ValueError(f"{len(emb)} graphs but {len(y)} targets")
        if refit_transform:
            self.target_transform_ = TargetTransform(self.target_transform_.kind).fit(y)
        if reset:
            self.heads_.reset_parameters()
        gen = torch.Generator().manual_seed(self.seed)
        cfg = HeadsConfig(epochs, batch_size=min(256, max(len(y), 2)), lr=lr, weight_decay=self.weight_decay,
                          rank_weight=self.rank_weight)
        target = head_target(self.target_transform_.transform(y), pack.log_weights, self.capacity_)
        train_heads(self.heads_, emb, self._membership(emb), target, cfg, gen, device=self.device)
        self.heads_.eval()
        return self

    def refit_size_term(self, cgs, y) -> "GennapeEstimator":
        """Refit the size term's slope and offset on labelled graphs of a new
        family, keeping the heads' weight (:func:`gennape.pretrain.capacity.refit_size_term`;
        ``y`` as fractions, on the current target transform's scale)."""
        from gennape.pretrain.heads_training import predict_heads

        self._check_fitted()
        pack = as_pack(cgs)
        emb = self.embed(pack)
        score = predict_heads(self.heads_, emb, self._membership(emb), self.device)
        y_t = self.target_transform_.transform(np.asarray(y, dtype=np.float64))
        self.capacity_ = refit_size_term(score, pack.log_weights, y_t, self.capacity_)
        return self

    # ---------------------------------------------------------------- predict
    def embed(self, cgs) -> np.ndarray:
        """Standardised embeddings ``[n, embed_dim]``."""
        from gennape.pretrain.contrastive import embed_pack

        self._check_fitted()
        return self._standardise(embed_pack(self.encoder_, as_pack(cgs), device=self.device))

    def memberships(self, cgs) -> np.ndarray:
        """Fuzzy memberships ``[n, K]`` against the learned centres (rows sum to one)."""
        return self._membership(self.embed(cgs))

    def predict_score(self, cgs) -> np.ndarray:
        """Predictions on the target-transform scale (higher = better), ``[n]``."""
        pack = as_pack(cgs)
        return self.score_embedded(self.embed(pack), pack.log_weights)

    def score_embedded(self, emb: np.ndarray, log_weights: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        """:meth:`predict_score` from embeddings already computed (:meth:`embed`)
        and the graphs' ``GraphPack.log_weights``; ``u``: their memberships, if known."""
        from gennape.pretrain.heads_training import predict_heads

        u = self._membership(emb) if u is None else u
        return apply_capacity(predict_heads(self.heads_, emb, u, self.device), log_weights, self.capacity_)

    def predict(self, cgs) -> np.ndarray:
        """Predicted accuracy (fraction, on the training family's scale), ``[n]``.

        Clipped to ``[0, 1]``: the inverse target transform extrapolates
        linearly, so a network far from the training data could otherwise get
        an "accuracy" above 1 or below 0. Clipping can tie such networks; rank
        by :meth:`predict_score` (unclipped, same order otherwise)."""
        self._check_fitted()
        return self._accuracy(self.predict_score(cgs))

    def _accuracy(self, score: np.ndarray) -> np.ndarray:
        return np.clip(self.target_transform_.inverse(score), 0.0, 1.0)

    def predict_details(self, cgs) -> dict[str, np.ndarray]:
        """Everything about ``cgs`` from one embedding pass.

        Returns:
            ``accuracy`` ``[n]`` (as :meth:`predict`: clipped to ``[0, 1]``),
            ``score`` ``[n]`` (as :meth:`predict_score`: unclipped, the one to
            rank by), ``memberships`` ``[n, K]``, ``ood_score``
            ``[n]`` (as :meth:`ood_score`) and ``ood`` ``[n]`` bool
            (``ood_score > ood_threshold_``).
        """
        pack = as_pack(cgs)
        emb = self.embed(pack)
        u = self._membership(emb)
        score = self.score_embedded(emb, pack.log_weights, u)
        ood = self._ood(emb)
        return {"accuracy": self._accuracy(score), "score": score, "memberships": u,
                "ood_score": ood, "ood": ood > self.ood_threshold_}

    def ood_score(self, cgs) -> np.ndarray:
        """Out-of-distribution score ``[n]``: distance of each embedding to its
        nearest stored training embedding, divided by the 95th percentile of
        that distance among the training embeddings themselves. About 1 or
        less = like the training data; well above 1 = unlike anything seen."""
        return self._ood(self.embed(cgs))

    # ---------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "heads_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(...) first "
                "or load a checkpoint with GennapeEstimator.load(dir)"
            )

    def _standardise(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.embedding_mean_) / self.embedding_std_

    def _membership(self, emb: np.ndarray) -> np.ndarray:
        from gennape.pretrain.fuzzy import predict_membership

        return predict_membership(emb, self.cluster_centers_, self.fuzzifier)

    def _fit_ood_reference(self, emb: np.ndarray, gen: torch.Generator, size: int = 2000) -> None:
        if len(emb) > size:
            emb = emb[torch.randperm(len(emb), generator=gen)[:size].numpy()]
        # Stored as float32 in checkpoints: round now so a loaded estimator scores the same.
        emb = emb.astype(np.float32).astype(np.float64)
        self.reference_embeddings_ = emb
        d = torch.cdist(torch.as_tensor(emb), torch.as_tensor(emb))
        d.fill_diagonal_(float("inf"))
        nn = d.min(dim=1).values.numpy() if len(emb) > 1 else np.ones(1)
        self.ood_scale_ = float(np.quantile(nn, 0.95)) or 1.0
        self.ood_threshold_ = OOD_THRESHOLD

    def _ood(self, emb: np.ndarray) -> np.ndarray:
        d = torch.cdist(torch.as_tensor(emb), torch.as_tensor(self.reference_embeddings_))
        return d.min(dim=1).values.numpy() / self.ood_scale_

    # -------------------------------------------------------------- save/load
    def save(self, directory: str | Path) -> Path:
        """Write a checkpoint directory (atomic; see :mod:`gennape.pretrain.checkpoint`)."""
        from gennape.pretrain.checkpoint import save_checkpoint

        return save_checkpoint(directory, *self.checkpoint_state())

    def checkpoint_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """``(tensors, config)`` of a checkpoint of this estimator."""
        from gennape.cg.ops import OPS
        from gennape.encoder.features import FEATURE_NAMES

        self._check_fitted()
        tensors = {f"encoder.{k}": v for k, v in self.encoder_.state_dict().items()}
        tensors.update({f"heads.{k}": v for k, v in self.heads_.state_dict().items()})
        tensors["cluster_centers"] = torch.as_tensor(self.cluster_centers_)
        tensors["embedding_mean"] = torch.as_tensor(self.embedding_mean_)
        tensors["embedding_std"] = torch.as_tensor(self.embedding_std_)
        tensors["reference_embeddings"] = torch.as_tensor(self.reference_embeddings_, dtype=torch.float32)
        config = {
            "estimator": type(self).__name__,
            "params": self.get_params(),
            "op_vocabulary": list(OPS),
            "feature_names": list(FEATURE_NAMES),
            "cluster_centers": np.asarray(self.cluster_centers_).tolist(),
            "fuzzy_partition_coefficient": self.fpc_,
            "target_transform": self.target_transform_.to_dict(),
            "capacity": list(self.capacity_),
            "ood_scale": self.ood_scale_,
            "ood_threshold": self.ood_threshold_,
            "n_train": self.n_train_,
            "heads_training": self.heads_info_,
            "history": self.history_,
            **self.metadata_,
        }
        return tensors, config

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "GennapeEstimator":
        """Read a checkpoint written by :meth:`save`."""
        from gennape.pretrain.checkpoint import load_checkpoint

        tensors, config = load_checkpoint(directory)
        if config.get("estimator") not in (None, cls.__name__):
            raise GennapeError(f"{directory}: a {config.get('estimator')} checkpoint, not a {cls.__name__} one; "
                               "load it with gennape.transfer.model.load_estimator")
        return cls.from_state(tensors, config, directory, device)

    @classmethod
    def from_state(cls, tensors: dict, config: dict, directory: str | Path, device: str = "cpu"):
        """The estimator of :meth:`checkpoint_state`'s ``(tensors, config)``;
        errors name ``directory``."""
        from gennape.cg.ops import OPS

        if config.get("op_vocabulary") != list(OPS):
            raise GennapeError(f"{directory}: checkpoint op vocabulary differs from this code's")
        try:
            est = cls._from_checkpoint(tensors, config, device)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            # A config.json or model.pt with a field missing or of the wrong kind.
            what = f"{err} missing" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            raise GennapeError(f"{directory}: incomplete or malformed checkpoint ({what.splitlines()[0]})") from None
        except RuntimeError as err:
            raise GennapeError(f"{directory}: model.pt does not match config.json ({str(err).splitlines()[0]})") from None
        known = {"estimator", "params", "op_vocabulary", "feature_names", "cluster_centers",
                 "fuzzy_partition_coefficient", "target_transform", "capacity", "ood_scale", "ood_threshold",
                 "n_train", "heads_training", "history", "versions"}
        est.metadata_ = {k: v for k, v in config.items() if k not in known}
        return est

    @classmethod
    def _from_checkpoint(cls, tensors: dict, config: dict, device: str) -> "GennapeEstimator":
        from gennape.pretrain.targets import TargetTransform

        est = cls(**{**config["params"], "device": device})
        est.encoder_ = est._new_encoder()
        est.encoder_.load_state_dict(_prefixed(tensors, "encoder."))
        est.heads_ = est._new_heads()
        est.heads_.load_state_dict(_prefixed(tensors, "heads."))
        est.encoder_.to(device).eval()
        est.heads_.to(device).eval()
        est.cluster_centers_ = tensors["cluster_centers"].numpy()
        est.embedding_mean_ = tensors["embedding_mean"].numpy()
        est.embedding_std_ = tensors["embedding_std"].numpy()
        est.reference_embeddings_ = tensors["reference_embeddings"].numpy().astype(np.float64)
        est.target_transform_ = TargetTransform.from_dict(config["target_transform"])
        est.fpc_ = config["fuzzy_partition_coefficient"]
        est.capacity_ = tuple(float(v) for v in config["capacity"])
        if len(est.capacity_) != 3:
            raise ValueError(f"capacity has {len(est.capacity_)} values, expected 3")
        est.ood_scale_ = config["ood_scale"]
        est.ood_threshold_ = config["ood_threshold"]
        est.n_train_ = config["n_train"]
        est.heads_info_ = config["heads_training"]
        est.history_ = config["history"]
        return est


def as_pack(items):
    """A :class:`GraphPack` from a pack, or from a list of CGs / PyG Data."""
    from gennape.pretrain.packed import GraphPack

    if isinstance(items, GraphPack):
        return items
    return GraphPack.from_items(items)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# ----------------------------------------------------- partial state (resume)
def _params_tensor(params: dict) -> torch.Tensor:
    return torch.tensor(list(json.dumps(params, sort_keys=True).encode()), dtype=torch.uint8)


def _save_partial(path: Path, model, opt, gen, epoch: int, history: list[dict], params: dict) -> None:
    """Encoder-training state after ``epoch`` epochs, as a flat dict of tensors
    written atomically (temporary file, then rename)."""
    from gennape.cg.atomic import write_bytes_atomic

    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            tensors[f"optim.{i}.{k}"] = torch.as_tensor(v)
    tensors["rng"] = gen.get_state()
    tensors["epoch"] = torch.tensor(epoch)
    tensors["history"] = torch.tensor([[h["loss"], h["contrastive"], h["supervised"]] for h in history],
                                      dtype=torch.float64).reshape(-1, 3)
    tensors["params"] = _params_tensor(params)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(tensors, buf)
    write_bytes_atomic(path, buf.getvalue())  # removes its temporary file if interrupted


def _load_partial(path: Path, model, opt, gen, params: dict) -> tuple[int, list[dict]]:
    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses pickled objects; a truncated file fails too
        raise GennapeError(f"{path}: not a tensors-only partial state ({type(err).__name__}); "
                           "remove it or run without --resume") from None
    if not isinstance(tensors, dict) or not isinstance(tensors.get("params"), torch.Tensor):
        raise GennapeError(f"{path}: not a gennape partial state; remove it or run without --resume")
    if not torch.equal(tensors["params"], _params_tensor(params)):
        raise GennapeError(f"{path}: partial state was made with other parameters; "
                           "remove it or run without --resume")
    model.load_state_dict(_prefixed(tensors, "model."))
    opt_state = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": opt_state["param_groups"]})
    gen.set_state(tensors["rng"])
    history = [{"loss": float(a), "contrastive": float(b), "supervised": float(c)}
               for a, b, c in tensors["history"].tolist()]
    return int(tensors["epoch"]), history


__all__ = ["GennapeEstimator", "NotFittedError", "as_pack"]
