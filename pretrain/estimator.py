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

Steps 2-5 are one ``nn.Module``, :class:`gennape.pretrain.model.GennapeModel`
(``model_``), which predicting, :meth:`GennapeEstimator.fit_heads` and
:meth:`GennapeEstimator.finetune` all run.

``__init__`` only stores arguments; ``fit`` and ``finetune`` return self;
fitted state lives in attributes ending in ``_``; ``save(dir)`` / ``load(dir)``
come from :mod:`gennape.pretrain.base` (checkpoint layout there).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gennape.cg.errors import GennapeError
from gennape.pretrain.base import LABEL_KEY, YOUR_LABELS, EstimatorBase, keywords_for, split_layout1, strip_prefix
from gennape.pretrain.capacity import (
    choose_size_term, fit_capacity, head_target, refit_size_term, size_term_choice,
)
from gennape.pretrain.targets import TargetTransform

PARTIAL_STATE = "partial_state.pt"
#: ``ood`` flags a graph whose nearest training embedding is farther than this
#: many times the 95th percentile of training nearest-neighbour distances.
OOD_THRESHOLD = 2.0
#: What :meth:`GennapeEstimator.finetune` can train: the heads alone, or encoder and heads.
FINETUNE_MODES = ("heads", "encoder")


def _capacity(values) -> tuple[float, float, float]:
    coef = tuple(float(v) for v in values)
    if len(coef) != 3:
        raise ValueError(f"capacity has {len(coef)} values, expected 3")
    return coef


#: config.json ``fitted`` key -> (attribute, to JSON, from JSON): the one list
#: that saving and loading both read. The fitted tensors (encoder, heads,
#: standardisation, cluster centres, OOD reference) are ``model_``'s
#: ``state_dict``, in model.pt.
FITTED: dict[str, tuple[str, Callable, Callable]] = {
    "target_transform": ("target_transform_", TargetTransform.to_dict, TargetTransform.from_dict),
    "capacity": ("capacity_", list, _capacity),
    "fuzzy_partition_coefficient": ("fpc_", float, float),
    "ood_scale": ("ood_scale_", float, float),
    "ood_threshold": ("ood_threshold_", float, float),
    "head_mean": ("head_mean_", float, float),
    "n_train": ("n_train_", int, int),
    "heads_training": ("heads_info_", dict, dict),
    "history": ("history_", list, list),
}


#: Values of ``fitted`` keys that checkpoints written before the key existed lack.
FITTED_DEFAULTS = {"head_mean": 0.0}


def model_scalar(buffer: str, doc: str) -> property:
    """A float attribute of the estimator kept in ``model_``'s 0-d buffer ``buffer``."""

    def get(self) -> float:
        return float(getattr(self.model_, buffer))

    def set(self, value: float) -> None:
        import torch  # not at import time: the CLI's parser imports this module

        like = getattr(self.model_, buffer)
        setattr(self.model_, buffer, torch.tensor(float(value), dtype=like.dtype, device=like.device))

    return property(get, set, doc=doc)


class NotFittedError(GennapeError):
    """The estimator was used before ``fit`` or ``load``."""


