"""Per-cluster predictor heads, soft-aggregated by fuzzy membership."""

from heads.fuzzy_heads import FuzzyHeads
from heads.membership import fcm_membership
from heads.mlp import MLPHead

__all__ = ["FuzzyHeads", "MLPHead", "fcm_membership"]
