"""Per-cluster predictor heads, soft-aggregated by fuzzy membership."""

from gennape.heads.fuzzy_heads import FuzzyHeads
from gennape.heads.membership import fcm_membership
from gennape.heads.mlp import MLPHead

__all__ = ["FuzzyHeads", "MLPHead", "fcm_membership"]