def check_finetune_options(mode: str, epochs: int) -> None:
    """Raise ``ValueError`` for a fine-tuning mode or epoch count that cannot be run."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown fine-tuning mode {mode!r}; valid modes: {', '.join(FINETUNE_MODES)}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")


class GennapeEstimator(EstimatorBase):
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
        size_measure: the size that term reads, by name
            (:data:`gennape.pretrain.size_measure.SIZE_MEASURES`: ``weights``,
            the paper-protocol default, or ``weights_macs``).
        head_trust: ``constant`` or ``ood``: pull the heads' score toward their
            training mean on networks unlike the training ones
            (:mod:`gennape.pretrain.head_trust`).
        seed: seed of everything random (the global NumPy / torch states are untouched).
        device: ``cpu`` or ``cuda``.

    These are the only defaults: the encoder
    (:class:`gennape.encoder.gnn.CGEncoder`) and the pretraining loop
    (:class:`gennape.pretrain.contrastive.ContrastiveConfig`) get them by
    keyword, ``gennape pretrain`` reads them from :meth:`get_params`.

    Fitted attributes: ``model_`` (the :class:`gennape.pretrain.model.GennapeModel`
    every prediction runs), ``target_transform_``, ``capacity_`` (the size
    term's ``(a, b, c)``, kept in ``model_``), ``fpc_``, ``ood_scale_``,
    ``ood_threshold_``, ``n_train_``, ``heads_info_``, ``history_`` and
    ``metadata_`` (what the caller records with the checkpoint).
    """

    def __init__(self, hidden_channels: int = 64, embed_dim: int = 64, num_layers: int = 4,
                 conv: str = "graph", direction: str = "both", readout: str = "sum",
                 dropout: float = 0.0, op_encoding: str = "class", feature_clamp: bool = True,
                 num_clusters: int = 4, fuzzifier: float = 2.0,
                 head_hidden: int = 64, head_layers: int = 2, target_transform: str = "quantile",
                 epochs: int = 5, batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 1e-4,
                 temperature: float = 0.2, feature_mask_p: float = 0.15, edge_drop_p: float = 0.1,
                 contrastive_weight: float = 1.0, supervised_weight: float = 0.0, rank_weight: float = 1.0,
                 head_epochs: int = 150, head_lr: float = 1e-3, capacity_term: bool = True,
                 size_measure: str = "weights", head_trust: str = "constant", seed: int = 0,
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
        self.size_measure = size_measure
        self.head_trust = head_trust
        self.seed = seed
        self.device = device

    # ---------------------------------------------------------------- building
    def _new_encoder(self):
        from gennape.encoder.features import NUM_FEATURES
        from gennape.encoder.gnn import CGEncoder

        return CGEncoder(NUM_FEATURES, out_channels=self.embed_dim, **keywords_for(CGEncoder, self.get_params()))

    def _new_heads(self):
        from gennape.heads.fuzzy_heads import FuzzyHeads

        return FuzzyHeads(self.embed_dim, num_heads=self.num_clusters, hidden_channels=self.head_hidden,
                          num_layers=self.head_layers)

    def _new_model(self, encoder, heads):
        from gennape.pretrain.model import GennapeModel

        return GennapeModel(encoder, heads, self.embed_dim, self.fuzzifier, self.size_measure,
                            self.head_trust).to(self.device)

    def size_of(self, cgs) -> np.ndarray:
        """``[n]``: the size measure the size term reads (``size_measure``) of each graph."""
        from gennape.pretrain.size_measure import pack_size

        return pack_size(as_pack(cgs), self.size_measure)

    @property
    def capacity_(self) -> tuple[float, float, float]:
        """The size term's ``(a, b, c)`` (:mod:`gennape.pretrain.capacity`)."""
        return tuple(float(v) for v in self.model_.capacity.tolist())

    @capacity_.setter
    def capacity_(self, coef) -> None:
        self.model_.set_capacity(coef)

    # The OOD unit and the heads' training mean live in model_ (its forward reads them) and config.json.
    ood_scale_ = model_scalar("ood_scale", "Unit of the OOD score: the 95th percentile of training "
                                           "nearest-neighbour distances.")
    head_mean_ = model_scalar("head_mean", "The heads' mean score over the training graphs "
                                           "(what ``head_trust=\"ood\"`` pulls toward).")

    # -------------------------------------------------------------------- fit
    def fit(self, cgs, y, *, eval_set: tuple[Any, Sequence[float]] | None = None,
            views: Sequence[Any] | None = None, unlabelled: Any = None, state_dir: str | Path | None = None,
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
            unlabelled: optional graphs without labels (e.g. the networks a
                user wants ranked) that join the contrastive stage only: the
                encoder learns to tell them apart; clusters, heads, the size
                term and the OOD reference come from ``cgs`` alone. Not with ``views``.
            state_dir: where to keep ``partial_state.pt`` after each encoder
                epoch (for ``resume``).
            resume: continue from ``state_dir``'s partial state if present.
            on_epoch: called as ``on_epoch(epoch, losses)`` after each encoder epoch.
            on_batch: called after each encoder batch (progress bars).
        """
        import torch

        from gennape.pretrain.contrastive import ContrastiveConfig, PretrainModel, embed_pack, pretrain_epoch
        from gennape.pretrain.distributed import is_main_process
        from gennape.pretrain.fuzzy import fit_fuzzy_clusters
        from gennape.pretrain.heads_training import HeadsConfig, predict_heads, train_heads
        from gennape.pretrain.model import run_model
        from gennape.pretrain.packed import GraphPack

        pack = as_pack(cgs)
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(pack):
            raise ValueError(f"{len(pack)} graphs but {len(y)} targets")
        packs = [pack] + [as_pack(v) for v in (views or [])]
        for j, v in enumerate(packs[1:]):
            if len(v) != len(pack):
                raise ValueError(f"view {j} has {len(v)} graphs, expected {len(pack)}")
        if unlabelled is not None:
            if views:
                raise ValueError("unlabelled graphs cannot be combined with views (views align with cgs)")
            packs = [GraphPack.concat([pack, as_pack(unlabelled)])]
        gen = torch.Generator().manual_seed(self.seed)
        # Parameters are initialised from the same seed whatever the global torch state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            pretrain = PretrainModel(self._new_encoder(), self.embed_dim).to(self.device)
            heads = self._new_heads()
        encoder = pretrain.encoder
        # The encoder ignores feature columns that no training graph ever sets,
        # and (feature_clamp) values beyond those it trains on: the training
        # graphs' and 0, which feature masking puts in any column of a view.
        encoder.op_encoding.set_seen(torch.as_tensor(np.any([p.feature_presence() for p in packs], axis=0)))
        if self.feature_clamp:
            low, high = zip(*(p.numeric_range() for p in packs))
            encoder.feature_range.set_range(np.minimum(np.min(low, axis=0), 0), np.maximum(np.max(high, axis=0), 0))

        transform = TargetTransform(self.target_transform).fit(y)
        y_t = transform.transform(y)
        y_contrast = np.concatenate([y_t, np.full(len(packs[0]) - len(pack), np.nan)])  # NaN: unlabelled
        params = self.get_params()
        cfg = ContrastiveConfig(**keywords_for(ContrastiveConfig, params))
        opt = torch.optim.AdamW(pretrain.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        history: list[dict] = []
        start = 0
        state_path = Path(state_dir) / PARTIAL_STATE if state_dir is not None else None
        if resume and state_path is not None and state_path.is_file():
            start, history = _load_partial(state_path, pretrain, opt, gen, params)
        for epoch in range(start, cfg.epochs):
            losses = pretrain_epoch(pretrain, opt, packs, y_contrast, cfg, gen, self.device, on_batch)
            history.append(losses)
            if state_path is not None and is_main_process():  # one writer under torchrun
                _save_partial(state_path, pretrain, opt, gen, epoch + 1, history, params)
            if on_epoch is not None:
                on_epoch(epoch + 1, losses)

        model = self._new_model(encoder.eval(), heads)
        raw = embed_pack(encoder, pack, device=self.device)
        model.embedding_mean = torch.as_tensor(raw.mean(axis=0), device=self.device)
        model.embedding_std = torch.as_tensor(raw.std(axis=0) + 1e-6, device=self.device)
        emb = model.standardise(torch.as_tensor(raw, device=self.device)).cpu().numpy()
        clusters = fit_fuzzy_clusters(emb, self.num_clusters, self.fuzzifier, seed=self.seed)
        model.cluster_centers = torch.as_tensor(clusters.centers, device=self.device)
        val = None
        if eval_set is not None:
            out = run_model(model, as_pack(eval_set[0]), device=self.device)
            val = (out.embedding, out.membership, np.asarray(eval_set[1], np.float64))
        hcfg = HeadsConfig(self.head_epochs, lr=self.head_lr, weight_decay=self.weight_decay,
                           rank_weight=self.rank_weight)
        self.heads_info_ = train_heads(heads, emb, clusters.membership, y_t, hcfg, gen, val, self.device)
        train_heads_score = predict_heads(heads, emb, clusters.membership, self.device)
        if self.capacity_term:
            model.set_capacity(fit_capacity(train_heads_score, self.size_of(pack), y_t))
        self.model_ = model.eval()
        self.head_mean_ = float(np.mean(train_heads_score))
        self.target_transform_ = transform
        self.fpc_ = clusters.fpc
        self._fit_ood_reference(emb, gen)
        self.history_ = history
        self.n_train_ = len(pack)
        self.metadata_ = {}
        return self

    def fit_heads(self, cgs, y, *, epochs: int = 100, lr: float = 5e-4, reset: bool = False,
                  refit_transform: bool = True, seed: int | None = None) -> "GennapeEstimator":
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
            seed: seed of the training order (default: the estimator's ``seed``).
        """
        import torch

        from gennape.pretrain.heads_training import HeadsConfig, train_heads

        y = np.asarray(y, dtype=np.float64)
        pack = as_pack(cgs)
        out = self._run(pack)
        if len(y) != len(pack):
            raise ValueError(f"{len(pack)} graphs but {len(y)} targets")
        if refit_transform:
            self.target_transform_ = TargetTransform(self.target_transform_.kind).fit(y)
        heads = self.model_.heads
        seed = self.seed if seed is None else seed
        if reset:  # seeded, like fit's initialisation: the same call gives the same heads
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                heads.reset_parameters()
        gen = torch.Generator().manual_seed(seed)
        cfg = HeadsConfig(epochs, batch_size=min(256, max(len(y), 2)), lr=lr, weight_decay=self.weight_decay,
                          rank_weight=self.rank_weight)
        target = head_target(self.target_transform_.transform(y), self.size_of(pack), self.capacity_)
        train_heads(heads, out.embedding, out.membership, target, cfg, gen, device=self.device)
        self.model_.eval()
        return self

    def refit_size_term(self, cgs, y) -> "GennapeEstimator":
        """Refit the size term's slope and offset on labelled graphs of a new
        family, keeping the heads' weight (:func:`gennape.pretrain.capacity.refit_size_term`;
        ``y`` as fractions, on the current target transform's scale)."""
        pack = as_pack(cgs)
        out = self._run(pack)
        y_t = self.target_transform_.transform(np.asarray(y, dtype=np.float64))
        self.capacity_ = refit_size_term(out.head_score, self.size_of(pack), y_t, self.capacity_)
        return self

    def finetune(self, cgs, y, *, mode: str = "encoder", epochs: int = 100, lr: float = 5e-4,
                 encoder_lr: float = 1e-4, refit_size_term: bool | str = "auto",
                 seed: int = 0) -> "GennapeEstimator":
        """Warm-started fit on a few labelled networks of a new family; returns self.

        The target transform is refitted on ``y`` (predictions come out on the
        new family's accuracy scale); the size term's slope and offset are
        then refitted on them (:meth:`refit_size_term`) or kept, as
        ``refit_size_term`` says, and the heads learn what it leaves over.
        Then, by ``mode``:

        ``encoder``
            encoder and heads trained end to end through :attr:`model_`
            (membership-weighted MSE + pairwise ranking, as in :meth:`fit`),
            the encoder at ``encoder_lr``, the heads at ``lr``; standardisation
            and cluster centres stay fixed, memberships follow the moving embeddings;
        ``heads``
            the heads only (:meth:`fit_heads`).

        The networks' embeddings join the out-of-distribution reference set
        (the family is no longer unseen), ``metadata_["finetune"]`` records
        the run and ``metadata_["label"]`` becomes :data:`gennape.pretrain.base.YOUR_LABELS`
        (:meth:`label`: predictions are now on the scale of ``y``).

        Args:
            cgs: the labelled graphs (as for :meth:`fit`).
            y: their accuracies (fractions).
            mode: one of :data:`FINETUNE_MODES`.
            epochs: passes over the labelled set.
            lr: the heads' learning rate.
            encoder_lr: the encoder's learning rate (``mode="encoder"``).
            refit_size_term: ``"auto"`` (default): refit only if that predicts
                the labelled networks better by leave-one-out
                (:func:`gennape.pretrain.capacity.choose_size_term`);
                ``"refit"`` / ``True`` or ``"keep"`` / ``False`` force it.
                ``metadata_["finetune"]`` records the choice (``size_term``)
                and, for ``auto``, the two leave-one-out errors.
            seed: seed of the training order and of dropout (the global
                random states are left as they were).
        """
        import torch

        check_finetune_options(mode, epochs)
        requested = size_term_choice(refit_size_term)
        self._check_fitted()
        y = np.asarray(y, dtype=np.float64)
        pack = as_pack(cgs)
        if len(pack) != len(y):
            raise ValueError(f"{len(pack)} graphs but {len(y)} accuracies")
        if len(y) < 2:
            raise GennapeError(f"fine-tuning needs at least 2 labelled networks, got {len(y)}")
        if np.ptp(y) == 0:
            raise GennapeError("fine-tuning needs labels that differ (all accuracies are equal)")
        self.target_transform_ = TargetTransform(self.target_transform_.kind).fit(y)
        size_term, size_term_errors = requested, {}
        if requested == "auto":
            size_term, size_term_errors = choose_size_term(self._run(pack).head_score, self.size_of(pack),
                                                           self.target_transform_.transform(y), self.capacity_)
        if size_term == "refit":
            self.refit_size_term(pack, y)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout, if any
            if mode == "heads":
                self.fit_heads(pack, y, epochs=epochs, lr=lr, refit_transform=False, seed=seed)
            else:
                self._train_end_to_end(pack, y, epochs, lr, encoder_lr, seed)
        # Heads trained on the user's family are trusted on it (and the training
        # targets above did not pull toward the old mean).
        self.head_trust = self.model_.head_trust = "constant"
        model = self.model_
        new = torch.as_tensor(self._run(pack).embedding, dtype=torch.float32, device=model.embedding_mean.device)
        model.reference_embeddings = torch.cat([model.reference_embeddings, new])
        self.metadata_ = {**self.metadata_, LABEL_KEY: YOUR_LABELS, "finetune": {
            "mode": mode, "epochs": epochs, "lr": lr, "encoder_lr": encoder_lr if mode == "encoder" else None,
            "seed": seed, "n": int(len(y)), "refit_size_term": size_term == "refit",
            "size_term": size_term, "size_term_requested": requested, **size_term_errors,
        }}
        return self

    def _train_end_to_end(self, pack, y: np.ndarray, epochs: int, lr: float, encoder_lr: float, seed: int) -> None:
        import torch

        from gennape.pretrain.heads_training import heads_loss
        from gennape.pretrain.progress import progress

        model = self.model_
        # The heads learn what the size term leaves over (gennape.pretrain.capacity).
        target = head_target(self.target_transform_.transform(y), self.size_of(pack), self.capacity_)
        y_t = torch.as_tensor(target, dtype=torch.float32, device=self.device)
        opt = torch.optim.AdamW([
            {"params": model.encoder.parameters(), "lr": encoder_lr},
            {"params": model.heads.parameters(), "lr": lr},
        ], weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        batch_size = min(256, len(y))
        model.train()
        for _ in progress(range(epochs), desc="fine-tuning encoder and heads", unit="epoch", leave=False):
            order = torch.randperm(len(y), generator=gen)
            for start in range(0, len(y), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:
                    continue
                b = pack.collate(idx.numpy(), device=self.device)
                emb = model.embed(b.x, b.edge_index, b.batch)
                loss = heads_loss(model.heads, emb.float(), model.membership(emb).float(), y_t[idx.to(self.device)],
                                  self.rank_weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()

    # ---------------------------------------------------------------- predict
    def _run(self, cgs):
        """:func:`gennape.pretrain.model.run_model` over ``cgs``."""
        from gennape.pretrain.model import run_model

        self._check_fitted()
        return run_model(self.model_, as_pack(cgs), device=self.device)

    def embed(self, cgs) -> np.ndarray:
        """Standardised embeddings ``[n, embed_dim]``."""
        return self._run(cgs).embedding

    def memberships(self, cgs) -> np.ndarray:
        """Fuzzy memberships ``[n, K]`` against the learned centres (rows sum to one)."""
        return self._run(cgs).membership

    def predict_score(self, cgs) -> np.ndarray:
        """Predictions on the target-transform scale (higher = better), ``[n]``."""
        return self._run(cgs).score

    def score_embedded(self, emb: np.ndarray, size: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        """:meth:`predict_score` from embeddings already computed (:meth:`embed`)
        and the graphs' :meth:`size_of`; ``u``: their memberships, if known."""
        import torch

        self._check_fitted()
        model, dev = self.model_, self.device
        with torch.no_grad():
            emb_t = torch.as_tensor(emb, dtype=torch.float64, device=dev)
            u_t = model.membership(emb_t) if u is None else torch.as_tensor(u, device=dev)
            score = model.size_term(model.head_score(emb_t, u_t), torch.as_tensor(size, device=dev))
        return score.cpu().numpy()

    def predict(self, cgs) -> np.ndarray:
        """Predicted accuracy (fraction, on the training family's scale), ``[n]``.

        Clipped to ``[0, 1]``: the inverse target transform extrapolates
        linearly, so a network far from the training data could otherwise get
        an "accuracy" above 1 or below 0. Clipping can tie such networks; rank
        by :meth:`predict_score` (unclipped, same order otherwise)."""
        return self._accuracy(self.predict_score(cgs))

    def _accuracy(self, score: np.ndarray) -> np.ndarray:
        return np.clip(self.target_transform_.inverse(score), 0.0, 1.0)

    def predict_details(self, cgs) -> dict[str, np.ndarray]:
        """Everything about ``cgs`` from one pass of :attr:`model_`.

        Returns:
            ``accuracy`` ``[n]`` (as :meth:`predict`: clipped to ``[0, 1]``),
            ``score`` ``[n]`` (as :meth:`predict_score`: unclipped, the one to
            rank by), ``memberships`` ``[n, K]``, ``ood_score``
            ``[n]`` (as :meth:`ood_score`), ``ood`` ``[n]`` bool
            (``ood_score > ood_threshold_``) and ``accuracy_std`` ``[n]``, the
            predicted uncertainty: NaN here, since one estimator has no spread to
            measure it by (a :class:`gennape.pretrain.ensemble.GennapeEnsemble`
            gives its members' spread).
        """
        out = self._run(cgs)
        ood = self._ood(out.embedding)
        return {"accuracy": self._accuracy(out.score), "score": out.score, "memberships": out.membership,
                "ood_score": ood, "ood": ood > self.ood_threshold_,
                "accuracy_std": np.full(len(out.score), np.nan)}

    def ood_score(self, cgs) -> np.ndarray:
        """Out-of-distribution score ``[n]``: distance of each embedding to its
        nearest stored training embedding, divided by the 95th percentile of
        that distance among the training embeddings themselves. About 1 or
        less = like the training data; well above 1 = unlike anything seen."""
        return self._ood(self.embed(cgs))

    # ---------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(...) first "
                "or load a checkpoint with GennapeEstimator.load(dir)"
            )

    def _fit_ood_reference(self, emb: np.ndarray, gen, size: int = 2000) -> None:
        import torch

        if len(emb) > size:
            emb = emb[torch.randperm(len(emb), generator=gen)[:size].numpy()]
        # Kept as float32 (as in checkpoints), so the scale is that of the stored points.
        reference = torch.as_tensor(emb, dtype=torch.float32)
        self.model_.reference_embeddings = reference.to(self.device)
        d = torch.cdist(reference.double(), reference.double())
        d.fill_diagonal_(float("inf"))
        nn = d.min(dim=1).values.numpy() if len(emb) > 1 else np.ones(1)
        self.ood_scale_ = float(np.quantile(nn, 0.95)) or 1.0
        self.ood_threshold_ = OOD_THRESHOLD

    def _ood(self, emb: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model_.ood(torch.as_tensor(emb, dtype=torch.float64, device=self.device)).cpu().numpy()

    # -------------------------------------------------------------- save/load
    def checkpoint_state(self) -> tuple[dict, dict]:
        """``(tensors, {"params", "fitted", "metadata"})`` of a checkpoint of
        this estimator (see :mod:`gennape.pretrain.base`)."""
        self._check_fitted()
        fitted = {key: to_json(getattr(self, attr)) for key, (attr, to_json, _) in FITTED.items()}
        state = self.model_.state_dict()
        # Submodules' tensors first, then the model's own buffers: the order
        # model.pt has always had, so the same training writes the same bytes.
        tensors = {k: state[k] for k in sorted(state, key=lambda k: "." not in k)}
        return tensors, {"params": self.get_params(deep=False), "fitted": fitted, "metadata": dict(self.metadata_)}

    @classmethod
    def from_sections(cls, tensors: dict, sections: dict, device: str = "cpu") -> "GennapeEstimator":
        """The estimator of :meth:`checkpoint_state`'s ``(tensors, sections)``."""
        est = cls(**{**sections["params"], "device": device})
        model = est._new_model(est._new_encoder(), est._new_heads())
        model.load_fitted_state(tensors)
        est.model_ = model.eval()
        for key, (attr, _, from_json) in FITTED.items():
            if key in sections["fitted"] or key not in FITTED_DEFAULTS:
                setattr(est, attr, from_json(sections["fitted"][key]))
            else:  # written before the key existed
                setattr(est, attr, FITTED_DEFAULTS[key])
        est.metadata_ = dict(sections.get("metadata") or {})
        return est

    @classmethod
    def config_of_layout1(cls, config: dict) -> dict:
        """A config.json written before the sections existed (fitted keys and
        metadata side by side at the top level, and a copy of the cluster
        centres, which model.pt holds), in the current layout."""
        envelope, metadata = split_layout1(config, {"params", "cluster_centers", *FITTED})
        return {**envelope, "params": config["params"], "fitted": {key: config[key] for key in FITTED},
                "metadata": metadata}


def as_pack(items):
    """A :class:`GraphPack` from a pack, or from a list of CGs / PyG Data."""
    from gennape.pretrain.packed import GraphPack

    if isinstance(items, GraphPack):
        return items
    return GraphPack.from_items(items)


# ----------------------------------------------------- partial state (resume)
def _params_tensor(params: dict) -> torch.Tensor:
    import torch

    return torch.tensor(list(json.dumps(params, sort_keys=True).encode()), dtype=torch.uint8)


def _save_partial(path: Path, model, opt, gen, epoch: int, history: list[dict], params: dict) -> None:
    """Encoder-training state after ``epoch`` epochs, as a flat dict of tensors
    written atomically (temporary file, then rename)."""
    import torch

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
    import torch

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
    model.load_state_dict(strip_prefix(tensors, "model."))
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


__all__ = ["FINETUNE_MODES", "FITTED", "GennapeEstimator", "NotFittedError", "as_pack", "check_finetune_options"]
